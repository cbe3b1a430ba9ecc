"""Telegram (aiogram 3): one webhook per bot into the gateway, replies by the Bot API within its limits.

Inbound, ``POST /channels/telegram/{bot}``: look the bot up (404) → compare the
``X-Telegram-Bot-Api-Secret-Token`` header in constant time (403) → validate the body into an
aiogram ``Update`` (400) → ``Dispatcher.feed_update``, whose handlers (``/start``, location,
photo, text; private chats only) turn the message into an ``InboundMessage`` and ``ctx.enqueue`` it,
de-duplicated by ``<bot>:<update_id>`` → 200. Nothing on this path calls the Bot API. Updates we
do not act on (edits, stickers, group chats, member changes, types newer than aiogram) answer 200 so
Telegram does not redeliver them.

Outbound, ``send``: the sender is ``<bot>/<chat_id>``, so a reply (or a status update days later)
goes through the bot the citizen wrote to. A limiter kept in Redis, shared by every process, paces
deliveries to 1 message/s per chat and 30/s per bot; a short wait is awaited, a longer one becomes
``DeliveryError(retry_after=…)`` so the worker reschedules. aiogram's errors are translated here,
once (``delivery_error``): flood control → retry after Telegram's delay; blocked or bad chat → dead
letter; network or server trouble → retry in 5 s.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any

import aiohttp
import structlog
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatType
from aiogram.exceptions import (
    AiogramError,
    ClientDecodeError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import BotCommand, KeyboardButton, Message, ReplyKeyboardMarkup, Update
from aiogram.types.update import UpdateTypeLookupError
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import ValidationError
from redis.exceptions import RedisError

from channels.base import (
    Attachment,
    BadRequest,
    ChannelContext,
    DeliveryError,
    Enqueue,
    Forbidden,
    GeoLocation,
    InboundMessage,
    NotFound,
    OutboundMessage,
    Then,
    Unavailable,
    Webhook,
    split_text,
)
from channels.media import FetchFailed, MediaFetcher

log = structlog.get_logger(__name__)

NAME = "telegram"
TEXT_LIMIT = 4096  # characters per sendMessage
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message"]
MEDIA_QUEUE = "hl:tg:media:queue"  # photo references waiting to be fetched (``telegram:<bot>:<file_id>``)
MEDIA_RETRY = "hl:tg:media:retry"

# Telegram's limits: about 1 message/s in one chat and 30 messages/s per bot overall.
PER_CHAT_INTERVAL_S = 1.0
PER_BOT_PER_S = 30
MAX_WAIT_S = 1.0  # wait this long inside send(); longer waits go back to the worker's schedule

# GCRA over several keys at once: each key holds its theoretical arrival time (ms). ARGV holds
# (interval_ms, tolerance_ms) per key. Returns 0 and takes a slot on every key, or the ms to wait.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local tats = {}
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  tats[i] = tat
  local w = tat - tonumber(ARGV[2 * i]) - now
  if w > wait then wait = w end
end
if wait > 0 then return math.ceil(wait) end
for i = 1, #KEYS do
  local next_tat = tats[i] + tonumber(ARGV[2 * i - 1])
  redis.call('SET', KEYS[i], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1000)
end
return 0
"""


def sender_of(bot_name: str, chat_id: int) -> str:
    return f"{bot_name}/{chat_id}"


def route_of(sender: str) -> tuple[str, int]:
    """``<bot>/<chat_id>`` → (bot, chat id); ValueError for anything else."""
    bot_name, sep, chat = sender.rpartition("/")
    if not sep or not bot_name:
        raise ValueError(f"not a telegram sender: {sender!r}")
    return bot_name, int(chat)


def mask(chat_id: int | str) -> str:
    """A chat id fit for logs: enough to correlate, not enough to contact."""
    text = str(chat_id)
    return text[:2] + "***" + text[-2:] if len(text) > 4 else "***"


