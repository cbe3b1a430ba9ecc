"""The shared message model and the small contract every channel adapter implements.

A channel adapter turns a platform's request into ``InboundMessage``s (``parse``, pure, no I/O),
and delivers an ``OutboundMessage`` back on the same platform (``send``). Routes for a channel's
webhooks live beside it (``router()``), so adding a channel means adding one module and one
registry line in ``channels/registry.py``. A platform that pushes at high rates may also declare
``webhooks()``: endpoints the gateway serves ahead of the web framework's middleware and routing.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import prcoords
from fastapi import APIRouter
from pydantic import BaseModel, BeforeValidator, Field, field_validator
from starlette.responses import Response

OutboundKind = Literal["reply", "ticket_filed", "status_update", "survey", "operator"]


def new_id() -> str:
    """128 random bits as 32 hex characters (what uuid4().hex gave, without building a UUID)."""
    return os.urandom(16).hex()


def utcnow() -> datetime:
    return datetime.now(UTC)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(value: Any) -> Any:
    """A string (or a list or dict of them) with each lone surrogate replaced by U+FFFD.

    JSON's ``\\ud83d`` escape decodes to one (half of an emoji, cut by a client that counts UTF-16
    units); it cannot be written as UTF-8, so Redis, JSON and the logs would refuse the message.
    The rest of the message is kept as written."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {well_formed(k): well_formed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [well_formed(v) for v in value]
    return value


# text typed by a person into a form (an operator's reply, a status note): half an emoji is kept
# as U+FFFD like in a citizen's message, where a length limit would otherwise refuse the request
WellFormedStr = Annotated[str, BeforeValidator(well_formed)]


class Attachment(BaseModel):
    kind: Literal["image", "audio", "video", "file"] = "file"
    mime: str = "application/octet-stream"
    ref: str = ""  # stored reference (media id, URL, blob key); fetched lazily by workers
    name: str = ""

    _text_ok = field_validator("mime", "ref", "name")(well_formed)

    @property
    def word(self) -> str:
        """What a citizen or an operator calls it: 图片, 语音, 视频, 文件."""
        return {"image": "图片", "audio": "语音", "video": "视频"}.get(self.kind, "文件")


Datum = Literal["wgs84", "gcj02", "bd09"]
"""Coordinate systems in use in China: GPS and browsers give WGS-84; WeChat, Tencent and AMap use
GCJ-02 (offset by a few hundred metres by law); Baidu uses BD-09. Mixed up, a pin lands on the
wrong street."""


class GeoLocation(BaseModel):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False)
    label: str = ""
    datum: Datum = "wgs84"  # what the coordinates are in, as the channel got them

    _text_ok = field_validator("label")(well_formed)

    @property
    def text(self) -> str:
        """The place as people read it: its label, else its coordinates."""
        return self.label or f"{self.lat:.5f},{self.lng:.5f}"

    def in_datum(self, datum: Datum) -> GeoLocation:
        """The same place in ``datum`` (unchanged outside China, where GCJ-02 is WGS-84)."""
        if datum == self.datum:
            return self
        here = prcoords.Coords(self.lat, self.lng)
        if not prcoords.sanity_in_china_p(here):
            return self.model_copy(update={"datum": datum})
        wgs = {"wgs84": here, "gcj02": prcoords.gcj_wgs_bored(here), "bd09": prcoords.bd_wgs_bored(here)}[self.datum]
        out = {"wgs84": wgs, "gcj02": prcoords.wgs_gcj(wgs, False), "bd09": prcoords.wgs_bd(wgs, False)}[datum]
        return self.model_copy(update={"lat": round(out.lat, 7), "lng": round(out.lon, 7), "datum": datum})


# The bot's menu: a tap arrives as ``event="click"`` with one of these in ``meta["event_key"]``
# (WeChat's custom menu buttons, Telegram's commands); the value is what the button says.
MENU_KEYS = {
    "hotline:report": "我要反映",
    "hotline:progress": "进度查询",
    "hotline:faq": "常见问题",
    "hotline:human": "人工客服",
}


