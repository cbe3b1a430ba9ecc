"""Redis streams with consumer groups: the durable path of every message.

Enqueueing is atomic and de-duplicated in one Lua script, so a platform's retry never enters the
stream twice. Consumers read through a group; a message held by a consumer that died is claimed
again after ``claim_idle_ms`` (XAUTOCLAIM). Handlers acknowledge inside their own transaction, so
an effect and its acknowledgement land together or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from channels.base import MENU_KEYS, RUN_FLAT_LUA, InboundMessage, OutboundMessage, Then
from channels.group_commit import GroupCommit
from gateway import keys
from gateway.errors import BadInput, ServiceUnavailable

log = structlog.get_logger(__name__)

Handler = Callable[[str, dict[str, str]], Awaitable[None]]
MAX_FAILURES = 5

_ENQUEUE = RUN_FLAT_LUA + """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return 0 end
redis.call('XADD', KEYS[2], '*', 'data', ARGV[2])
redis.call('HINCRBY', KEYS[3], 'message_count', 1)
redis.call('HSET', KEYS[3], 'channel', ARGV[3], 'last_in_at', ARGV[5], 'last_text', ARGV[8])
redis.call('HSETNX', KEYS[3], 'first_at', ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', '1000', '*', 'data', ARGV[7])
if ARGV[9] ~= '' then
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[10], '*', 'data', ARGV[9])
  redis.call('EXPIRE', KEYS[6], ARGV[11])
end
if ARGV[12] ~= '0' then return {1, run_flat(ARGV, 12)} end
return 1
"""

_PUBLISH = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return 0 end
redis.call('XADD', KEYS[2], '*', 'data', ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', '1000', '*', 'data', ARGV[3])
return 1
"""

_PROMOTE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  local entry = cjson.decode(ARGV[1])
  redis.call('XADD', entry['stream'], '*', 'data', entry['data'])
  return 1
end
return 0
"""

# A dead letter settled by an operator: taken off the list (once, whoever else clicks) and, to
# retry it, put back on its stream as a new entry.
_SETTLE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  if ARGV[2] ~= '' then redis.call('XADD', KEYS[2], '*', 'data', ARGV[2]) end
  return 1
end
return 0
"""


class SideWrite(NamedTuple):
    stream: str
    data: str
    maxlen: int = 500
    ttl_s: int = 72 * 3600


def history_entry(direction: str, kind: str, text: str, at: float, **extra: Any) -> str:
    return json.dumps({"dir": direction, "kind": kind, "text": text, "at": at, **extra}, ensure_ascii=False)


