"""Pulling a portal source that cannot push: ask its list API for the posts after a cursor.

Some boards sit where they cannot open a connection to the gateway, or their team would rather
serve a list than run a job that pushes. For such a source (``HOTLINE_PORTAL__<NAME>__PULL_URL``)
the gateway asks, every ``HOTLINE_PORTAL_PULL_S`` seconds, with a POST signed like its replies:

    {"cursor": "<the cursor the source gave last time>", "limit": 50}

(on the very first pull, with no cursor yet: ``{"since": "<ISO 8601>", "limit": 50}``, the posts
of the last ``HOTLINE_PORTAL_PULL_BACKLOG_DAYS``), and the source answers, signed the same way:

    {"posts": [<a post, the shape a push has>, …], "cursor": "<where the next pull starts>", "more": false}

The cursor is the source's own (an id, a time, an offset: the gateway only hands it back). It is
kept in Redis and moves only once every post of the page is on the inbound stream: with Redis or
the gateway down, the page is asked for again later, and a post read twice is accepted once (by its
id, as a push is). A page that is not signed by the source, or not a page, moves nothing and is
asked for again with back-off; one post in it that is malformed is set aside (logged, counted, kept
in ``hl:portal:rejected:<source>``) so it cannot stop the source for ever. One process pulls a
source at a time (a lease in Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, Field, ValidationError, model_validator
from redis.exceptions import RedisError

from channels.base import ChannelContext, ChannelError, stop_task, utcnow
from channels.lease import Lease
from channels.portal.post import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Post,
    enqueue_post,
    first_error,
    sign,
    verify,
)
from config.settings import PortalSource

log = structlog.get_logger(__name__)

PULL_LIMIT = 50  # posts asked for per page
MAX_PAGE_POSTS = 200  # a source that sends more than it was asked for is still read, up to this
MAX_PAGE_BYTES = 16 * 1024 * 1024
MAX_BACKOFF_S = 600.0
LEASE_MS = 120_000
REJECTED_KEEP = 1000  # malformed posts kept for the IT team to look at, newest first


def state_key(source: str) -> str:
    """A hash: ``cursor``, ``pulled_at``, ``posts``, ``rejected``, ``error``, ``error_at``."""
    return f"hl:portal:pull:{source}"


def rejected_key(source: str) -> str:
    return f"hl:portal:rejected:{source}"


class PullFailed(Exception):
    """The source could not be asked, or its answer was not a page it signed: nothing moved."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Page(BaseModel):
    """A source's answer; each post is validated on its own, so one bad post costs only itself."""

    posts: list[Any] = Field(default_factory=list, max_length=MAX_PAGE_POSTS)
    cursor: str = Field(default="", max_length=512)
    more: bool = False

    @model_validator(mode="after")
    def _cursor_with_posts(self) -> Page:
        if self.posts and not self.cursor:
            raise ValueError("a page with posts needs the cursor that comes after them")
        return self


