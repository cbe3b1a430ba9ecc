"""``/channels/wechat/<account>``: URL verification (GET), pushes (POST), mini-program login.

A push is verified (signature or msg_signature, replay window), decrypted, parsed safely, handed
to ``ctx.enqueue`` and answered ``success`` at once: the WeChat API is never called on this path,
so the answer does not depend on the workers or on WeChat. The two webhook endpoints are
``Webhook``s, served on the gateway's hot path ahead of the framework's middleware and routing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Header
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from channels.base import (
    BadRequest,
    Forbidden,
    HookRequest,
    NotFound,
    RateLimited,
    Then,
    Unauthorized,
    Unavailable,
    Webhook,
    well_formed,
)
from channels.wechat.api import WechatApiError
from channels.wechat.crypto import check_signature, check_timestamp
from channels.wechat.parse import (
    CONSENT_EVENTS,
    USER_ACTIONS,
    Push,
    accepted_templates,
    channel_of,
    event_of,
    menu_click,
    parse_body,
    sender_of,
    split_sender,
    to_inbound,
)
from channels.wechat.window import StateUnavailable
from config.settings import WechatAccount

if TYPE_CHECKING:
    from channels.wechat.channel import WechatChannel

SUCCESS = "success"
_SUCCESS = PlainTextResponse(SUCCESS)  # immutable once built: one answer object for every push
ACK_BUDGET_S = 4.0  # WeChat waits 5 s for the answer


class LoginIn(BaseModel):
    code: str = Field(min_length=1, max_length=128)


class ConsentIn(BaseModel):
    accepted: list[str] = Field(default_factory=list, max_length=10)


def build_webhooks(channel: WechatChannel) -> list[Webhook]:
    """``GET|POST /channels/wechat/{account}``: served on the gateway's hot path (``Webhook``)."""
    settings = channel.settings

    async def verify_url(request: HookRequest) -> PlainTextResponse:
        """Server URL verification: echo ``echostr`` when the signature is right."""
        name, acc = channel.account(request.param)
        q = request.query
        timestamp, nonce, echostr = q.get("timestamp", ""), q.get("nonce", ""), q.get("echostr", "")
        check_timestamp(timestamp, settings.wechat_replay_window_s)
        if not echostr:
            raise BadRequest("缺少 echostr")
        if q.get("msg_signature") and name in channel.ciphers:
            # Encrypted echostr (WeCom-style verification): echo its decryption.
            check_signature(q.get("msg_signature"), acc.token, timestamp, nonce, echostr)
            return PlainTextResponse(channel.ciphers[name].decrypt(echostr))
        check_signature(q.get("signature"), acc.token, timestamp, nonce)
        return PlainTextResponse(echostr)

    async def push(request: HookRequest) -> PlainTextResponse:
        """A message or event push, plain or safe mode, XML or JSON."""
        name, acc = channel.account(request.param)
        body, q = request.body, request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        check_timestamp(timestamp, settings.wechat_replay_window_s)
        cipher = channel.ciphers.get(name)
        if cipher is not None:
            envelope = parse_body(body)
            encrypted = envelope.get("Encrypt")
            if not isinstance(encrypted, str) or not encrypted:
                raise Forbidden("此账号启用了安全模式：消息必须加密（消息加解密方式选“安全模式”）")
            check_signature(q.get("msg_signature"), acc.token, timestamp, nonce, encrypted)
            data = parse_body(cipher.decrypt(encrypted))
        else:
            check_signature(q.get("signature"), acc.token, timestamp, nonce)
            data = parse_body(body)
            if "Encrypt" in data and "MsgType" not in data:
                raise BadRequest("收到加密消息，但未配置 EncodingAESKey（HOTLINE_WECHAT_<NAME>_AES_KEY）")
        await accept(name, acc, data)
        return _SUCCESS

    async def accept(name: str, acc: WechatAccount, data: Push) -> None:
        """Redis stalls are answered 503 well before WeChat's 5 s (it will retry): messages through
        the enqueue's group-commit deadline (2.5 s), menu clicks the window's (1.5 s), events here."""
        event = event_of(data)
        openid = well_formed(str(data.get("FromUserName") or ""))  # as the message's sender
        try:
            if event in CONSENT_EVENTS:
                templates = accepted_templates(data)
                async with asyncio.timeout(ACK_BUDGET_S):
                    if templates and await channel.ctx.redis.set(
                        f"hl:wx:seen:{name}:{openid}:{data.get('CreateTime')}:{event}", "1", nx=True, ex=86400
                    ):
                        await channel.windows.add_consents(name, openid, templates)
                return
            if event == "unsubscribe":
                async with asyncio.timeout(ACK_BUDGET_S):
                    await channel.windows.close(name, openid)
                return
        except (StateUnavailable, RedisError, OSError, TimeoutError) as exc:
            raise Unavailable("服务暂时繁忙，请稍后重试") from exc
        if event in USER_ACTIONS and openid and not menu_click(data):
            await channel.contact(name, openid)
            return
        msg = to_inbound(data, name, acc.kind, settings.max_text_chars)
        # The window opens (and media are queued) atomically with the enqueue, in its round trip.
        then = Then(channel.windows.contact_commands(name, openid, [a.ref for a in msg.attachments]))
        if await channel.ctx.enqueue(msg, then=then) and then.result:
            await channel.requeue_held(name, openid, channel.windows.held_in(then.result))

    label = "/channels/wechat/{account}"
    limit = settings.wechat_max_body_bytes
    return [Webhook("GET", "/wechat/", verify_url, limit, label), Webhook("POST", "/wechat/", push, limit, label)]


