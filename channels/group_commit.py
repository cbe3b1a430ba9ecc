"""Group commit: concurrent calls of one Lua script written to Redis together.

A webhook under load has many requests in flight; giving each its own round trip makes the socket
write (a loopback TCP send, or a Unix socket one) the biggest cost of acknowledging a push. Calls
that arrive while a round trip is under way are queued and sent together as one pipeline on the
next; each caller still returns only when its own call has been executed, with its own result or
error, so nothing is acknowledged before Redis has it. A round trip that takes longer than
``timeout_s`` fails its whole batch with ``TimeoutError`` (one timer per batch, not per caller).
A call whose arguments cannot be sent at all (a string UTF-8 cannot hold) fails alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError, RedisError


class GroupCommit:
    """``await call(keys, args)`` ≡ ``EVALSHA script`` but pipelined with concurrent callers."""

    def __init__(self, redis: Any, source: str, max_batch: int = 256, timeout_s: float = 3.0) -> None:
        self.redis = redis
        self.timeout_s = timeout_s
        self.source = source
        self.sha = redis.register_script(source).sha
        self.max_batch = max_batch
        self._queue: list[tuple[list[str], list[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def call(self, keys: list[str], args: list[Any]) -> Any:
        """The script's result; raises ``RedisError``/``OSError`` as a single call would, and
        ``TimeoutError`` when Redis did not answer within ``timeout_s``."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((keys, args, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                results = await self._execute(batch)
            except Exception as exc:  # noqa: BLE001 - e.g. an argument Redis cannot encode
                # not Redis's answer but one call's arguments: each call alone, so only its own
                # caller gets the error (and no caller is left waiting: the task would end here)
                results = [exc] if len(batch) == 1 else [await self._alone(item) for item in batch]
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():  # the caller gave up (cancelled)
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _alone(self, item: tuple[list[str], list[Any], asyncio.Future[Any]]) -> Any:
        try:
            return (await self._execute([item]))[0]
        except Exception as exc:  # noqa: BLE001
            return exc

    async def _execute(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> list[Any]:
        results: list[Any] = []
        for attempt in (1, 2):
            try:
                # EVALSHA by hand: a Script object in a pipeline costs a SCRIPT EXISTS round trip.
                async with asyncio.timeout(self.timeout_s), self.redis.pipeline(transaction=False) as pipe:
                    for keys, args, _ in batch:
                        pipe.evalsha(self.sha, len(keys), *keys, *args)
                    results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError, TimeoutError) as exc:
                return [exc] * len(batch)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in results):
                try:
                    await self.redis.script_load(self.source)  # Redis restarted or flushed its scripts
                except (RedisError, OSError) as exc:
                    return [exc] * len(batch)
                continue
            break
        return results