class Puller:
    """Asks one source for its new posts, page by page (see the module's docstring)."""

    def __init__(self, ctx: ChannelContext, source: str, config: PortalSource) -> None:
        self.ctx, self.source, self.config = ctx, source, config
        self.settings = ctx.settings
        self.lease: Lease | None = None
        self.task: asyncio.Task[None] | None = None
        self.failures = 0

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and not await stop_task(task, 10):
            log.warning("portal_puller_not_stopped", source=self.source)

    async def run(self) -> None:
        while True:
            delay = self.settings.portal_pull_s
            try:
                if await self.pull_once():
                    delay = 0.0  # more waiting: the next page at once
                self.failures = 0
            except PullFailed as exc:
                delay = self._backoff(exc.retry_after)
                log.warning("portal_pull_failed", source=self.source, error=str(exc), retry_in_s=delay)
                await self._note_error(str(exc))
            except Exception as exc:  # noqa: BLE001  (Redis down, or a bug: never stop pulling)
                delay = self._backoff(None)
                log.error("portal_pull_error", source=self.source, error=repr(exc), retry_in_s=delay)
                await self._note_error(repr(exc))
            await asyncio.sleep(delay)

    def _backoff(self, retry_after: float | None) -> float:
        self.failures += 1
        delay = min(self.settings.portal_pull_s * 2 ** (self.failures - 1), MAX_BACKOFF_S)
        return max(delay, min(retry_after or 0.0, 3600.0))

    async def _note_error(self, error: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.ctx.redis.hset(
                state_key(self.source), mapping={"error": error[:500], "error_at": time.time()}
            )

    # --- one page -----------------------------------------------------------------------------
    async def pull_once(self) -> bool:
        """Ask for one page and hand its posts over; True when the source says more are waiting.
        False also when another process holds the source's lease."""
        redis = self.ctx.redis
        lease = Lease(redis, f"hl:portal:pull_lock:{self.source}", LEASE_MS)
        if not await lease.acquire():
            return False
        try:
            state = await redis.hgetall(state_key(self.source))
            page = await self._ask(state.get("cursor", ""))
            accepted = rejected = 0
            for item in page.posts:
                try:
                    post = Post.model_validate(item)
                except ValidationError as exc:
                    await self._reject(item, first_error(exc))
                    rejected += 1
                    continue
                _, new = await enqueue_post(self.ctx, self.source, post)
                accepted += new
                await lease.renew()
            mapping: dict[str, str | float] = {"pulled_at": time.time(), "error": ""}
            if page.cursor:
                mapping["cursor"] = page.cursor
            await redis.hset(state_key(self.source), mapping=mapping)
            if accepted:
                await redis.hincrby(state_key(self.source), "posts", accepted)
            if page.posts:
                log.info(
                    "portal_pulled",
                    source=self.source,
                    posts=len(page.posts),
                    new=accepted,
                    rejected=rejected,
                )
            return page.more and bool(page.posts)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await lease.release()

    async def _ask(self, cursor: str) -> Page:
        request: dict[str, Any] = {"limit": PULL_LIMIT}
        if cursor:
            request["cursor"] = cursor
        else:  # the first pull: only recent posts, as the mailbox reads only recent mail
            since = utcnow() - timedelta(days=self.settings.portal_pull_backlog_days)
            request["since"] = since.isoformat()
        body = json.dumps(request).encode()
        headers = {"Content-Type": "application/json", **sign(self.config.secret, body)}
        try:
            async with self.ctx.http.stream(
                "POST", self.config.pull_url, content=body, headers=headers, follow_redirects=False
            ) as response:
                status = response.status_code
                if status != 200:
                    retry_after = response.headers.get("retry-after", "")
                    raise PullFailed(
                        f"pull URL answered {status}",
                        retry_after=float(retry_after) if retry_after.isdigit() else None,
                    )
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_PAGE_BYTES:
                        raise PullFailed(f"page larger than {MAX_PAGE_BYTES} bytes")
                signed = response.headers.get(TIMESTAMP_HEADER), response.headers.get(SIGNATURE_HEADER)
        except httpx.HTTPError as exc:
            raise PullFailed(f"pull URL unreachable ({type(exc).__name__})") from exc
        try:
            verify(self.config.secret, bytes(raw), *signed, self.settings.portal_replay_window_s)
        except ChannelError as exc:
            raise PullFailed(f"page not signed by the source: {exc.message}") from None
        try:
            return Page.model_validate_json(bytes(raw))
        except ValidationError as exc:
            raise PullFailed(f"malformed page: {first_error(exc)}") from None

    async def _reject(self, item: Any, error: str) -> None:
        """A post no letter can be made of: set aside where the IT team can find it, and counted."""
        post_id = str(item.get("id", ""))[:128] if isinstance(item, dict) else ""
        log.error("portal_post_rejected", source=self.source, post_id=post_id, error=error)
        entry = json.dumps({"at": time.time(), "error": error, "post": item}, ensure_ascii=False)
        redis = self.ctx.redis
        await redis.lpush(rejected_key(self.source), entry[:100_000])
        await redis.ltrim(rejected_key(self.source), 0, REJECTED_KEEP - 1)
        await redis.hincrby(state_key(self.source), "rejected", 1)