def inbound(
    bot_name: str, update_id: int, message: Message, *, event: str | None = None, meta: dict[str, str] | None = None
) -> InboundMessage:
    """One Telegram message → an InboundMessage (pure: no I/O)."""
    location = None
    if message.location is not None:
        label = ""
        if message.venue is not None:
            label = " ".join(p for p in (message.venue.title, message.venue.address) if p)
        location = GeoLocation(lat=message.location.latitude, lng=message.location.longitude, label=label)
    attachments = []
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        attachments.append(Attachment(kind="image", mime="image/jpeg", ref=f"{NAME}:{bot_name}:{largest.file_id}"))
    text = "" if event in ("start", "click") else (message.text or message.caption or "")
    return InboundMessage(
        channel=NAME,
        channel_message_id=f"{bot_name}:{update_id}",
        sender=sender_of(bot_name, message.chat.id),
        received_at=message.date,
        text=text.strip(),
        attachments=attachments,
        location=location,
        event=event,
        meta={"bot": bot_name, "chat_id": str(message.chat.id), "message_id": str(message.message_id), **(meta or {})},
    )


def dispatcher(enqueue: Enqueue) -> Dispatcher:
    """The aiogram dispatcher of the webhook path: its handlers only build messages and enqueue them."""
    router = Router(name="hotline-telegram")
    router.message.filter(F.chat.type == ChatType.PRIVATE)

    @router.message(CommandStart(ignore_mention=True))  # ignore_mention: no getMe on the webhook path
    async def on_start(message: Message, command: CommandObject, event_update: Update, bot_name: str) -> None:
        meta = {"start_param": command.args} if command.args else None
        await enqueue(inbound(bot_name, event_update.update_id, message, event="start", meta=meta))

    @router.message(Command(*MENU_COMMANDS, ignore_case=True, ignore_mention=True))
    async def on_menu(message: Message, command: CommandObject, event_update: Update, bot_name: str) -> None:
        """/report, /progress, /faq, /human: the bot's menu, as WeChat's menu buttons are."""
        key = MENU_COMMANDS[command.command.lower()][0]
        await enqueue(inbound(bot_name, event_update.update_id, message, event="click", meta={"event_key": key}))

    @router.message(F.text | F.photo | F.location)
    async def on_message(message: Message, event_update: Update, bot_name: str) -> None:
        msg = inbound(bot_name, event_update.update_id, message)
        # a photo is fetched in the background, queued with the message (and only if it is new)
        media = [a.ref for a in msg.attachments]
        await enqueue(msg, then=Then([["RPUSH", MEDIA_QUEUE, *media]]) if media else None)

    dp = Dispatcher(name="hotline-telegram")
    dp.include_router(router)
    return dp


# The bot's menu as commands (the "/" list set by ``set_webhook``): command → (the menu key the
# bot answers, as WeChat's menu buttons carry it; what the citizen reads in the list).
MENU_COMMANDS = {
    "report": ("hotline:report", "我要反映问题"),
    "progress": ("hotline:progress", "查询我的工单进度"),
    "faq": ("hotline:faq", "常见问题"),
    "human": ("hotline:human", "转人工客服"),
}
ROW_CHARS = 12  # buttons this long (催办 12345-20261129-000001) get a row each, or a phone cuts them


def keyboard(buttons: list[str]) -> ReplyKeyboardMarkup | None:
    """Buttons as a one-time reply keyboard: a tap comes back as an ordinary text message."""
    if not buttons:
        return None
    keys = [KeyboardButton(text=b) for b in buttons]
    rows = [[k] for k in keys] if any(len(b) > ROW_CHARS for b in buttons) else [keys]
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True, one_time_keyboard=True)


def delivery_error(exc: AiogramError, what: str) -> DeliveryError:
    """aiogram's errors, translated once: what the worker should do with the delivery."""
    if isinstance(exc, TelegramRetryAfter):
        return DeliveryError(f"{what}: Telegram flood control, retry after {exc.retry_after}s", float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError):
        return DeliveryError(f"{what}: the citizen blocked the bot or left the chat", retry_after=None)
    if isinstance(exc, TelegramUnauthorizedError):
        # A revoked token is an operator's fix; keep the messages until it is made.
        return DeliveryError(f"{what}: bot token refused, check HOTLINE_TELEGRAM_<BOT>_TOKEN", retry_after=60.0)
    if isinstance(exc, TelegramNetworkError | TelegramServerError):
        return DeliveryError(f"{what}: Telegram unreachable ({type(exc).__name__})", retry_after=5.0)
    if isinstance(exc, ClientDecodeError):  # a proxy's HTML error page instead of Bot API JSON
        return DeliveryError(f"{what}: unreadable Bot API answer", retry_after=5.0)
    # Bad request, chat not found, migrated group, entity too large: repeating will not help.
    return DeliveryError(f"{what}: {type(exc).__name__}: {exc}", retry_after=None)


