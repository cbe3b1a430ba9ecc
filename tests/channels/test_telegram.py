"""The Telegram channel: real Update payloads through the webhook, the Bot API through a local fake.

The fake Bot API (``FakeBotApi``) is an aiohttp server on 127.0.0.1 that answers with the Bot API's
real response shapes (``fixtures/telegram/api/``) and records every call; aiogram's ``Bot`` reaches
it through ``TelegramAPIServer.from_base(settings.telegram_api_base)``. Redis is real.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiogram.exceptions import AiogramError
from aiohttp import web
from fastapi import FastAPI

from channels import telegram
from channels.base import ChannelContext, DeliveryError, InboundMessage, OutboundMessage
from channels.media import record_key
from config.settings import Settings, TelegramBot
from gateway import errors, keys
from gateway.streams import Streams
from tests.conftest import ADMIN_TOKEN, photo, serve_local

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
TOKEN = "123456789:AAHtest-token_for_the_fake_bot_api0"
OTHER_TOKEN = "987654321:AAHanother-token_for_the_fake_api"
SECRET = "test-secret-0123456789abcdef"
CHAT = 523817264
TICKET = re.compile(r"12345-\d{8}-\d{6}")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def api_fixture(name: str) -> dict[str, Any]:
    return fixture(f"api/{name}")


# --- the fake Bot API ---------------------------------------------------------------------------
@dataclass
class Call:
    token: str
    method: str
    params: dict[str, Any]
    at: float


@dataclass
class FakeBotApi:
    """Records Bot API calls; answers like Telegram (scripted answers first, then the happy path)."""

    calls: list[Call] = field(default_factory=list)
    scripted: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # file_path → content, as getFile hands them out
    url: str = ""
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self.download)
        self.runner, self.url = await serve_local(app)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def script(self, method: str, status: int, body: dict[str, Any] | str) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.scripted.setdefault(method, []).append((status, text))

    def sent(self, token: str = TOKEN) -> list[Call]:
        return [c for c in self.calls if c.method == "sendMessage" and c.token == token]

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(await request.post())
        for key in ("reply_markup", "allowed_updates"):
            if key in params:
                params[key] = json.loads(params[key])
        self.calls.append(Call(request.match_info["token"], method, params, time.monotonic()))
        if self.scripted.get(method):
            status, text = self.scripted[method].pop(0)
            return web.Response(status=status, text=text, content_type="application/json")
        return web.json_response(self.answer(method, params))

    async def download(self, request: web.Request) -> web.Response:
        self.calls.append(Call(request.match_info["token"], "download", {"path": request.match_info["path"]},
                               time.monotonic()))
        content = self.files.get(request.match_info["path"])
        if content is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=content, content_type="image/jpeg")

    def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "getFile":
            body = api_fixture("getFile__ok")
            body["result"]["file_id"] = params["file_id"]
            return body
        if method == "sendMessage":
            body = api_fixture("sendMessage__ok")
            body["result"].update(
                message_id=100 + len(self.calls),
                date=int(time.time()),
                chat={"id": int(params["chat_id"]), "first_name": "Citizen", "type": "private"},
                text=params["text"],
            )
            return body
        if method == "setWebhook":
            return api_fixture("setWebhook__ok")
        if method == "setMyCommands":
            return api_fixture("setMyCommands__ok")
        if method == "getWebhookInfo":
            body = api_fixture("getWebhookInfo__ok")
            last = next(c for c in reversed(self.calls) if c.method == "setWebhook")
            body["result"]["url"] = last.params["url"]
            return body
        return {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    async def wait_for(self, predicate: Callable[[Call], bool], within_s: float = 15.0) -> Call:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for call in self.calls:
                if predicate(call):
                    return call
            await asyncio.sleep(0.05)
        seen = [(c.method, str(c.params.get("text", ""))[:40]) for c in self.calls]
        raise AssertionError(f"no matching Bot API call within {within_s}s; saw {seen}")


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    api = FakeBotApi()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


BOTS = {
    "city": TelegramBot(token=TOKEN, secret=SECRET, webhook_url="https://hotline.example.gov.cn/channels/telegram/city"),
    "county": TelegramBot(token=OTHER_TOKEN, secret="county-secret-0123456789"),
}


@pytest.fixture
def settings(settings: Settings, fake_api: FakeBotApi) -> Settings:
    """The shared settings with two bots, both pointed at the fake Bot API."""
    return settings.model_copy(update={"telegram": BOTS, "telegram_api_base": fake_api.url})


# --- a channel on real Redis, behind its real route ---------------------------------------------
@dataclass
class Harness:
    channel: telegram.TelegramChannel
    client: httpx.AsyncClient
    redis: Any

    async def post(self, update: dict[str, Any] | str | bytes, bot: str = "city", secret: str | None = SECRET) -> httpx.Response:
        headers = {telegram.SECRET_HEADER: secret} if secret is not None else {}
        if isinstance(update, dict):
            return await self.client.post(f"/channels/telegram/{bot}", json=update, headers=headers)
        return await self.client.post(
            f"/channels/telegram/{bot}", content=update, headers=headers | {"content-type": "application/json"}
        )

    async def inbound(self) -> list[InboundMessage]:
        entries = await self.redis.xrange(keys.INBOUND)
        return [InboundMessage.model_validate_json(fields["data"]) for _, fields in entries]


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    streams = Streams(redis, settings.dedupe_ttl_s)
    channel = telegram.TelegramChannel(ChannelContext(redis=redis, enqueue=streams.enqueue, settings=settings))
    app = FastAPI()
    errors.install(app)
    router = channel.router()
    assert router is not None
    app.include_router(router, prefix="/channels")
    await channel.start()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        try:
            yield Harness(channel, client, redis)
        finally:
            await channel.stop()
            await redis.aclose()


# --- inbound: one line per event ------------------------------------------------------------------
def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


META = {"bot": "city", "chat_id": str(CHAT)}
EXPECTED: dict[str, dict[str, Any]] = {
    "message__text": dict(
        channel_message_id="city:817263001", text="A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑",
        received_at=_at(1795700000), meta=META | {"message_id": "42"},
    ),
    "message__start": dict(
        channel_message_id="city:817263000", text="", event="start", received_at=_at(1795699990),
        meta=META | {"message_id": "41"},
    ),
    "message__command_progress": dict(  # the menu's /progress, as WeChat's 进度查询 button
        channel_message_id="city:817263010", text="", event="click", received_at=_at(1795700100),
        meta=META | {"message_id": "50", "event_key": "hotline:progress"},
    ),
    "message__start_deep_link": dict(
        channel_message_id="city:817263002", text="", event="start", received_at=_at(1795699995),
        meta=META | {"message_id": "43", "start_param": "poster_a3"},
    ),
    "message__photo": dict(
        channel_message_id="city:817263003", text="路灯就是这个", received_at=_at(1795700010),
        attachments=[{"kind": "image", "mime": "image/jpeg", "ref": "telegram:city:AgACAgUAAxkBAAIBK2VhbG1hc3Rz_large",
                      "name": ""}],
        meta=META | {"message_id": "44"},
    ),
    "message__photo_no_caption": dict(
        channel_message_id="city:817263004", text="", received_at=_at(1795700011),
        attachments=[{"kind": "image", "mime": "image/jpeg", "ref": "telegram:city:AgACAgUAAxkBAAIBLGVhbG1hc3Rz_large",
                      "name": ""}],
        meta=META | {"message_id": "45"},
    ),
    "message__location": dict(
        channel_message_id="city:817263005", text="", received_at=_at(1795700020),
        location={"lat": 30.572269, "lng": 104.066541, "label": "", "datum": "wgs84"}, meta=META | {"message_id": "46"},
    ),
    "message__venue": dict(
        channel_message_id="city:817263006", text="", received_at=_at(1795700030),
        location={"lat": 30.657401, "lng": 104.065735, "label": "天府广场 人民南路一段86号", "datum": "wgs84"},
        meta=META | {"message_id": "47"},
    ),
}


def expected(name: str) -> dict[str, Any]:
    base = dict(
        channel="telegram", sender=f"city/{CHAT}", conversation_key=f"telegram:city/{CHAT}", title=None,
        attachments=[], location=None, reply_to=None, event=None, letter=False, raw_ref=None,
    )
    return base | EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_update_becomes_message(harness: Harness, name: str) -> None:
    r = await harness.post(fixture(name))
    assert r.status_code == 200, r.text
    [msg] = await harness.inbound()
    assert msg.model_dump(exclude={"id"}) == expected(name)


@pytest.mark.parametrize(
    "name",
    [
        "edited_message__text",  # the citizen's edit: the original was already taken
        "message__sticker",
        "message__group_text",  # the hotline talks to citizens in private chats only
        "my_chat_member__blocked",
        "unknown__future_update_type",  # newer than aiogram: acknowledged, no warning
    ],
)
async def test_unsupported_update_is_acknowledged_and_ignored(harness: Harness, name: str) -> None:
    r = await harness.post(fixture(name))
    assert r.status_code == 200
    assert await harness.inbound() == []


async def test_secret_mismatch_refused(harness: Harness) -> None:
    for secret in ("wrong-secret-0123456789abcdef", "", None, BOTS["county"].secret):
        r = await harness.post(fixture("message__text"), secret=secret)
        assert r.status_code == 403, secret
    assert await harness.inbound() == []


async def test_duplicate_update_id_gives_one_message(harness: Harness) -> None:
    update = fixture("message__text")
    for _ in range(3):  # Telegram redelivers until it sees a 2xx
        assert (await harness.post(update)).status_code == 200
    assert len(await harness.inbound()) == 1


async def test_same_update_id_on_two_bots_is_two_messages(harness: Harness) -> None:
    update = fixture("message__text")
    assert (await harness.post(update, bot="city")).status_code == 200
    assert (await harness.post(update, bot="county", secret=BOTS["county"].secret)).status_code == 200
    senders = sorted(m.sender for m in await harness.inbound())
    assert senders == [f"city/{CHAT}", f"county/{CHAT}"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        json.dumps({"message": fixture("message__text")["message"]}).encode(),  # no update_id
        json.dumps({"update_id": "abc", "message": fixture("message__text")["message"]}).encode(),
        json.dumps(fixture("malformed__message_without_chat")).encode(),
    ],
)
async def test_malformed_update_refused(harness: Harness, body: bytes) -> None:
    r = await harness.post(body)
    assert r.status_code == 400
    assert await harness.inbound() == []


async def test_unknown_bot_404(harness: Harness) -> None:
    r = await harness.post(fixture("message__text"), bot="nobody")
    assert r.status_code == 404


async def test_webhook_makes_no_bot_api_call(harness: Harness, fake_api: FakeBotApi) -> None:
    start = fixture("message__start")
    start["message"]["text"] = "/start@hotline12345_bot"  # a mention would need getMe unless ignored
    for update in (start, fixture("message__text"), fixture("message__photo")):
        assert (await harness.post(update)).status_code == 200
    assert len(await harness.inbound()) == 3
    assert fake_api.calls == []


# --- outbound -------------------------------------------------------------------------------------
def outbound(text: str = "您好", chat: int = CHAT, bot: str = "city", **kw: Any) -> OutboundMessage:
    return OutboundMessage(conversation_key=f"telegram:{bot}/{chat}", channel="telegram", text=text, **kw)


async def test_send_routes_through_the_right_bot(harness: Harness, fake_api: FakeBotApi) -> None:
    await harness.channel.send(outbound("市民您好", bot="county", chat=42))
    [call] = fake_api.calls
    assert (call.token, call.method, call.params) == (OTHER_TOKEN, "sendMessage", {"chat_id": "42", "text": "市民您好"})


async def test_long_text_is_split_and_buttons_ride_on_the_last_part(harness: Harness, fake_api: FakeBotApi) -> None:
    harness.channel.limiter = telegram.Limiter(harness.redis, per_chat_interval_s=0.01)
    text = "\n".join(f"第{i}行：" + "很" * 60 for i in range(100))  # about 6,500 characters
    await harness.channel.send(outbound(text, buttons=["满意", "基本满意", "不满意"]))
    parts = fake_api.sent()
    assert len(parts) == 2
    assert all(len(c.params["text"]) <= telegram.TEXT_LIMIT for c in parts)
    assert "\n".join(c.params["text"] for c in parts) == text
    assert "reply_markup" not in parts[0].params
    assert parts[1].params["reply_markup"] == {
        "keyboard": [[{"text": "满意"}, {"text": "基本满意"}, {"text": "不满意"}]],
        "resize_keyboard": True,
        "one_time_keyboard": True,
    }


async def test_buttons_naming_tickets_get_a_row_each(harness: Harness, fake_api: FakeBotApi) -> None:
    buttons = ["催办 12345-20261129-000001", "催办 12345-20261129-000002"]
    await harness.channel.send(outbound("您有2件工单正在办理，请选择要催办的工单：", buttons=buttons))
    [call] = fake_api.sent()
    assert call.params["reply_markup"]["keyboard"] == [[{"text": b}] for b in buttons]


async def test_retried_long_text_does_not_repeat_sent_parts(harness: Harness, fake_api: FakeBotApi) -> None:
    harness.channel.limiter = telegram.Limiter(harness.redis, per_chat_interval_s=0.01)
    text = "甲" * 4096 + "\n" + "乙" * 4096 + "\n" + "丙" * 10
    message = outbound(text)
    fake_api.script("sendMessage", 200, api_fixture("sendMessage__ok"))
    fake_api.script("sendMessage", 429, api_fixture("sendMessage__429_retry_after"))
    with pytest.raises(DeliveryError) as caught:
        await harness.channel.send(message)
    assert caught.value.retry_after == 7
    await harness.channel.send(message)  # the worker's retry
    texts = [c.params["text"][:1] for c in fake_api.sent()]
    assert texts == ["甲", "乙", "乙", "丙"]


API_ERRORS = [
    ("sendMessage__429_retry_after", 429, 7.0),
    ("sendMessage__403_blocked", 403, None),
    ("sendMessage__400_chat_not_found", 400, None),
    ("sendMessage__500", 500, 5.0),
    ("setWebhook__401_unauthorized", 401, 60.0),
]


@pytest.mark.parametrize(("answer", "status", "retry_after"), API_ERRORS)
async def test_bot_api_errors_become_delivery_errors(
    harness: Harness, fake_api: FakeBotApi, answer: str, status: int, retry_after: float | None
) -> None:
    fake_api.script("sendMessage", status, api_fixture(answer))
    with pytest.raises(DeliveryError) as caught:
        await harness.channel.send(outbound())
    assert type(caught.value) is DeliveryError
    assert caught.value.retry_after == retry_after
    assert isinstance(caught.value.__cause__, AiogramError)


async def test_unreadable_answer_is_retried(harness: Harness, fake_api: FakeBotApi) -> None:
    fake_api.script("sendMessage", 502, "<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(DeliveryError) as caught:
        await harness.channel.send(outbound())
    assert caught.value.retry_after == 5.0


async def test_unreachable_api_is_retried(settings: Settings) -> None:
    from tests.conftest import free_port

    unreachable = settings.model_copy(update={"telegram_api_base": f"http://127.0.0.1:{free_port()}"})
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    channel = telegram.TelegramChannel(ChannelContext(redis=redis, enqueue=None, settings=unreachable))
    await channel.start()
    try:
        with pytest.raises(DeliveryError) as caught:
            await channel.send(outbound())
        assert caught.value.retry_after == 5.0
        assert isinstance(caught.value.__cause__, AiogramError)
    finally:
        await channel.stop()
        await redis.aclose()


@pytest.mark.parametrize("conversation_key", ["telegram:nobody/42", "telegram:42", "telegram:city/notachat"])
async def test_unroutable_message_is_dead_lettered(harness: Harness, conversation_key: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        await harness.channel.send(OutboundMessage(conversation_key=conversation_key, channel="telegram", text="x"))
    assert caught.value.retry_after is None


# --- limits ---------------------------------------------------------------------------------------
async def test_limiter_one_message_per_second_per_chat(harness: Harness) -> None:
    limiter = telegram.Limiter(harness.redis)
    assert await limiter.try_acquire("city", 1) == 0
    wait = await limiter.try_acquire("city", 1)
    assert 0.5 < wait <= 1.0
    assert await limiter.try_acquire("city", 2) == 0  # another chat is not held up
    assert await limiter.try_acquire("county", 1) == 0  # nor the same chat id on another bot


async def test_limiter_thirty_per_second_per_bot(harness: Harness) -> None:
    """Thirty at once, then one more every 1/30 s, however fast this loop runs (it once took
    longer than the 1/30 s the 31st message had to wait, and that message was rightly let through)."""
    limiter = telegram.Limiter(harness.redis)
    start = time.monotonic()
    waits = [await limiter.try_acquire("city", chat) for chat in range(60)]
    elapsed = time.monotonic() - start
    assert waits[:30] == [0] * 30
    granted = sum(1 for w in waits if w == 0)
    assert granted <= 30 + int(elapsed * 30) + 1
    refused = [w for w in waits if w > 0]
    assert refused and all(w <= 0.034 for w in refused)  # (60 tries take well under 29/30 s)
    assert await limiter.try_acquire("county", 1) == 0


async def test_limiter_shared_by_processes(harness: Harness, settings: Settings) -> None:
    other = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        assert await telegram.Limiter(harness.redis).try_acquire("city", 7) == 0
        assert await telegram.Limiter(other).try_acquire("city", 7) > 0
    finally:
        await other.aclose()


async def test_send_waits_a_short_while_then_hands_back_to_the_worker(harness: Harness, fake_api: FakeBotApi) -> None:
    await harness.channel.send(outbound("一"))
    await harness.channel.send(outbound("二"))  # waits under a second for the chat's slot
    first, second = fake_api.sent()
    assert second.at - first.at >= 0.9
    harness.channel.limiter = telegram.Limiter(harness.redis, max_wait_s=0.1)
    with pytest.raises(DeliveryError) as caught:
        await harness.channel.send(outbound("三"))
    assert 0.1 < (caught.value.retry_after or 0) <= 1.0
    assert len(fake_api.sent()) == 2


# --- set-webhook ----------------------------------------------------------------------------------
async def test_set_webhook_registers_url_and_secret(settings: Settings, fake_api: FakeBotApi) -> None:
    result = await telegram.set_webhook(settings, "city", None)
    call = next(c for c in fake_api.calls if c.method == "setWebhook")
    assert call.token == TOKEN
    assert call.params == {
        "url": "https://hotline.example.gov.cn/channels/telegram/city",
        "secret_token": SECRET,
        "allowed_updates": ["message"],
    }
    assert result["url"] == call.params["url"]
    assert result["webhook_info"]["url"] == call.params["url"]
    commands = next(c for c in fake_api.calls if c.method == "setMyCommands").params["commands"]
    commands = json.loads(commands) if isinstance(commands, str) else commands
    assert [(c["command"], c["description"]) for c in commands] == [
        ("report", "我要反映问题"), ("progress", "查询我的工单进度"), ("faq", "常见问题"), ("human", "转人工客服")]


async def test_set_webhook_url_from_argument_or_public_url(settings: Settings, fake_api: FakeBotApi) -> None:
    await telegram.set_webhook(settings, "city", "https://other.example/hook")
    with_public = settings.model_copy(update={"public_url": "https://12345.example.gov.cn/"})
    await telegram.set_webhook(with_public, "county", None)
    urls = [c.params["url"] for c in fake_api.calls if c.method == "setWebhook"]
    assert urls == ["https://other.example/hook", "https://12345.example.gov.cn/channels/telegram/county"]


async def test_set_webhook_errors(settings: Settings, fake_api: FakeBotApi) -> None:
    with pytest.raises(ValueError, match="HOTLINE_TELEGRAM_NOBODY_TOKEN"):
        await telegram.set_webhook(settings, "nobody", None)
    with pytest.raises(ValueError, match="WEBHOOK_URL"):
        await telegram.set_webhook(settings, "county", None)
    fake_api.script("setWebhook", 401, api_fixture("setWebhook__401_unauthorized"))
    with pytest.raises(DeliveryError, match="token"):
        await telegram.set_webhook(settings, "city", None)


# --- settings -------------------------------------------------------------------------------------
def test_bots_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"HOTLINE_TELEGRAM_CITY_BOT_TOKEN={TOKEN}\n"
        "HOTLINE_TELEGRAM_CITY_BOT_SECRET=from-dotenv-0123456789\n"
        "HOTLINE_TELEGRAM_CITY_BOT_WEBHOOK_URL=https://hotline.example.gov.cn/channels/telegram/city_bot\n"
    )
    monkeypatch.setenv("HOTLINE_TELEGRAM_CITY_BOT_SECRET", "from-environment-0123456789")
    monkeypatch.setenv("HOTLINE_TELEGRAM_COUNTY_TOKEN", OTHER_TOKEN)
    monkeypatch.setenv("HOTLINE_TELEGRAM_COUNTY_SECRET", "county-secret-0123456789")
    monkeypatch.setenv("HOTLINE_TELEGRAM_API_BASE", "http://127.0.0.1:8081")
    s = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert s.telegram == {
        "city_bot": TelegramBot(
            token=TOKEN,
            secret="from-environment-0123456789",
            webhook_url="https://hotline.example.gov.cn/channels/telegram/city_bot",
        ),
        "county": TelegramBot(token=OTHER_TOKEN, secret="county-secret-0123456789"),
    }
    assert s.telegram_api_base == "http://127.0.0.1:8081"
    monkeypatch.delenv("HOTLINE_TELEGRAM_CITY_BOT_SECRET")
    explicit = Settings(_env_file=None, telegram={"county": BOTS["city"]})  # type: ignore[call-arg]
    assert explicit.telegram["county"] == BOTS["city"]


@pytest.mark.parametrize(
    ("token", "secret"),
    [(TOKEN, "changeme"), (TOKEN, "short"), (TOKEN, "has spaces in it 0123456789"), ("not-a-token", SECRET)],
)
def test_bad_bot_settings_refused(token: str, secret: str) -> None:
    with pytest.raises(ValueError, match="telegram"):
        Settings(_env_file=None, telegram={"city": {"token": token, "secret": secret}})  # type: ignore[call-arg]


# --- end to end -----------------------------------------------------------------------------------
def text_update(update_id: int, text: str, chat: int = CHAT) -> dict[str, Any]:
    update = copy.deepcopy(fixture("message__text"))
    update["update_id"] = update_id
    message = update["message"]
    message.update(message_id=update_id % 100_000, date=int(time.time()), text=text)
    message["chat"]["id"] = message["from"]["id"] = chat
    if text.startswith("/"):
        message["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
    return update


async def test_conversation_to_ticket_and_status_update(client: httpx.AsyncClient, fake_api: FakeBotApi) -> None:
    async def say(update_id: int, text: str) -> None:
        r = await client.post(
            "/channels/telegram/city", json=text_update(update_id, text), headers={telegram.SECRET_HEADER: SECRET}
        )
        assert r.status_code == 200, r.text

    def to_citizen(call: Call) -> bool:
        return call.method == "sendMessage" and call.token == TOKEN and call.params["chat_id"] == str(CHAT)

    await say(900001, "/start")
    await fake_api.wait_for(to_citizen)
    await say(900002, "A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑")
    await say(900002, "A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑")  # Telegram's redelivery
    await fake_api.wait_for(lambda c: to_citizen(c) and "确认" in c.params["text"])
    await say(900003, "确认")
    filed = await fake_api.wait_for(lambda c: to_citizen(c) and bool(TICKET.search(c.params["text"])))
    match = TICKET.search(filed.params["text"])
    assert match is not None
    ticket_id = match.group()

    r = await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)
    assert r.status_code == 200
    ticket = r.json()
    assert ticket["conversation_key"] == f"telegram:city/{CHAT}"
    assert "路灯" in ticket["description"]

    r = await client.post(
        f"/api/admin/tickets/{ticket_id}/status", json={"status": "accepted", "note": "已派至A3区城管局"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    update = await fake_api.wait_for(lambda c: to_citizen(c) and "已派单" in c.params["text"])
    assert ticket_id in update.params["text"] and "A3区城管局" in update.params["text"]

    r = await client.get("/api/admin/conversations", params={"channel": "telegram"}, headers=ADMIN)
    conv = next(c for c in r.json()["conversations"] if c["conversation_key"] == f"telegram:city/{CHAT}")
    assert conv["message_count"] == 3  # /start, the report (once), 确认
    assert all(c.token == TOKEN for c in fake_api.calls)  # nothing went out through the other bot


async def test_redis_down_answers_503_so_telegram_redelivers(settings: Settings) -> None:
    from gateway.errors import ServiceUnavailable

    async def enqueue(_: InboundMessage, side: Any = None, then: Any = None) -> bool:
        raise ServiceUnavailable("服务暂时繁忙，请稍后重试")

    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    channel = telegram.TelegramChannel(ChannelContext(redis=redis, enqueue=enqueue, settings=settings))
    app = FastAPI()
    errors.install(app)
    app.include_router(channel.router(), prefix="/channels")  # type: ignore[arg-type]
    await channel.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            r = await client.post(
                "/channels/telegram/city", json=fixture("message__text"), headers={telegram.SECRET_HEADER: SECRET}
            )
        assert r.status_code == 503
    finally:
        await channel.stop()
        await redis.aclose()


async def test_worker_dead_letters_a_blocked_citizen_and_reschedules_flood_control(
    app: Any, fake_api: FakeBotApi
) -> None:
    rt = app.state.runtime
    fake_api.script("sendMessage", 403, api_fixture("sendMessage__403_blocked"))
    await rt.streams.publish(outbound("工单状态更新", id="status:blocked"))
    deadline = time.monotonic() + 10
    while not await rt.redis.llen(keys.DEAD_LETTERS):
        assert time.monotonic() < deadline, "no dead letter"
        await asyncio.sleep(0.05)
    [record] = [json.loads(x) for x in await rt.redis.lrange(keys.DEAD_LETTERS, 0, -1)]
    assert "blocked" in record["reason"] and str(CHAT) not in record["reason"]

    retry = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}
    fake_api.script("sendMessage", 429, retry)
    await rt.streams.publish(outbound("您好", chat=CHAT + 1, id="reply:flood"))
    first = await fake_api.wait_for(lambda c: c.params.get("text") == "您好")
    delivered = await fake_api.wait_for(lambda c: c.params.get("text") == "您好" and c is not first)
    assert delivered.at - first.at >= 0.9


# --- photos: fetched in the background, for the console and the ticket --------------------------
PHOTO_REF = "telegram:city:AgACAgUAAxkBAAIBK2VhbG1hc3Rz_large"


async def stored(redis: Any, ref: str, within_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        raw = await redis.get(record_key(ref))
        if raw:
            return dict(json.loads(raw))
        await asyncio.sleep(0.05)
    raise AssertionError(f"no media record for {ref} within {within_s}s")


async def test_a_photo_is_fetched_once_in_the_background(harness: Harness, fake_api: FakeBotApi) -> None:
    fake_api.files["photos/file_0.jpg"] = photo(1280, 960)
    for _ in range(2):  # Telegram retries the update: one fetch
        assert (await harness.post(fixture("message__photo"))).status_code == 200
    record = await stored(harness.redis, PHOTO_REF)
    assert await asyncio.to_thread(Path(record["path"]).read_bytes) == fake_api.files["photos/file_0.jpg"]
    assert record["mime"] == "image/jpeg"
    assert Path(record["path"]).is_relative_to(harness.channel.settings.media_folder / "telegram" / "city")
    get_file = [c for c in fake_api.calls if c.method == "getFile"]
    assert [c.params["file_id"] for c in get_file] == ["AgACAgUAAxkBAAIBK2VhbG1hc3Rz_large"]
    assert get_file[0].token == TOKEN  # through the bot that received it


async def test_a_photo_fetch_is_retried_after_a_passing_error(harness: Harness, fake_api: FakeBotApi) -> None:
    harness.channel.settings.telegram_media_retry_s = 0.2
    fake_api.files["photos/file_0.jpg"] = photo(640, 480)
    fake_api.script("getFile", 500, api_fixture("sendMessage__500"))
    assert (await harness.post(fixture("message__photo"))).status_code == 200
    record = await stored(harness.redis, PHOTO_REF)
    assert "path" in record and len([c for c in fake_api.calls if c.method == "getFile"]) == 2


async def test_a_photo_telegram_will_not_hand_over_is_recorded_not_retried(
    harness: Harness, fake_api: FakeBotApi
) -> None:
    fake_api.script("getFile", 400, api_fixture("getFile__400_too_big"))
    assert (await harness.post(fixture("message__photo"))).status_code == 200
    record = await stored(harness.redis, PHOTO_REF)
    assert "file is too big" in record["error"] and "path" not in record
    assert await harness.redis.zcard(telegram.MEDIA_RETRY) == 0