class Streams:
    """The gateway's stream operations on one Redis client."""

    def __init__(self, redis: aioredis.Redis, dedupe_ttl_s: int = 7 * 24 * 3600) -> None:
        self.redis = redis
        self.dedupe_ttl_s = dedupe_ttl_s
        # On every webhook: written together under load; a stalled Redis is a 503 within 2.5 s.
        self._enqueue = GroupCommit(redis, _ENQUEUE, timeout_s=2.5)
        self._publish = redis.register_script(_PUBLISH)
        self._promote = redis.register_script(_PROMOTE)
        self._settle = redis.register_script(_SETTLE)

    async def enqueue(self, msg: InboundMessage, side: SideWrite | None = None, then: Then | None = None) -> bool:
        """Append a citizen message unless its channel message id was seen; False for a duplicate.

        ``side`` is one more stream entry the channel wants written only if the message is new
        (the web widget's echo), ``then`` more commands (``channels.base.Then``), both in the same
        round trip and atomically with it.
        """
        now = time.time()
        shown: dict[str, Any] = {}  # what the operator sees of a message that is not only words
        if msg.attachments:
            shown["media"] = [a.word for a in msg.attachments]
            shown["refs"] = [a.ref for a in msg.attachments]  # the console shows each stored one
        if msg.title and msg.title != msg.text:  # a letter's own title (留言主题, e-mail subject)
            shown["title"] = msg.title
        if msg.location is not None:
            shown["place"] = msg.location.text
            shown["geo"] = [msg.location.lat, msg.location.lng]  # the console links it to a map
        if msg.event == "click":  # a tap on the bot's menu: which button
            key = msg.meta.get("event_key", "")
            shown["menu"] = MENU_KEYS.get(key, key)
        hist = history_entry(
            "in", msg.event or "text", msg.text, now, id=msg.id, channel_message_id=msg.channel_message_id, **shown
        )
        # the queue's preview of the last message: its words, else what it carried (［图片］, ［位置：…］)
        preview = msg.text[:80] or "".join(f"［{w}］" for w in shown.get("media", [])) + (
            f"［位置：{shown['place']}］" if "place" in shown else ""
        ) + (f"［菜单：{shown['menu']}］" if "menu" in shown else "")
        try:
            added = await self._enqueue.call(
                keys=[
                    keys.dedupe(msg.dedupe_key),
                    keys.INBOUND,
                    keys.conversation(msg.conversation_key),
                    keys.CONVERSATIONS,
                    keys.history(msg.conversation_key),
                    side.stream if side else keys.INBOUND,
                ],
                args=[
                    self.dedupe_ttl_s,
                    msg.model_dump_json(),
                    msg.channel,
                    msg.conversation_key,
                    now,
                    0,
                    hist,
                    preview[:80],
                    side.data if side else "",
                    side.maxlen if side else 0,
                    side.ttl_s if side else 0,
                    *(then.flat() if then else [0]),
                ],
            )
        except (RedisError, OSError, TimeoutError) as exc:
            raise ServiceUnavailable("服务暂时繁忙，请稍后重试") from exc
        except UnicodeError as exc:  # a key or value UTF-8 cannot hold; nothing was written
            raise BadInput("消息含有无法识别的字符") from exc
        if isinstance(added, list):
            assert then is not None
            then.result = added[1]
            return True
        return bool(added)

    async def publish(self, out: OutboundMessage, pipe: Any = None) -> bool:
        """Queue a message to a citizen, once per ``out.id`` (a repeat is dropped).

        Given a transactional ``pipe`` the publish is queued in it (the result is then the pipe's).
        """
        hist = history_entry("out", out.kind, out.text, time.time(), id=out.id, ticket_id=out.ticket_id)
        result = await self._publish(
            keys=[keys.out_dedupe(out.id), keys.OUTBOUND, keys.history(out.conversation_key)],
            args=[self.dedupe_ttl_s, out.model_dump_json(), hist],
            client=pipe,
        )
        return pipe is not None or bool(result)

    async def schedule(self, stream: str, data: str, delay_s: float) -> None:
        """Put an entry back on ``stream`` after ``delay_s`` (retry with back-off)."""
        member = json.dumps({"stream": stream, "data": data, "nonce": time.time_ns()})
        await self.redis.zadd(keys.DELAYED, {member: time.time() + delay_s})

    async def promote_due(self, limit: int = 100) -> int:
        due = await self.redis.zrangebyscore(keys.DELAYED, "-inf", time.time(), start=0, num=limit)
        moved = 0
        for member in due:
            moved += int(await self._promote(keys=[keys.DELAYED], args=[str(member)]))
        return moved

    async def dead_letter(self, stream: str, entry_id: str, data: str, reason: str) -> None:
        record = json.dumps(
            {"stream": stream, "id": entry_id, "data": data, "reason": reason, "at": time.time()},
            ensure_ascii=False,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.DEAD_LETTERS, record)
            pipe.xack(stream, keys.GROUP[stream], entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def dead_letters(self, limit: int = 200) -> list[dict[str, Any]]:
        """The entries that kept failing, oldest first, each with the ``ref`` that settles it."""
        found = []
        for raw in await self.redis.lrange(keys.DEAD_LETTERS, 0, limit - 1):
            record = json.loads(raw)
            found.append({**record, "ref": f"{record['stream']}/{record['id']}"})
        return found

    async def settle_dead_letter(self, ref: str, retry: bool) -> dict[str, Any] | None:
        """Take the dead letter ``ref`` off the list, and with ``retry`` put it back on its stream
        (a filing starts its attempts again); None when it is not (or no longer) there."""
        for raw in await self.redis.lrange(keys.DEAD_LETTERS, 0, -1):
            record = json.loads(raw)
            if f"{record['stream']}/{record['id']}" != ref or record["stream"] not in keys.GROUP:
                continue
            data = record["data"] if retry else ""
            if retry and record["stream"] == keys.OUTBOX:
                data = json.dumps({**json.loads(data), "attempt": 0}, ensure_ascii=False)
            if await self._settle(keys=[keys.DEAD_LETTERS, record["stream"]], args=[raw, data]):
                return dict(record)
            return None
        return None

    async def ensure_groups(self) -> None:
        for stream, group in keys.GROUP.items():
            try:
                await self.redis.xgroup_create(stream, group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def lag(self) -> dict[str, dict[str, int]]:
        """Per stream: entries not yet delivered (lag) and delivered but unacknowledged (pending)."""
        out: dict[str, dict[str, int]] = {}
        for stream, group in keys.GROUP.items():
            try:
                groups = await self.redis.xinfo_groups(stream)
            except ResponseError:
                continue
            for g in groups:
                if g["name"] == group:
                    out[stream] = {"lag": int(g.get("lag") or 0), "pending": int(g.get("pending") or 0)}
        return out


def ack(pipe: Any, stream: str, entry_id: str) -> None:
    """Acknowledge and delete an entry inside the caller's transaction."""
    pipe.xack(stream, keys.GROUP[stream], entry_id)
    pipe.xdel(stream, entry_id)


async def consume(
    streams: Streams,
    stream: str,
    consumer: str,
    handler: Handler,
    stop: asyncio.Event,
    *,
    claim_idle_ms: int = 30_000,
    block_ms: int = 1000,
    count: int = 10,
) -> None:
    """Run ``handler`` on each entry of ``stream`` read through its group until ``stop`` is set.

    The handler acknowledges; if it raises, the entry stays pending and is claimed again later.
    After MAX_FAILURES an entry goes to the dead-letter list instead of looping forever.
    """
    redis = streams.redis
    group = keys.GROUP[stream]
    next_claim = 0.0
    backoff = 0.5
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            try:
                batch: list[tuple[str, dict[str, str]]] = []
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + max(claim_idle_ms / 2000, 0.2)
                    claimed: Any = await redis.xautoclaim(stream, group, consumer, claim_idle_ms, "0-0", count=count)
                    batch.extend((eid, f) for eid, f in claimed[1] if f)
                if not batch:
                    resp = await _read_unless_stopped(
                        redis.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms), stopped
                    )
                    for _, entries in resp or []:
                        batch.extend(entries)
                for entry_id, fields in batch:
                    await _handle_one(streams, stream, entry_id, fields, handler)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("stream_read_failed", stream=stream, error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
    finally:
        stopped.cancel()


async def _read_unless_stopped(read: Awaitable[Any], stopped: asyncio.Future[Any]) -> Any:
    """The blocking read's answer, or None as soon as the workers are told to stop: shutting down
    does not wait out the block. An entry the abandoned read had been handed stays pending and is
    claimed again (``XAUTOCLAIM``), as after a crash."""
    reading = asyncio.ensure_future(read)
    try:
        await asyncio.wait({reading, stopped}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        reading.cancel()  # the worker itself is cancelled: its read goes with it
        raise
    if reading.done():
        return reading.result()
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
        await reading
    return None


async def _handle_one(
    streams: Streams, stream: str, entry_id: str, fields: dict[str, str], handler: Handler
) -> None:
    try:
        await handler(entry_id, fields)
    except asyncio.CancelledError:
        raise
    except (RedisError, OSError):
        raise
    except Exception as exc:  # a handler bug or a permanent failure: count it, never spin forever
        failures = await streams.redis.hincrby(f"hl:fail:{stream}", entry_id, 1)
        log.exception("handler_failed", stream=stream, entry=entry_id, failures=failures)
        if failures >= MAX_FAILURES:
            await streams.dead_letter(stream, entry_id, fields.get("data", ""), repr(exc))
            await streams.redis.hdel(f"hl:fail:{stream}", entry_id)
