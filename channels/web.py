"""The web chat widget's channel: anonymous sessions, text messages, events by WebSocket or long-poll.

A session is a random id plus a bearer token (only its SHA-256 is stored). Replies to a session are
appended to its own Redis stream; the stream id is the client's cursor, so a reconnecting widget
(WebSocket or long-poll) gets exactly what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from starlette.datastructures import UploadFile

from channels.base import (
    Attachment,
    BadRequest,
    ChannelContext,
    Forbidden,
    GeoLocation,
    InboundMessage,
    NotFound,
    OutboundMessage,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
    Webhook,
    conversation_key,
)
from channels.media import Uploads, file_response, find, media_roots

log = structlog.get_logger(__name__)

NAME = "web"
CURSOR = re.compile(r"\d{1,20}-\d{1,20}")  # a Redis stream id, as returned in ``cursor``
EVENTS_MAXLEN = 500
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around an uploaded file


def address_key(address: str | None) -> str:
    """A client address as the per-address limits count it: IPv4 as it is, IPv6 by its /64 (a
    phone or a household is given a whole /64, and may use any address in it)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return f"{ipaddress.IPv6Network((ip, 64), strict=False).network_address}/64"
    return str(ip)


def _session_key(session_id: str) -> str:
    return f"hl:web:sess:{session_id}"


def _events_key(session_id: str) -> str:
    return f"hl:web:ev:{session_id}"


def _uploads_key(session_id: str) -> str:
    return f"hl:web:up:{session_id}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class MessageIn(BaseModel):
    text: str = ""
    client_message_id: str | None = Field(default=None, max_length=64)
    location: GeoLocation | None = None
    # photos uploaded to ``/media`` first; only their ``ref`` is read (the rest is the stored record's)
    attachments: list[Attachment] = Field(default_factory=list, max_length=5)


def event_of(msg: OutboundMessage) -> dict[str, Any]:
    """The JSON a widget receives for one outbound message."""
    event: dict[str, Any] = {
        "id": msg.id,
        "type": msg.kind,
        "text": msg.text,
        "created_at": msg.created_at.isoformat(),
    }
    if msg.ticket_id:
        event["ticket_id"] = msg.ticket_id
    if msg.buttons:
        event["buttons"] = msg.buttons
    if msg.fields:
        event["fields"] = msg.fields
    return event


def echo_of(msg: InboundMessage, session_id: str) -> dict[str, Any]:
    """The ``echo`` event of a citizen's own message: their words, photos and shared place."""
    echo = OutboundMessage(
        id=f"echo:{msg.id}",
        conversation_key=msg.conversation_key,
        channel=msg.channel,
        kind="reply",
        text=msg.text,
        fields={"session_id": session_id, "client_message_id": msg.channel_message_id},
    )
    event = event_of(echo) | {"type": "echo"}
    if msg.attachments:
        event["attachments"] = [{"kind": a.kind, "ref": a.ref} for a in msg.attachments]
    if msg.location is not None:
        event["location"] = msg.location.model_dump()
    return event


def parse(session: dict[str, str], body: MessageIn, max_chars: int) -> InboundMessage:
    """Turn a widget POST into an InboundMessage (pure: no I/O)."""
    text = body.text.strip()
    if not text and body.location is None and not body.attachments:
        raise BadRequest("消息内容不能为空")
    if len(text) > max_chars:
        raise BadRequest(f"消息过长（最多{max_chars}字），请分多条发送")
    return InboundMessage(
        channel=session["channel"],
        channel_message_id=body.client_message_id or secrets.token_hex(12),
        sender=session["sender"],
        text=text,
        location=body.location,
        attachments=body.attachments,
        meta={"session_id": session["session_id"]},
    )