class Limiter:
    """Telegram's send limits for every process at once, kept in Redis (GCRA)."""

    def __init__(
        self,
        redis: Any,
        per_chat_interval_s: float = PER_CHAT_INTERVAL_S,
        per_bot_per_s: int = PER_BOT_PER_S,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        self.script = redis.register_script(_ACQUIRE)
        self.per_chat_ms = per_chat_interval_s * 1000
        self.per_bot_ms = 1000 / per_bot_per_s
        self.bot_burst_ms = self.per_bot_ms * (per_bot_per_s - 1)
        self.max_wait_s = max_wait_s

    async def try_acquire(self, bot_name: str, chat_id: int) -> float:
        """Take a slot for one message (returns 0) or say how many seconds to wait (takes nothing)."""
        try:
            wait_ms = await self.script(
                keys=[f"hl:tg:rl:chat:{bot_name}:{chat_id}", f"hl:tg:rl:bot:{bot_name}"],
                args=[self.per_chat_ms, 0, self.per_bot_ms, self.bot_burst_ms],
            )
        except (RedisError, OSError) as exc:
            raise DeliveryError(f"rate limiter unavailable: {exc}", retry_after=5.0) from exc
        return int(wait_ms) / 1000

    async def acquire(self, bot_name: str, chat_id: int) -> None:
        """Wait for a slot up to ``max_wait_s``; beyond that raise ``DeliveryError(retry_after=…)``."""
        wait = 0.0
        for _ in range(5):
            wait = await self.try_acquire(bot_name, chat_id)
            if wait <= 0:
                return
            if wait > self.max_wait_s:
                break
            await asyncio.sleep(wait)
        raise DeliveryError(f"telegram rate limit for chat {mask(chat_id)}", retry_after=max(wait, 0.1))


class TelegramChannel:
    """Every configured bot: webhooks in, ``sendMessage`` out."""

    name = NAME

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.configs = dict(ctx.settings.telegram)
        self.dispatcher = dispatcher(ctx.enqueue)
        self.bots: dict[str, Bot] = {}
        self.limiter: Limiter | None = None
        self.media = MediaFetcher(
            ctx,
            queue=MEDIA_QUEUE,
            retry=MEDIA_RETRY,
            folder=ctx.settings.media_folder / NAME,
            fetch=self._get_file,
            first_retry_s=lambda: self.settings.telegram_media_retry_s,
        )

    def handles(self, channel: str) -> bool:
        return channel == NAME

    async def start(self) -> None:
        api = TelegramAPIServer.from_base(self.settings.telegram_api_base)
        for bot_name, config in self.configs.items():
            self.bots[bot_name] = Bot(config.token, session=AiohttpSession(api=api))
        self.limiter = Limiter(self.ctx.redis)
        self.media.start()

    async def stop(self) -> None:
        await self.media.stop()
        bots, self.bots = self.bots, {}
        for bot in bots.values():
            await bot.session.close()

    # --- outbound -------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> None:
        try:
            bot_name, chat_id = route_of(message.sender)
        except ValueError as exc:
            raise DeliveryError(str(exc), retry_after=None) from exc
        bot = self.bots.get(bot_name)
        if bot is None:
            raise DeliveryError(f"no telegram bot {bot_name!r} configured", retry_after=None)
        if not message.text.strip():
            return
        assert self.limiter is not None, "telegram channel not started"
        chunks = split_text(message.text, TEXT_LIMIT)
        # A long text goes in parts; remember how many went, so a retry does not repeat them.
        progress = f"hl:tg:parts:{message.id}"
        done = int(await self._redis(self.ctx.redis.get(progress)) or 0) if len(chunks) > 1 else 0
        for i, chunk in enumerate(chunks[done:], start=done):
            await self.limiter.acquire(bot_name, chat_id)
            last = i == len(chunks) - 1
            try:
                await bot.send_message(chat_id, chunk, reply_markup=keyboard(message.buttons) if last else None)
            except AiogramError as exc:
                error = delivery_error(exc, "sendMessage")
                log.warning(
                    "telegram_delivery_failed",
                    bot=bot_name,
                    chat=mask(chat_id),
                    error=type(exc).__name__,
                    retry_after=error.retry_after,
                )
                raise error from exc
            if len(chunks) > 1 and not last:
                await self._redis(self.ctx.redis.set(progress, i + 1, ex=self.settings.dedupe_ttl_s))

    # --- media ----------------------------------------------------------------------------
    async def _get_file(self, ref: str) -> tuple[bytes, str] | None:
        """The photo of ``telegram:<bot>:<file_id>`` (``getFile``, then the file's URL), so an
        operator sees it and the ticket keeps it."""
        _, bot_name, file_id = (ref.split(":", 2) + ["", ""])[:3]
        bot = self.bots.get(bot_name)
        if bot is None or not file_id:
            return None
        try:
            found = await bot.get_file(file_id)
            if not found.file_path:
                raise FetchFailed("getFile: no file_path (the file is no longer available)", transient=False)
            content = await bot.download_file(found.file_path)
        except AiogramError as exc:
            error = delivery_error(exc, "getFile")
            raise FetchFailed(str(error), transient=error.retry_after is not None) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:  # the file download itself
            gone = isinstance(exc, aiohttp.ClientResponseError) and 400 <= exc.status < 500
            raise FetchFailed(f"download: {type(exc).__name__}: {exc}", transient=not gone) from exc
        return (content.read(), "image/jpeg") if content is not None else None

    @staticmethod
    async def _redis(call: Any) -> Any:
        try:
            return await call
        except (RedisError, OSError) as exc:
            raise DeliveryError(f"redis unavailable: {exc}", retry_after=5.0) from exc

    # --- inbound --------------------------------------------------------------------------
    def webhooks(self) -> list[Webhook]:
        return []

    def router(self) -> APIRouter | None:
        router = APIRouter(prefix="/telegram", tags=["telegram"])
        channel = self

        @router.post("/{bot_name}")
        async def webhook(
            bot_name: str,
            request: Request,
            secret: Annotated[str | None, Header(alias=SECRET_HEADER)] = None,
        ) -> Response:
            """Telegram's webhook for one bot: verify, validate, enqueue, answer 200 at once."""
            config = channel.configs.get(bot_name)
            if config is None:
                raise NotFound(f"unknown telegram bot {bot_name!r}")
            if not hmac.compare_digest((secret or "").encode(), config.secret.encode()):
                raise Forbidden("secret token mismatch")
            bot = channel.bots.get(bot_name)
            if bot is None:
                raise Unavailable("telegram channel not started")
            try:
                update = Update.model_validate_json(await request.body(), context={"bot": bot})
            except ValidationError as exc:
                raise BadRequest("malformed Telegram update") from exc
            try:
                update.event_type  # noqa: B018  (raises for an update type newer than aiogram)
            except UpdateTypeLookupError:
                return Response(status_code=200)
            await channel.dispatcher.feed_update(bot, update, bot_name=bot_name)
            return Response(status_code=200)

        return router


async def set_webhook(settings: Any, bot_name: str, url: str | None = None) -> dict[str, Any]:
    """Register ``bot_name``'s webhook with its secret (the URL defaults to the settings'), and the
    bot's menu commands (/report, /progress, /faq, /human) as the citizen's "/" list.

    Raises ValueError for a configuration problem and DeliveryError when the Bot API refuses.
    """
    config = settings.telegram.get(bot_name)
    if config is None:
        known = ", ".join(sorted(settings.telegram)) or "none"
        raise ValueError(
            f"no Telegram bot {bot_name!r} (configured: {known}); set HOTLINE_TELEGRAM_{bot_name.upper()}_TOKEN"
        )
    url = url or config.webhook_url
    if not url and settings.public_url:
        url = f"{settings.public_url.rstrip('/')}/channels/telegram/{bot_name}"
    if not url:
        raise ValueError(
            f"no webhook URL: pass one or set HOTLINE_TELEGRAM_{bot_name.upper()}_WEBHOOK_URL or HOTLINE_PUBLIC_URL"
        )
    api = TelegramAPIServer.from_base(settings.telegram_api_base)
    bot = Bot(config.token, session=AiohttpSession(api=api))
    try:
        await bot.set_webhook(url=url, secret_token=config.secret, allowed_updates=ALLOWED_UPDATES)
        await bot.set_my_commands([BotCommand(command=c, description=d) for c, (_, d) in MENU_COMMANDS.items()])
        info = await bot.get_webhook_info()
    except AiogramError as exc:
        raise delivery_error(exc, "setWebhook") from exc
    finally:
        await bot.session.close()
    return {"bot": bot_name, "url": url, "webhook_info": info.model_dump(mode="json", exclude_none=True)}


def build(ctx: ChannelContext) -> list[TelegramChannel]:
    return [TelegramChannel(ctx)] if ctx.settings.telegram else []
