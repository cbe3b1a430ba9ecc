"""The WeChat adapter: one object serves every configured account of both kinds.

``channel`` is exactly ``wechat_oa`` or ``wechat_mp`` and the sender is ``<account>/<openid>``, so a
reply finds its account and the admin API's channel filter lists all WeChat conversations.

Delivery order for a message to a citizen: a customer-service message while the window is open;
else, for a ticket number or a status update, a subscribe message when the citizen has a consent
left (a progress note only when one more is left: the last is kept for a status change, 办结
above all); else the message is held and re-queued at the citizen's next contact. Messages for a
mini-program page's own session (``fields.session_id``) go into that web session's event stream.
"""

from __future__ import annotations

import secrets
from typing import Any

import structlog
from fastapi import APIRouter
from redis.exceptions import RedisError

from channels.base import ChannelContext, DeliveryError, NotFound, OutboundMessage, Webhook
from channels.media import FetchFailed, MediaFetcher
from channels.web import WebChannel
from channels.wechat.api import NOT_REACHABLE, WINDOW_CLOSED, WechatApi, WechatApiError
from channels.wechat.crypto import Cipher
from channels.wechat.delivery import custom_payloads, subscribe_data
from channels.wechat.parse import split_sender
from channels.wechat.window import MEDIA_QUEUE, MEDIA_RETRY, StateUnavailable, Windows
from config.settings import WechatAccount

log = structlog.get_logger(__name__)

CHANNELS = ("wechat_oa", "wechat_mp")
SUBSCRIBE_KINDS = ("status_update", "ticket_filed")


