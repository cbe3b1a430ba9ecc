"""Government portal sources (政府网站留言板, 市长信箱, 社情民意, …): signed pushes in, signed replies out.

Each source is named in the settings with its own secret and reply URL. Inbound,
``POST /channels/portal/{source}``: look the source up (404) → check ``X-Hotline-Timestamp`` is
within the replay window and ``X-Hotline-Signature`` is ``sha256=`` + HMAC-SHA256(secret,
``"<timestamp>." + body``), in constant time (401 missing, 403 wrong or stale) → validate the JSON
post (400) → ``ctx.enqueue`` a letter, de-duplicated by the post's id → 200. A post is a whole
request: the bot files it as written (``InboundMessage.letter``), and its attachments are fetched
in the background from the source's own hosts.

Outbound, ``send``: every message for the writer (the receipt with the ticket number, each status
change with its note, each progress note as ``kind: "progress"``, the 答复 when resolved, the
survey) is POSTed as JSON to the source's ``reply_url``, signed the same way, naming the post it
answers. The source shows it on the board.
A 5xx, 408, 429 or network error is retried by the gateway; any other 4xx is final.

A source that cannot push is pulled instead (``PULL_URL``, ``channels.portal.pull``); its posts
become letters the same way.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from redis.exceptions import RedisError

from channels.base import (
    BadRequest,
    ChannelContext,
    DeliveryError,
    NotFound,
    OutboundMessage,
    Webhook,
)
from channels.media import FetchFailed, MediaFetcher, normalise_image
from channels.portal.post import (
    MEDIA_QUEUE,
    MEDIA_RETRY,
    NAME,
    POST_KEEP_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Post,
    enqueue_post,
    first_error,
    post_key,
    sign,
    ticket_of_post_key,
    url_key,
    verify,
)
from channels.portal.pull import Puller

log = structlog.get_logger(__name__)


class PortalChannel:
    """Every configured source: signed posts in, signed replies out."""

    name = NAME

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.sources = dict(ctx.settings.portal)
        self.media = MediaFetcher(
            ctx,
            queue=MEDIA_QUEUE,
            retry=MEDIA_RETRY,
            folder=ctx.settings.media_folder / NAME,
            fetch=self._fetch,
            first_retry_s=lambda: self.settings.portal_media_retry_s,
        )
        self.pullers = [Puller(ctx, name, config) for name, config in self.sources.items() if config.pull_url]

    def handles(self, channel: str) -> bool:
        kind, _, source = channel.partition(":")
        return kind == NAME and source in self.sources

    async def start(self) -> None:
        self.media.start()
        for puller in self.pullers:
            puller.start()

    async def stop(self) -> None:
        for puller in self.pullers:
            await puller.stop()
        await self.media.stop()

    def webhooks(self) -> list[Webhook]:
        return []

    # --- inbound --------------------------------------------------------------------------
    def router(self) -> APIRouter | None:
        router = APIRouter(prefix="/portal", tags=["portal"])
        channel = self

        @router.post("/{source}")
        async def push(source: str, request: Request) -> JSONResponse:
            """A source pushes one post: verify, validate, enqueue, answer at once."""
            config = channel.sources.get(source)
            if config is None:
                raise NotFound(f"unknown portal source {source!r}")
            body = await request.body()
            verify(
                config.secret,
                body,
                request.headers.get(TIMESTAMP_HEADER),
                request.headers.get(SIGNATURE_HEADER),
                channel.settings.portal_replay_window_s,
            )
            try:
                post = Post.model_validate_json(body)
            except ValidationError as exc:
                raise BadRequest(
                    f"malformed post: {first_error(exc)}"
                ) from None  # (its input holds the post)
            msg, accepted = await enqueue_post(channel.ctx, source, post)
            return JSONResponse({"ok": True, "id": msg.id, "duplicate": not accepted})

        return router

    # --- media ----------------------------------------------------------------------------
    async def _fetch(self, ref: str) -> tuple[bytes, str] | None:
        """An attachment's file from the source, only from its own hosts and at most
        ``HOTLINE_PORTAL_MEDIA_MAX_BYTES``; photos are re-encoded without EXIF like uploads."""
        source = ref.split(":")[1]
        config = self.sources.get(source)
        url = await self.ctx.redis.get(url_key(ref))
        if config is None or not url:
            raise FetchFailed("source or attachment URL no longer known", transient=False)
        if urlsplit(url).hostname not in config.allowed_hosts():
            raise FetchFailed(
                f"host {urlsplit(url).hostname!r} is not one of the source's media hosts", transient=False
            )
        limit = self.settings.portal_media_max_bytes
        try:
            async with self.ctx.http.stream("GET", url, follow_redirects=False) as response:
                if response.status_code in (408, 429) or response.status_code >= 500:
                    raise FetchFailed(f"source answered {response.status_code}", transient=True)
                if response.status_code != 200:
                    raise FetchFailed(f"source answered {response.status_code}", transient=False)
                content = bytearray()
                async for chunk in response.aiter_bytes():
                    content += chunk
                    if len(content) > limit:
                        raise FetchFailed(f"attachment larger than {limit} bytes", transient=False)
                mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
        except httpx.HTTPError as exc:
            raise FetchFailed(f"download: {type(exc).__name__}", transient=True) from exc
        if mime.startswith("image/"):
            try:
                return normalise_image(bytes(content), self.settings.media_max_side)
            except BadRequest as exc:
                raise FetchFailed(f"not a usable image: {exc.message}", transient=False) from exc
        return bytes(content), mime or "application/octet-stream"

    # --- outbound -------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> None:
        source = message.channel.partition(":")[2]
        config = self.sources.get(source)
        if config is None:
            raise DeliveryError(f"no portal source {source!r} configured", retry_after=None)
        post_id = message.fields.get("reply_to", "")
        try:
            if post_id and message.ticket_id:  # the receipt: later news of this ticket answers the same post,
                # and a later post adding to this one (its parent_id) adds to this ticket
                async with self.ctx.redis.pipeline(transaction=True) as pipe:
                    pipe.set(post_key(source, message.ticket_id), post_id, ex=POST_KEEP_S)
                    pipe.set(ticket_of_post_key(source, post_id), message.ticket_id, ex=POST_KEEP_S)
                    await pipe.execute()
            elif not post_id and message.ticket_id:
                post_id = await self.ctx.redis.get(post_key(source, message.ticket_id)) or ""
        except (RedisError, OSError) as exc:
            raise DeliveryError(f"redis unavailable: {exc}", retry_after=5.0) from exc
        reply = {
            "id": message.id,  # the same on a retry: the source can drop a repeat
            "source": source,
            "user": message.conversation_key.removeprefix(f"{message.channel}:"),
            "post_id": post_id,
            "ticket_id": message.ticket_id or "",
            # a progress note (阶段性答复) is a kind of its own: a source that takes a resolved
            # status_update's note as the 答复 must never take an interim word for it
            "kind": "progress" if message.fields.get("progress") == "1" else message.kind,
            "status": message.fields.get("status", ""),
            "note": message.fields.get("note", ""),  # the status change's own words: on resolution, the 答复
            "text": message.text,
            "options": message.buttons,
            "sent_at": message.created_at.isoformat(),
        }
        body = json.dumps(reply, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **sign(config.secret, body)}
        try:
            response = await self.ctx.http.post(config.reply_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("portal_delivery_failed", source=source, error=type(exc).__name__)
            raise DeliveryError(
                f"{source}: reply URL unreachable ({type(exc).__name__})", retry_after=30.0
            ) from exc
        if response.is_success:
            return
        status = response.status_code
        log.warning("portal_delivery_refused", source=source, status=status, kind=message.kind)
        if status in (408, 429) or status >= 500:
            raise DeliveryError(f"{source}: reply URL answered {status}", retry_after=_retry_after(response))
        raise DeliveryError(f"{source}: reply URL refused the reply ({status})", retry_after=None)


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    return float(min(int(value), 3600)) if value.isdigit() else 30.0


def build(ctx: ChannelContext) -> list[PortalChannel]:
    return [PortalChannel(ctx)] if ctx.settings.portal else []