class InboundMessage(BaseModel):
    """One citizen message, whatever channel it came from."""

    id: str = Field(default_factory=new_id)
    channel: str
    channel_message_id: str
    sender: str
    conversation_key: str = ""
    received_at: datetime = Field(default_factory=utcnow)
    text: str = ""
    title: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    location: GeoLocation | None = None
    reply_to: str | None = None
    event: str | None = None  # platform events: subscribe, unsubscribe, enter_session, start, click (a menu)
    # a whole written request (a portal post, a letter to the mayor's mailbox): the writer is not
    # chatting and may never read a question, so the bot files it as written instead of asking
    letter: bool = False
    raw_ref: str | None = None
    meta: dict[str, str] = Field(default_factory=dict)

    _text_ok = field_validator(
        "channel_message_id", "sender", "conversation_key", "text", "title", "reply_to", "event", "raw_ref", "meta"
    )(well_formed)

    def model_post_init(self, __context: Any) -> None:
        if not self.conversation_key:
            self.conversation_key = conversation_key(self.channel, self.sender)

    @property
    def dedupe_key(self) -> str:
        return f"{self.channel}:{self.channel_message_id}"


class OutboundMessage(BaseModel):
    """One message to a citizen; ``id`` is deterministic where the producer can make it so."""

    id: str = Field(default_factory=new_id)
    conversation_key: str
    channel: str
    kind: OutboundKind = "reply"
    text: str
    ticket_id: str | None = None
    buttons: list[str] = Field(default_factory=list)
    fields: dict[str, str] = Field(default_factory=dict)  # structured data (template fields, status)
    created_at: datetime = Field(default_factory=utcnow)

    _text_ok = field_validator("id", "conversation_key", "text", "buttons", "fields")(well_formed)

    @property
    def sender(self) -> str:
        return self.conversation_key.split(":", 1)[1] if ":" in self.conversation_key else ""


def conversation_key(channel: str, sender: str) -> str:
    return f"{channel}:{sender}"


class ChannelError(Exception):
    """Base of channel errors; the gateway maps each subclass to one HTTP answer."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ChannelError):
    """Malformed payload: 400, the sender should not retry."""

    status_code = 400


class Unauthorized(ChannelError):
    """Missing or wrong token: 401."""

    status_code = 401


class Forbidden(ChannelError):
    """Wrong signature or secret: 403."""

    status_code = 403


class PayloadTooLarge(ChannelError):
    status_code = 413


class NotFound(ChannelError):
    """Unknown session, account or bot: 404."""

    status_code = 404


class RateLimited(ChannelError):
    status_code = 429


class Unavailable(ChannelError):
    """The gateway cannot accept right now (Redis down): 503, the sender retries."""

    status_code = 503


class IgnoredEvent(ChannelError):
    """A known event we do not act on: answer 200 so the platform does not retry."""

    status_code = 200


class DeliveryError(Exception):
    """Sending failed. ``retry_after`` set means try again later; unset means give up on this route.
    ``recipient``: the one addressed is the trouble (a mailbox full or greylisting), not the route."""

    def __init__(self, message: str, retry_after: float | None = 5.0, *, recipient: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.recipient = recipient


@dataclass(frozen=True, slots=True)
class HookRequest:
    """What a hot webhook handler sees: the path's last segment, the query, the raw ASGI headers
    and the whole body, already size-checked."""

    param: str
    query: Mapping[str, str]
    raw_headers: Sequence[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value by its (case-insensitive) name; decoded only when asked for."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.raw_headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None


@dataclass(frozen=True, slots=True)
class Webhook:
    """``METHOD /channels<prefix><param>`` answered by ``handler`` before the web framework's
    middleware and routing: for platforms that push at high rates and wait for the answer
    (WeChat retries after 5 s). Errors raised are answered like everywhere else."""

    method: str
    prefix: str  # e.g. "/wechat/"; the parameter is the rest of the path, without "/"
    handler: Callable[[HookRequest], Awaitable[Response]]
    max_body_bytes: int
    label: str  # the route as metrics name it, e.g. "/channels/wechat/{account}"


@dataclass(slots=True)
class Then:
    """Redis commands (``["HSET", key, field, value]``, …) a channel wants run with the enqueue,
    atomically and in the same round trip, only if the message is new; ``result`` then holds the
    last command's reply (None for a duplicate). For state every citizen message updates (WeChat's
    customer-service window) without a second round trip on the webhook path."""

    commands: list[list[str | int | float]]
    result: Any = None

    def flat(self) -> list[str | int | float]:
        """The commands as script arguments: their count, then each one's length and words
        (no JSON to encode here or decode in Lua; see ``RUN_FLAT_LUA``)."""
        out: list[str | int | float] = [len(self.commands)]
        for command in self.commands:
            out += [len(command), *command]
        return out


RUN_FLAT_LUA = """
local function run_flat(argv, first)
  local last = {}
  local i = first + 1
  for _ = 1, tonumber(argv[first] or '0') do
    local len = tonumber(argv[i])
    last = redis.call(unpack(argv, i + 1, i + len))
    i = i + len + 1
  end
  return last
