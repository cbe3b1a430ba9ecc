"""Government portal sources (政府网站留言板, 市长信箱, 社情民意, …): signed pushes in, signed replies out.

Each source is named in the settings with its own secret and reply URL. Inbound,
``POST /channels/portal/{source}``: look the source up (404) → check ``X-Hotline-Timestamp`` is
within the replay window and ``X-Hotline-Signature`` is ``sha256=`` + HMAC-SHA256(secret,
``"<timestamp>." + body``), in constant time (401 missing, 403 wrong or stale) → validate the JSON
post (400) → ``ctx.enqueue`` a letter, de-duplicated by the post's id → 200. A post is a whole
request: the bot files it as written (``InboundMessage.letter``), and its attachments are fetched
in the background from the source's own hosts.

Outbound, ``send``: every message for the writer (the receipt with the ticket number, each status
change with its note, the 答复 when resolved, the survey) is POSTed as JSON to the source's
``reply_url``, signed the same way, naming the post it answers. The source shows it on the board.
A 5xx, 408, 429 or network error is retried by the gateway; any other 4xx is final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import mimetypes
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from redis.exceptions import RedisError

from channels.base import (
    Attachment,
    BadRequest,
    ChannelContext,
    DeliveryError,
    Forbidden,
    GeoLocation,
    InboundMessage,
    NotFound,
    OutboundMessage,
    Then,
    Unauthorized,
    Webhook,
    letter_text,
    utcnow,
    well_formed,
)
from channels.media import FetchFailed, MediaFetcher, normalise_image

log = structlog.get_logger(__name__)

NAME = "portal"
TIMESTAMP_HEADER = "X-Hotline-Timestamp"
SIGNATURE_HEADER = "X-Hotline-Signature"
MEDIA_QUEUE = "hl:portal:media:queue"
MEDIA_RETRY = "hl:portal:media:retry"
MAX_ATTACHMENTS = 10
POST_KEEP_S = 400 * 24 * 3600  # a ticket's post is remembered this long, for its 答复 and survey
URL_KEEP_S = 7 * 24 * 3600  # an attachment's URL, until it is fetched (or given up)
BEIJING = timezone(timedelta(hours=8))  # a post's time written without a zone is Beijing time


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers that sign ``body``: what a source sends with a post, and the gateway with a reply."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: f"sha256={digest}"}


def verify(secret: str, body: bytes, timestamp: str | None, signature: str | None, window_s: int) -> None:
    """Raise ``Unauthorized`` (headers missing) or ``Forbidden`` (stale, or not signed with ``secret``)."""
    if not timestamp or not signature:
        raise Unauthorized(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    if not re.fullmatch(r"\d{1,12}", timestamp):
        raise Forbidden(f"{TIMESTAMP_HEADER} must be Unix seconds")
    if window_s and abs(time.time() - int(timestamp)) > window_s:
        raise Forbidden(
            f"{TIMESTAMP_HEADER} outside the {window_s}s replay window (check the source's clock)"
        )
    expected = sign(secret, body, int(timestamp))[SIGNATURE_HEADER]
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise Forbidden("signature mismatch")


class PostAttachment(BaseModel):
    url: str = Field(min_length=1, max_length=2000)
    name: str = Field(default="", max_length=200)
    mime: str = Field(default="", max_length=100)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
            raise ValueError("must be an http(s) URL")
        return value


class Post(BaseModel):
    """One post as a source pushes it; unknown fields are ignored."""

    id: str = Field(min_length=1, max_length=128)  # the source's own id: the key for de-duplication
    user: str = Field(min_length=1, max_length=128)  # the writer's alias or user id on the source
    title: str = Field(default="", max_length=200)  # 留言主题
    body: str = Field(default="", max_length=20_000)  # 留言内容
    time: datetime | None = None
    contact: str = Field(default="", max_length=50)  # a phone number the writer gave the source
    attachments: list[PostAttachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    location: GeoLocation | None = None  # a pin on the board's map, if it has one

    _text_ok = field_validator("id", "user", "title", "body", "contact", mode="before")(well_formed)

    @model_validator(mode="after")
    def _has_words(self) -> Post:
        if not (self.title.strip() or self.body.strip()):
            raise ValueError("a post needs a title or a body")
        return self


def attachment_ref(source: str, url: str) -> str:
    return f"{NAME}:{source}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"


def url_key(ref: str) -> str:
    return f"hl:portal:url:{ref}"


def post_key(source: str, ticket_id: str) -> str:
    return f"hl:portal:post:{source}:{ticket_id}"


def inbound(source: str, post: Post, now: datetime | None = None) -> InboundMessage:
    """One post → a letter (pure: no I/O)."""
    at = post.time or now or utcnow()
    if at.tzinfo is None:
        at = at.replace(tzinfo=BEIJING)
    attachments = []
    for item in post.attachments:
        mime = item.mime or mimetypes.guess_type(item.name or urlsplit(item.url).path)[0] or ""
        kind: Literal["image", "file"] = "image" if mime.startswith("image/") else "file"
        attachments.append(
            Attachment(
                kind=kind,
                mime=mime or "application/octet-stream",
                ref=attachment_ref(source, item.url),
                name=item.name,
            )
        )
    title = post.title.strip()
    return InboundMessage(
        channel=f"{NAME}:{source}",
        channel_message_id=post.id,
        sender=post.user,
        received_at=at,
        text=letter_text(title, post.body),
        title=title or None,
        attachments=attachments,
        location=post.location,
        reply_to=post.id,
        letter=True,
        meta={"contact": post.contact} if post.contact else {},
    )


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

    def handles(self, channel: str) -> bool:
        kind, _, source = channel.partition(":")
        return kind == NAME and source in self.sources

    async def start(self) -> None:
        self.media.start()

    async def stop(self) -> None:
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
                    f"malformed post: {_first_error(exc)}"
                ) from None  # (its input holds the post)
            msg = inbound(source, post)
            refs = [(a.ref, item.url) for a, item in zip(msg.attachments, post.attachments, strict=True)]
            then = None
            if refs:  # fetched in the background, queued with the post (and only if it is new)
                commands: list[list[str | int | float]] = [
                    ["SET", url_key(r), u, "EX", URL_KEEP_S] for r, u in refs
                ]
                then = Then([*commands, ["RPUSH", MEDIA_QUEUE, *(r for r, _ in refs)]])
            accepted = await channel.ctx.enqueue(msg, then=then)
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
            if post_id and message.ticket_id:  # the receipt: later news of this ticket answers the same post
                await self.ctx.redis.set(post_key(source, message.ticket_id), post_id, ex=POST_KEEP_S)
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
            "kind": message.kind,
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


def _first_error(exc: ValidationError) -> str:
    first: Any = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


def build(ctx: ChannelContext) -> list[PortalChannel]:
    return [PortalChannel(ctx)] if ctx.settings.portal else []