class WebChannel:
    """Serves the widget's API and delivers replies into each session's event stream."""

    name = NAME

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.media_roots = media_roots(ctx.settings)

    @property
    def redis(self) -> Any:
        return self.ctx.redis  # set by the gateway at start-up, after routes are mounted

    @property
    def uploads(self) -> Uploads:
        return Uploads(self.settings, self.redis)

    def handles(self, channel: str) -> bool:
        return channel == NAME

    def body_limits(self) -> dict[str, int]:
        """Paths (under ``/channels``) that take larger bodies than the gateway's default: photos."""
        return {r"/web/sessions/[^/]+/media": self.settings.web_media_max_bytes + MULTIPART_OVERHEAD}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    # --- sessions -------------------------------------------------------------------------
    async def create_session(self, channel: str = NAME, sender: str | None = None) -> dict[str, str]:
        """A new session; other channels (the mini-program) reuse it with their own sender."""
        session_id = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(32)
        ttl = self.settings.web_session_ttl_hours * 3600
        try:
            await self.redis.hset(
                _session_key(session_id),
                mapping={
                    "session_id": session_id,
                    "token": _token_hash(token),
                    "channel": channel,
                    "sender": sender or session_id,
                    "created_at": str(time.time()),
                },
            )
            await self.redis.expire(_session_key(session_id), ttl)
        except (RedisError, OSError) as exc:
            raise Unavailable("服务暂时繁忙，请稍后重试") from exc
        return {"session_id": session_id, "token": token}

    async def count_new_session(self, address: str | None) -> None:
        """Charge one new session to the client's address (``HOTLINE_WEB_SESSIONS_PER_ADDRESS_PER_HOUR``):
        raises RateLimited past the limit, so sessions (and their photo quotas) cannot be minted
        by the thousand."""
        limit = self.settings.web_sessions_per_address_per_hour
        if not limit:
            return
        key = f"hl:web:new:{address_key(address)}:{int(time.time() // 3600)}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 3601)
                opened, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise Unavailable("服务暂时繁忙，请稍后重试") from exc
        if int(opened) > limit:
            log.info("web_sessions_limited", limit=limit)
            raise RateLimited("新建会话过于频繁，请稍后再试")

    async def authenticate(self, session_id: str, token: str | None, *, count: bool = False) -> dict[str, str]:
        """The session of a valid token; with ``count`` also charge one message to its rate limit
        (in the same round trip: this is the hot path of every message)."""
        if not token:
            raise Unauthorized("缺少会话令牌（Authorization: Bearer …）")
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(_session_key(session_id))
                if count:
                    rate_key = f"hl:web:rl:{session_id}:{int(time.time() // 60)}"
                    pipe.incr(rate_key)
                    pipe.expire(rate_key, 61)
                results = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise Unavailable("服务暂时繁忙，请稍后重试") from exc
        session = results[0]
        if count and session:
            session["sent_this_minute"] = str(results[1])
        if not session:
            raise NotFound("会话不存在或已过期，请刷新页面重新开始")
        if not hmac.compare_digest(session["token"], _token_hash(token)):
            raise Unauthorized("会话令牌不正确")
        return session

    async def check_upload_quota(self, session_id: str) -> None:
        """Refuse (403: final, unlike the per-minute 429) a session that has kept
        ``web_media_per_session`` photos already: the disk is shared by every citizen."""
        most = self.settings.web_media_per_session
        try:
            kept = int(await self.redis.get(_uploads_key(session_id)) or 0)
        except (RedisError, OSError) as exc:
            raise Unavailable("服务暂时繁忙，请稍后重试") from exc
        if kept >= most:
            raise Forbidden(f"本次会话最多发送{most}张图片，更多材料请在登记后联系人工客服补充")

    async def count_upload(self, session_id: str) -> None:
        key = _uploads_key(session_id)
        with contextlib.suppress(RedisError, OSError):  # the photo is kept; a missed count is harmless
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.settings.web_session_ttl_hours * 3600)
                await pipe.execute()

    # --- events ---------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> None:
        session_id = message.fields.get("session_id") or message.sender
        await self.redis.xadd(
            _events_key(session_id),
            {"data": json.dumps(event_of(message), ensure_ascii=False)},
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )
        await self.redis.expire(_events_key(session_id), self.settings.web_session_ttl_hours * 3600)

    async def read_events(
        self, session_id: str, after: str, wait_s: float
    ) -> tuple[list[dict[str, Any]], str]:
        """Events after ``after`` (a stream id; empty for all), waiting up to ``wait_s`` for new ones."""
        if after and not CURSOR.fullmatch(after):
            raise BadRequest("事件游标格式不正确（应为上一次返回的 cursor）")
        cursor = after or "0-0"
        block = int(wait_s * 1000) if wait_s > 0 else None
        resp = await self.redis.xread({_events_key(session_id): cursor}, count=100, block=block)
        events: list[dict[str, Any]] = []
        for _, entries in resp or []:
            for entry_id, fields in entries:
                events.append(json.loads(fields["data"]) | {"cursor": entry_id})
                cursor = entry_id
        return events, cursor

    # --- routes ---------------------------------------------------------------------------
    def webhooks(self) -> list[Webhook]:
        return []

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/web", tags=["web"])
        channel = self

        def bearer(authorization: str | None) -> str | None:
            if authorization and authorization.lower().startswith("bearer "):
                return authorization[7:].strip()
            return None

        @router.post("/sessions", status_code=201)
        async def create_session(request: Request) -> dict[str, str]:
            """Start an anonymous conversation; keep the token, it authorises every later call."""
            await channel.count_new_session(request.client.host if request.client else None)
            return await channel.create_session()

        @router.post("/sessions/{session_id}/messages", status_code=202)
        async def post_message(
            session_id: str,
            body: MessageIn,
            authorization: Annotated[str | None, Header()] = None,
        ) -> JSONResponse:
            session = await channel.authenticate(session_id, bearer(authorization), count=True)
            if int(session["sent_this_minute"]) > channel.settings.web_rate_per_minute:
                raise RateLimited("发送太频繁，请稍后再试")
            if body.attachments:
                owner = conversation_key(session["channel"], session["sender"])
                claimed = await channel.uploads.claim([a.ref for a in body.attachments], owner)
                body = body.model_copy(update={"attachments": claimed})
            msg = parse(session, body, channel.settings.max_text_chars)
            # The citizen's own words come back as an ``echo`` event, written with the message
            # in one round trip and only if it is new (a retried POST echoes nothing twice).
            side = (
                _events_key(session_id),
                json.dumps(echo_of(msg, session_id), ensure_ascii=False),
                EVENTS_MAXLEN,
                channel.settings.web_session_ttl_hours * 3600,
            )
            accepted = await channel.ctx.enqueue(msg, side)
            return JSONResponse(
                {"accepted": True, "duplicate": not accepted, "message_id": msg.channel_message_id},
                status_code=202,
            )

        @router.post("/sessions/{session_id}/media", status_code=201)
        async def upload_media(
            session_id: str, request: Request, authorization: Annotated[str | None, Header()] = None
        ) -> dict[str, Any]:
            """Upload one photo, then send the returned ``attachment`` with a message. The body is
            the image itself (``Content-Type: image/…``), or ``multipart/form-data`` with one file
            (what a mini-program's ``wx.uploadFile`` sends)."""
            session = await channel.authenticate(session_id, bearer(authorization), count=True)
            if int(session["sent_this_minute"]) > channel.settings.web_rate_per_minute:
                raise RateLimited("发送太频繁，请稍后再试")
            await channel.check_upload_quota(session_id)
            data = await _upload_body(request, channel.settings.web_media_max_bytes)
            owner = conversation_key(session["channel"], session["sender"])
            attachment = await channel.uploads.save(data, owner)
            await channel.count_upload(session_id)  # only photos kept count
            return {"attachment": attachment.model_dump()}

        @router.get("/sessions/{session_id}/media/{ref}")
        async def get_media(
            session_id: str, ref: str, authorization: Annotated[str | None, Header()] = None
        ) -> FileResponse:
            """A photo this conversation uploaded (the widget shows it again after a reload)."""
            session = await channel.authenticate(session_id, bearer(authorization))
            owner = conversation_key(session["channel"], session["sender"])
            found = await find(channel.redis, ref, channel.media_roots, owner=owner)
            if found is None:
                raise NotFound("图片不存在或已过期")
            return file_response(*found)

        @router.get("/sessions/{session_id}/events")
        async def get_events(
            session_id: str,
            after: str = "",
            wait: Annotated[float, Query(ge=0, le=30)] = 0,
            authorization: Annotated[str | None, Header()] = None,
        ) -> dict[str, Any]:
            await channel.authenticate(session_id, bearer(authorization))
            try:
                events, cursor = await channel.read_events(session_id, after, wait)
            except (RedisError, OSError) as exc:
                raise Unavailable("服务暂时繁忙，请稍后重试") from exc
            return {"events": events, "cursor": cursor}

        @router.get("/sessions/{session_id}/tickets")
        async def my_tickets(
            session_id: str, authorization: Annotated[str | None, Header()] = None
        ) -> dict[str, Any]:
            """The session's own tickets and their statuses (a mini-program page lists them)."""
            session = await channel.authenticate(session_id, bearer(authorization))
            key = conversation_key(session["channel"], session["sender"])
            return {"tickets": await channel.ctx.list_tickets(key)}

        @router.websocket("/sessions/{session_id}/ws")
        async def events_ws(websocket: WebSocket, session_id: str, token: str = "", after: str = "") -> None:
            try:
                await channel.authenticate(session_id, token)
            except (Unauthorized, NotFound):
                await websocket.close(code=4401)
                return
            await websocket.accept()
            cursor = after
            receiver = asyncio.create_task(_drain(websocket))
            try:
                while not receiver.done():
                    # Wait for events or the citizen leaving, whichever comes first: a blocking
                    # read must not hold its Redis connection after the socket is gone.
                    reader = asyncio.create_task(channel.read_events(session_id, cursor, 15))
                    await asyncio.wait({reader, receiver}, return_when=asyncio.FIRST_COMPLETED)
                    if not reader.done():
                        reader.cancel()
                        with contextlib.suppress(BaseException):
                            await reader
                        break
                    events, cursor = reader.result()
                    for event in events:
                        await websocket.send_json(event)
            except (WebSocketDisconnect, RuntimeError, RedisError, OSError, BadRequest):
                pass
            finally:
                receiver.cancel()
                with contextlib.suppress(BaseException):
                    await receiver

        return router


async def _upload_body(request: Request, max_bytes: int) -> bytes:
    """The uploaded file's bytes, whether sent raw or as the one file of a multipart form."""
    too_large = PayloadTooLarge(f"图片过大（最多{max_bytes // (1024 * 1024)}MB），请压缩后再发送")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=5)
        except ValueError as exc:  # not a well-formed form
            raise BadRequest("上传格式不正确：multipart/form-data 中应有一个图片文件") from exc
        try:
            files = [v for v in form.values() if isinstance(v, UploadFile)]
            if not files:
                raise BadRequest("上传格式不正确：multipart/form-data 中应有一个图片文件")
            if files[0].size is not None and files[0].size > max_bytes:
                raise too_large
            data = await files[0].read(max_bytes + 1)
        finally:
            await form.close()
    else:
        data = await request.body()
    if len(data) > max_bytes:
        raise too_large
    if not data:
        raise BadRequest("没有收到图片")
    return data


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client frames so a disconnect is noticed."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()


def build(ctx: ChannelContext) -> list[WebChannel]:
    return [WebChannel(ctx)] if ctx.settings.web_enabled else []