end
"""
"""Lua that runs ``Then.flat()`` arguments starting at ``argv[first]``; returns the last reply."""


Enqueue = Callable[..., Awaitable[bool]]
"""``enqueue(msg, side=None, then=None)`` hands a parsed message to the gateway: False when it was a
duplicate. ``side`` (stream, data, maxlen, ttl_s) is one more stream entry written only for a new
message; ``then`` (``Then``) are more commands run with it."""


@runtime_checkable
class Channel(Protocol):
    """What every channel adapter offers. One more method is optional: ``body_limits()`` returns
    ``{path pattern under /channels: bytes}`` for routes that take larger bodies than the
    gateway's ``HOTLINE_MAX_BODY_BYTES`` (the web channel's photo upload)."""

    name: str

    def handles(self, channel: str) -> bool:
        """True if outbound messages for ``channel`` (e.g. ``portal:xinfang``) go through this adapter."""
        ...

    async def send(self, message: OutboundMessage) -> None:
        """Deliver a reply; raise ``DeliveryError`` to have it retried later."""
        ...

    def router(self) -> APIRouter | None:
        """Webhook routes, mounted under ``/channels``; they verify, parse, ``ctx.enqueue`` and ack."""
        ...

    def webhooks(self) -> list[Webhook]:
        """Hot webhooks (see ``Webhook``); most channels have none and use ``router`` only."""
        ...

    async def start(self) -> None:
        """Start background work (polling, token refresh); called once per process."""
        ...

    async def stop(self) -> None: ...


class ChannelContext(BaseModel):
    """What a channel gets from the gateway at construction: no gateway imports needed."""

    model_config = {"arbitrary_types_allowed": True}

    redis: Any  # redis.asyncio.Redis (decode_responses=True); set at start-up
    enqueue: Any  # Enqueue: de-duplicate and append an InboundMessage to the inbound stream
    settings: Any  # config.settings.Settings
    http: Any = None  # httpx.AsyncClient shared by adapters; set at start-up
    publish: Any = None  # async (OutboundMessage) -> bool: queue a message for delivery (deferred sends)
    list_tickets: Any = None  # async (conversation_key) -> list[dict]: a citizen's own tickets, newest first


# a letter's body that only points at its title or its attachments: 如题, 见主题, 详见附件
_POINTER = re.compile(
    r"[\s，,。.!！~～]*(?:如题|如标题|见主题|详见主题|同主题|见标题|内容见标题|(?:详|具体)?见附件)"
    r"(?:[\s，,。.!！~～]*(?:谢谢|麻烦了|请(?:尽快)?处理))?[\s，,。.!！~～]*"
)


def letter_text(title: str, body: str) -> str:
    """What a letter says: its body, or its title when the body is empty or only points at the
    title or the attachments (如题, 见主题, 详见附件), as many portal posts and e-mails are written."""
    body, title = body.strip(), title.strip()
    if title and (not body or _POINTER.fullmatch(body)):
        return title
    return body


async def stop_task(task: asyncio.Task[None], within_s: float) -> bool:
    """Cancel a channel's background loop and wait for it to end, at most ``within_s``; True if it
    ended. A cancel that lands while redis-py opens a connection is swallowed by it and the loop
    goes on, so it is cancelled again until it ends."""
    deadline = time.monotonic() + within_s
    while not task.done() and time.monotonic() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    return task.done()


def split_text(text: str, limit: int) -> Sequence[str]:
    """Split a long reply into chunks a platform accepts, on line breaks where possible."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        parts.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest:
        parts.append(rest)
    return parts
