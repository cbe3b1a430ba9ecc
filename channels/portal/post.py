"""A portal source's post on the wire: the signing both ways, the post's shape, and one post
handed to the inbound stream (shared by pushes and pulls).

Signing: ``X-Hotline-Timestamp`` (Unix seconds) and ``X-Hotline-Signature`` = ``sha256=`` +
HMAC-SHA256(secret, ``"<timestamp>." + body``), checked in constant time within a replay window.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from redis.exceptions import RedisError

from channels.base import (
    Attachment,
    ChannelContext,
    Forbidden,
    GeoLocation,
    InboundMessage,
    Then,
    Unauthorized,
    Unavailable,
    letter_text,
    utcnow,
    well_formed,
)

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
    # 追问 / 追加留言: the id of the writer's earlier post on this source that this one adds to
    parent_id: str = Field(default="", max_length=128)

    _text_ok = field_validator("id", "user", "title", "body", "contact", "parent_id", mode="before")(well_formed)

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


def ticket_of_post_key(source: str, post_id: str) -> str:
    """The ticket a post was filed as (kept with its receipt), for a later post that adds to it."""
    return f"hl:portal:ticket:{source}:{post_id}"


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


def first_error(exc: ValidationError) -> str:
    first: Any = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


async def enqueue_post(ctx: ChannelContext, source: str, post: Post) -> tuple[InboundMessage, bool]:
    """Hand one post to the inbound stream, de-duplicated by its id; its attachments are queued for
    the background download with it (and only if it is new). Returns the letter and whether it was new."""
    msg = inbound(source, post)
    if post.parent_id:  # 追问: more words on the ticket the earlier post became (docs/bot.md, 补充)
        try:
            ticket_id = await ctx.redis.get(ticket_of_post_key(source, post.parent_id))
        except (RedisError, OSError) as exc:
            raise Unavailable("服务暂时繁忙，请稍后重试") from exc
        if ticket_id:
            msg.meta["thread_ticket"] = ticket_id
    refs = [(a.ref, item.url) for a, item in zip(msg.attachments, post.attachments, strict=True)]
    then = None
    if refs:
        commands: list[list[str | int | float]] = [["SET", url_key(r), u, "EX", URL_KEEP_S] for r, u in refs]
        then = Then([*commands, ["RPUSH", MEDIA_QUEUE, *(r for r, _ in refs)]])
    return msg, await ctx.enqueue(msg, then=then)