class WechatChannel:
    name = "wechat"

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.accounts: dict[str, WechatAccount] = {k.lower(): v for k, v in ctx.settings.wechat.items()}
        # Built once: a bad EncodingAESKey fails at start-up, not on the first push.
        self.ciphers = {
            name: Cipher(acc.aes_key, acc.appid) for name, acc in self.accounts.items() if acc.aes_key
        }
        self.web = WebChannel(ctx)
        self._windows: Windows | None = None
        self.media = MediaFetcher(
            ctx,
            queue=MEDIA_QUEUE,
            retry=MEDIA_RETRY,
            folder=ctx.settings.wechat_media_folder,
            fetch=self._get_media,
            first_retry_s=lambda: self.settings.wechat_media_retry_s,
        )

    # --- plumbing -------------------------------------------------------------------------
    def handles(self, channel: str) -> bool:
        return channel in CHANNELS

    def account(self, name: str) -> tuple[str, WechatAccount]:
        key = name.lower()
        if key not in self.accounts:
            raise NotFound(f"未配置的微信账号：{name}")
        return key, self.accounts[key]

    @property
    def windows(self) -> Windows:
        if self._windows is None:  # ctx.redis is set at start-up, after the routes are mounted
            self._windows = Windows(
                self.ctx.redis,
                self.settings.wechat_window_hours,
                self.settings.wechat_window_messages,
                self.settings.wechat_held_days,
            )
        return self._windows

    def api(self, account: WechatAccount) -> WechatApi:
        return WechatApi(self.ctx.http, self.ctx.redis, self.settings.wechat_api_base, account)

    def router(self) -> APIRouter:
        from channels.wechat.routes import build_router

        return build_router(self)

    def webhooks(self) -> list[Webhook]:
        from channels.wechat.routes import build_webhooks

        return build_webhooks(self)

    async def start(self) -> None:
        self.media.start()

    async def stop(self) -> None:
        await self.media.stop()

    # --- inbound side effects -------------------------------------------------------------
    async def contact(self, account: str, openid: str, media: list[str] | None = None) -> None:
        """The citizen acted without a message (menu click…): open the window, re-queue what was held."""
        try:
            held = await self.windows.contact(account, openid, media)
        except StateUnavailable as exc:
            log.warning("wechat_contact_not_recorded", account=account, error=str(exc))
            return
        await self.requeue_held(account, openid, held)

    async def requeue_held(self, account: str, openid: str, held: list[str]) -> None:
        """Re-queue messages held while the window was closed (new ids, so the outbound
        de-duplication lets them through), then release each. Failure here never loses one:
        held messages stay held until the next contact."""
        try:
            for data in held:
                out = OutboundMessage.model_validate_json(data)
                again = out.model_copy(update={"id": f"{out.id}~{secrets.token_hex(4)}"})
                await self.ctx.publish(again)
                await self.windows.release(account, openid, out)
        except (StateUnavailable, RedisError, OSError) as exc:
            log.warning("wechat_held_not_requeued", account=account, error=str(exc))

    # --- outbound -------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> None:
        try:
            if message.fields.get("session_id"):
                await self.web.send(message)  # a mini-program page's own session
                return
            name, openid = split_sender(message.sender)
            if name not in self.accounts or not openid:
                raise DeliveryError(f"no WeChat account for {message.conversation_key}", retry_after=None)
            account = self.accounts[name]
            await self._deliver(name, account, openid, message)
            again = "~" in message.id  # re-queued after being held: the page has it already
            if account.kind == "mp" and not again and (page := await self.windows.page_session(name, openid)):
                # A citizen using the mini-program's pages also sees it there.
                await self.web.send(message.model_copy(update={"fields": {**message.fields, "session_id": page}}))
        except (StateUnavailable, RedisError, OSError) as exc:
            raise DeliveryError(f"state unavailable: {exc}", retry_after=5) from exc

    async def _deliver(self, name: str, account: WechatAccount, openid: str, out: OutboundMessage) -> None:
        seen = await self.windows.state(name, openid)
        closed_by_wechat = False
        if seen.open:
            api = self.api(account)
            try:
                for payload in custom_payloads(out, account.kind):
                    await api.send_custom(openid, payload)
                    await self.windows.count_sent(name, openid)
                return
            except WechatApiError as exc:
                if exc.errcode in WINDOW_CLOSED or exc.errcode in NOT_REACHABLE:
                    closed_by_wechat = True
                    await self.windows.closed_by_wechat(name, openid, seen)
                    log.info("wechat_window_closed", account=name, errcode=exc.errcode, out=out.id)
                elif exc.transient:
                    raise DeliveryError(str(exc), retry_after=60 if exc.errcode == 45009 else 5) from exc
                else:
                    raise DeliveryError(f"WeChat refused the message: {exc}", retry_after=None) from exc
        if out.kind in SUBSCRIBE_KINDS and await self._subscribe(name, account, openid, out):
            return
        if not await self.windows.hold(name, openid, out, seen, closed_by_wechat=closed_by_wechat):
            raise DeliveryError("the citizen just came back: send again now", retry_after=0.2)
        log.info("wechat_message_held", account=name, out=out.id, kind=out.kind)

    async def _subscribe(self, name: str, account: WechatAccount, openid: str, out: OutboundMessage) -> bool:
        """Send ``out`` as a subscribe message if the citizen has a consent left; True if sent."""
        template = account.subscribe_template_id
        keep = 1 if out.fields.get("progress") == "1" else 0  # a note never spends the last consent
        if not template or not await self.windows.take_consent(name, openid, template, keep=keep):
            return False
        try:
            await self.api(account).send_subscribe(
                openid, template, subscribe_data(out, account.subscribe_fields), account.subscribe_page
            )
        except WechatApiError as exc:
            if exc.errcode == 43101:  # the consent was already used or withdrawn
                return False
            await self.windows.give_back_consent(name, openid, template)
            if exc.transient:
                raise DeliveryError(str(exc), retry_after=5) from exc
            log.warning("wechat_subscribe_refused", account=name, errcode=exc.errcode, errmsg=exc.errmsg)
            return False
        return True

    # --- media ----------------------------------------------------------------------------
    async def _get_media(self, ref: str) -> tuple[bytes, str] | None:
        """The image or voice of ``wechat:<account>:<MediaId>`` (WeChat keeps them three days)."""
        _, name, media_id = (ref.split(":", 2) + ["", ""])[:3]
        account = self.accounts.get(name)
        if account is None or not media_id:
            return None
        try:
            return await self.api(account).get_media(media_id)
        except WechatApiError as exc:
            raise FetchFailed(f"{exc.errcode} {exc.errmsg}", transient=exc.transient) from exc


def build(ctx: ChannelContext) -> list[Any]:
    return [WechatChannel(ctx)] if ctx.settings.wechat else []