def build_router(channel: WechatChannel) -> APIRouter:
    """The mini-program's own endpoints (login, subscribe-message consents)."""
    router = APIRouter(prefix="/wechat", tags=["wechat"])
    settings = channel.settings

    @router.post("/{account}/login", status_code=201)
    async def login(account: str, body: LoginIn) -> dict[str, str]:
        """Mini-program pages: trade a ``wx.login`` code for a chat session on the web message API
        (``/channels/web/sessions/{session_id}/messages|events|ws``), bound to the citizen's openid."""
        name, acc = channel.account(account)
        if acc.kind != "mp":
            raise NotFound(f"{name} 不是小程序账号")
        try:
            data = await channel.api(acc).code2session(body.code)
        except WechatApiError as exc:
            if exc.errcode in (40029, 40163, 40226):
                raise Unauthorized("登录凭证（code）无效或已使用，请重新调用 wx.login") from exc
            if exc.errcode == 45011:
                raise RateLimited("登录太频繁，请稍后再试") from exc
            raise Unavailable("微信登录服务暂时不可用，请稍后重试") from exc
        openid = str(data.get("openid") or "")
        if not openid:
            raise Unavailable("微信登录服务返回异常，请稍后重试")
        session = await channel.web.create_session(channel_of(acc.kind), sender_of(name, openid))
        try:
            await channel.windows.set_page_session(
                name, openid, session["session_id"], settings.web_session_ttl_hours * 3600
            )
        except StateUnavailable as exc:
            raise Unavailable("服务暂时繁忙，请稍后重试") from exc
        return {**session, "channel": channel_of(acc.kind)}

    @router.post("/{account}/sessions/{session_id}/subscriptions")
    async def subscriptions(
        account: str,
        session_id: str,
        body: ConsentIn,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, dict[str, int]]:
        """What ``wx.requestSubscribeMessage`` returned ``accept`` for: one consent per template each."""
        name, _ = channel.account(account)
        token = authorization[7:].strip() if authorization and authorization.lower().startswith("bearer ") else None
        session = await channel.web.authenticate(session_id, token)
        owner, openid = split_sender(session.get("sender", ""))
        if owner != name or not openid:
            raise Forbidden("此会话不属于该小程序")
        try:
            await channel.windows.add_consents(name, openid, body.accepted)
            return {"consents": await channel.windows.consents(name, openid)}
        except StateUnavailable as exc:
            raise Unavailable("服务暂时繁忙，请稍后重试") from exc

    return router
