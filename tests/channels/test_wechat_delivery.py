"""Delivery through the local fake WeChat API: the shared access token, the 48-hour / 5-message
window, the subscribe-message fallback, held messages, mini-program login, media (workers off)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.base import DeliveryError, OutboundMessage
from channels.media import record_key
from channels.wechat.api import WechatApi, WechatApiError
from channels.wechat.channel import WechatChannel
from channels.wechat.fakeapi import FakeWechatApi
from channels.wechat.window import MEDIA_RETRY
from config.settings import Settings
from tests.channels.test_wechat import ACCOUNTS, CITIZEN, MP_CITIZEN, eventually, fixture, push

MP_FIELDS = {"character_string1": "ticket_id", "phrase2": "status", "time3": "at", "thing4": "text"}


@pytest.fixture
def settings(settings: Settings, fake: FakeWechatApi) -> Settings:
    settings.wechat = dict(ACCOUNTS)
    settings.wechat["mp"] = ACCOUNTS["mp"].model_copy(update={"subscribe_fields": MP_FIELDS})
    settings.wechat_api_base = fake.url
    settings.embedded_workers = False
    return settings


def wechat(app: Any) -> WechatChannel:
    channel: WechatChannel = next(c for c in app.state.runtime.channels if c.name == "wechat")
    return channel


def out(account: str, openid: str, kind: str = "reply", text: str = "您好", **kw: Any) -> OutboundMessage:
    channel = "wechat_mp" if ACCOUNTS[account].kind == "mp" else "wechat_oa"
    return OutboundMessage(conversation_key=f"{channel}:{account}/{openid}", channel=channel, kind=kind, text=text, **kw)


def status_update(account: str, openid: str) -> OutboundMessage:
    return out(account, openid, "status_update", "您的工单 12345-20261127-000001 有新进展：已派单", ticket_id="12345-20261127-000001",
               fields={"status": "accepted", "at": "2026-11-27T03:00:00+00:00"})


def progress_note(account: str, openid: str) -> OutboundMessage:
    """What the status poller makes of a progress note (办理进展): the status stays ``processing``."""
    return out(account, openid, "status_update", "您的工单 12345-20261127-000001 有新的办理进展：已联系物业，预计周五前修复",
               ticket_id="12345-20261127-000001",
               fields={"status": "processing", "progress": "1", "note": "已联系物业，预计周五前修复",
                       "at": "2026-11-27T03:00:00+00:00"})


async def outbound(app: Any) -> list[OutboundMessage]:
    return [OutboundMessage.model_validate_json(f["data"]) for _, f in await app.state.runtime.redis.xrange("hl:out")]


# --- access token -------------------------------------------------------------------------
async def test_one_worker_refreshes_the_token_while_others_wait(app: Any, fake: FakeWechatApi) -> None:
    fake.token_delay_s = 0.3
    rt = app.state.runtime
    # Ten workers, each with its own client object, as separate processes would have.
    apis = [WechatApi(rt.ctx.http, rt.redis, fake.url, ACCOUNTS["oa"]) for _ in range(10)]
    tokens = await asyncio.gather(*(a.access_token() for a in apis))
    assert fake.token_calls == 1
    assert len(set(tokens)) == 1
    assert await rt.redis.ttl("hl:wx:token:" + ACCOUNTS["oa"].appid) > 6000


@pytest.mark.parametrize("errcode", [40001, 42001])
async def test_rejected_token_is_refreshed_once(app: Any, fake: FakeWechatApi, errcode: int) -> None:
    rt = app.state.runtime
    apis = [WechatApi(rt.ctx.http, rt.redis, fake.url, ACCOUNTS["oa"]) for _ in range(5)]
    await apis[0].access_token()
    fake.stale_errcode = errcode
    fake.revoke_tokens()  # fetched elsewhere (40001) or expired early (42001)
    await asyncio.gather(*(a.send_custom(CITIZEN, {"msgtype": "text", "text": {"content": f"#{i}"}})
                           for i, a in enumerate(apis)))
    assert fake.token_calls == 2  # one refresh for five workers that all saw the stale token
    assert sorted(fake.texts()) == [f"#{i}" for i in range(5)]


async def test_wrong_secret_is_an_api_error(app: Any, fake: FakeWechatApi) -> None:
    rt = app.state.runtime
    api = WechatApi(rt.ctx.http, rt.redis, fake.url, ACCOUNTS["oa"].model_copy(update={"secret": "wrong"}))
    with pytest.raises(WechatApiError) as info:
        await api.access_token()
    assert info.value.errcode == 40125


async def test_unreachable_api_is_translated(app: Any) -> None:
    rt = app.state.runtime
    api = WechatApi(rt.ctx.http, rt.redis, "http://127.0.0.1:9", ACCOUNTS["oa"])
    with pytest.raises(WechatApiError) as info:
        await api.access_token()
    assert info.value.errcode == -2 and info.value.transient


# --- window -------------------------------------------------------------------------------
async def test_reply_inside_window_goes_as_customer_service_message(client: httpx.AsyncClient, app: Any,
                                                                  fake: FakeWechatApi) -> None:
    await push(client, "oa", fixture("text__plain.xml"))
    await wechat(app).send(out("oa", CITIZEN, buttons=["确认", "取消"], text="请确认"))
    await wechat(app).send(out("mp", MP_CITIZEN, buttons=["确认", "取消"], text="请确认"))  # no window: held
    [menu] = fake.custom
    assert menu["touser"] == CITIZEN and menu["msgtype"] == "msgmenu"
    assert [i["content"] for i in menu["msgmenu"]["list"]] == ["确认", "取消"]


async def test_five_messages_per_window_then_held_until_next_contact(client: httpx.AsyncClient, app: Any,
                                                                   fake: FakeWechatApi) -> None:
    channel = wechat(app)
    await push(client, "oa", fixture("text__plain.xml"))
    for i in range(7):
        await channel.send(out("oa", CITIZEN, text=f"第{i}条"))
    assert fake.texts() == [f"第{i}条" for i in range(5)]
    assert len(await channel.windows.held("oa", CITIZEN)) == 2
    assert await outbound(app) == []
    # The citizen writes again: the two held messages are queued again, in order, with new ids.
    await push(client, "oa", fixture("text__plain.xml").replace("24316620133567890", "24316620133567999"))
    again = await outbound(app)
    assert [m.text for m in again] == ["第5条", "第6条"]
    assert await channel.windows.held("oa", CITIZEN) == []
    for m in again:
        await channel.send(m)
    assert fake.texts()[-2:] == ["第5条", "第6条"]


async def test_held_messages_expire_if_the_citizen_never_comes_back(
    client: httpx.AsyncClient, app: Any, fake: FakeWechatApi
) -> None:
    """A status update held for a citizen who never writes again does not stay in Redis for ever:
    the held messages go HOTLINE_WECHAT_HELD_DAYS after the last one was held."""
    channel = wechat(app)
    await push(client, "oa", fixture("text__plain.xml"))
    await app.state.runtime.redis.hset(f"hl:wx:win:oa:{CITIZEN}", "last_in", repr(time.time() - 48 * 3600 - 1))
    await channel.send(out("oa", CITIZEN, text="迟到的回复"))
    ttl = await app.state.runtime.redis.ttl(f"hl:wx:pending:oa:{CITIZEN}")
    assert 29 * 86400 < ttl <= 30 * 86400 == channel.windows.held_seconds


async def test_window_expires_after_48_hours(client: httpx.AsyncClient, app: Any, fake: FakeWechatApi) -> None:
    channel = wechat(app)
    await push(client, "oa", fixture("text__plain.xml"))
    await app.state.runtime.redis.hset(f"hl:wx:win:oa:{CITIZEN}", "last_in", repr(time.time() - 48 * 3600 - 1))
    await channel.send(out("oa", CITIZEN, text="迟到的回复"))
    assert fake.custom == []
    assert len(await channel.windows.held("oa", CITIZEN)) == 1


@pytest.mark.parametrize("errcode", [45015, 45047])
async def test_wechat_says_window_closed_status_update_goes_as_subscribe_message(
    client: httpx.AsyncClient, app: Any, fake: FakeWechatApi, errcode: int
) -> None:
    channel = wechat(app)
    await push(client, "mp", fixture("text.json"), json_envelope=True)
    await push(client, "mp", fixture("event__subscribe_msg_popup_event.json"), json_envelope=True)
    fake.fail_next(errcode)
    await channel.send(status_update("mp", MP_CITIZEN))
    assert fake.custom == []
    [sub] = fake.subscribe
    assert sub["touser"] == MP_CITIZEN and sub["template_id"] == "TPL_STATUS_UPDATE"
    assert sub["data"] == {
        "character_string1": {"value": "12345-20261127-000001"},
        "phrase2": {"value": "已派单"},  # phrase keywords take five characters
        "time3": {"value": "2026-11-27 11:00"},
        "thing4": {"value": "您的工单 12345-20261127…"},  # thing: twenty
    }
    assert await channel.windows.consents("mp", MP_CITIZEN) == {"TPL_STATUS_UPDATE": 0}
    # The consent is used up and WeChat still says no: the next update waits for the citizen.
    await channel.send(status_update("mp", MP_CITIZEN).model_copy(update={"id": "second"}))
    assert len(fake.subscribe) == 1 and fake.custom == []
    [held] = await channel.windows.held("mp", MP_CITIZEN)
    assert json.loads(held)["id"] == "second"


async def test_without_consent_status_update_waits_for_next_contact(client: httpx.AsyncClient, app: Any,
                                                                   fake: FakeWechatApi) -> None:
    channel = wechat(app)
    update = status_update("oa", CITIZEN)
    await channel.send(update)  # never wrote: no window, no consent
    await channel.send(update)  # a redelivery holds it once
    assert fake.custom == [] and fake.subscribe == []
    assert len(await channel.windows.held("oa", CITIZEN)) == 1
    await push(client, "oa", fixture("event__subscribe.xml"))  # following again counts as contact
    [again] = [m for m in await outbound(app) if m.kind == "status_update"]
    assert again.id.startswith(update.id + "~") and again.text == update.text
    await channel.send(again)
    assert fake.texts() == [update.text]


async def test_a_progress_note_never_spends_the_last_subscribe_consent(client: httpx.AsyncClient, app: Any,
                                                                      fake: FakeWechatApi) -> None:
    """One consent left, the window closed: the note waits for the citizen's next contact, and the
    consent is kept for a status change (办结, then the survey, matter most)."""
    channel = wechat(app)
    await channel.windows.add_consents("mp", MP_CITIZEN, ["TPL_STATUS_UPDATE"])
    await channel.send(progress_note("mp", MP_CITIZEN))
    assert fake.subscribe == [] and fake.custom == []
    assert await channel.windows.consents("mp", MP_CITIZEN) == {"TPL_STATUS_UPDATE": 1}
    assert len(await channel.windows.held("mp", MP_CITIZEN)) == 1
    await channel.send(status_update("mp", MP_CITIZEN))  # a status change takes the last one
    assert len(fake.subscribe) == 1
    assert await channel.windows.consents("mp", MP_CITIZEN) == {"TPL_STATUS_UPDATE": 0}


async def test_a_progress_note_with_consents_to_spare_goes_as_a_subscribe_message_with_its_words(
    client: httpx.AsyncClient, app: Any, fake: FakeWechatApi
) -> None:
    channel = wechat(app)
    for _ in range(2):
        await channel.windows.add_consents("mp", MP_CITIZEN, ["TPL_STATUS_UPDATE"])
    await channel.send(progress_note("mp", MP_CITIZEN))
    [sub] = fake.subscribe
    assert sub["data"] == {
        "character_string1": {"value": "12345-20261127-000001"},
        "phrase2": {"value": "办理中"},  # the status, unchanged
        "time3": {"value": "2026-11-27 11:00"},
        "thing4": {"value": "已联系物业，预计周五前修复"},  # the note, not the ticket number again
    }
    assert await channel.windows.consents("mp", MP_CITIZEN) == {"TPL_STATUS_UPDATE": 1}


async def test_a_withdrawal_goes_as_a_subscribe_message_naming_it(client: httpx.AsyncClient, app: Any,
                                                                   fake: FakeWechatApi) -> None:
    """撤单 is a change to closed, but the citizen reads 已撤单, not 已归档."""
    channel = wechat(app)
    await channel.windows.add_consents("mp", MP_CITIZEN, ["TPL_STATUS_UPDATE"])
    await channel.send(out("mp", MP_CITIZEN, "status_update", "您的工单 12345-20261127-000001 已按您的要求撤单",
                           ticket_id="12345-20261127-000001",
                           fields={"status": "closed", "withdrawn": "1", "note": "市民表示问题已自行解决",
                                   "at": "2026-11-27T03:00:00+00:00"}))
    [sub] = fake.subscribe
    assert sub["data"]["phrase2"] == {"value": "已撤单"}


async def test_plain_reply_never_uses_a_subscribe_consent(client: httpx.AsyncClient, app: Any,
                                                          fake: FakeWechatApi) -> None:
    channel = wechat(app)
    await channel.windows.add_consents("mp", MP_CITIZEN, ["TPL_STATUS_UPDATE"])
    await channel.send(out("mp", MP_CITIZEN, text="还有什么需要帮助？"))
    assert fake.subscribe == [] and len(await channel.windows.held("mp", MP_CITIZEN)) == 1


async def test_refused_subscribe_message_is_held(client: httpx.AsyncClient, app: Any, fake: FakeWechatApi) -> None:
    channel = wechat(app)
    await channel.windows.add_consents("mp", MP_CITIZEN, ["TPL_STATUS_UPDATE"])
    fake.fail_next(43101)
    await channel.send(status_update("mp", MP_CITIZEN))
    assert len(await channel.windows.held("mp", MP_CITIZEN)) == 1


async def test_busy_api_retries_and_bad_request_dead_letters(client: httpx.AsyncClient, app: Any,
                                                             fake: FakeWechatApi) -> None:
    channel = wechat(app)
    await push(client, "oa", fixture("text__plain.xml"))
    fake.fail_next(-1)
    with pytest.raises(DeliveryError) as info:
        await channel.send(out("oa", CITIZEN))
    assert info.value.retry_after == 5
    with pytest.raises(DeliveryError) as info:
        await channel.send(out("oa", "x").model_copy(update={"conversation_key": "wechat_oa:nobody/x"}))
    assert info.value.retry_after is None


# --- mini-program pages -------------------------------------------------------------------
async def test_mini_program_login_gives_a_web_session(client: httpx.AsyncClient, app: Any,
                                                      fake: FakeWechatApi) -> None:
    r = await client.post("/channels/wechat/mp/login", json={"code": f"code-{MP_CITIZEN}"})
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["channel"] == "wechat_mp" and "openid" not in session and "session_key" not in r.text
    auth = {"Authorization": f"Bearer {session['token']}"}
    r = await client.post(f"/channels/web/sessions/{session['session_id']}/messages", json={"text": "查询我的工单"},
                          headers=auth)
    assert r.status_code == 202
    [_, fields] = (await app.state.runtime.redis.xrange("hl:in"))[-1]
    msg = json.loads(fields["data"])
    assert (msg["channel"], msg["sender"], msg["conversation_key"]) == (
        "wechat_mp", f"mp/{MP_CITIZEN}", f"wechat_mp:mp/{MP_CITIZEN}")
    # A reply to the page goes into the page's event stream, not to the API.
    reply = out("mp", MP_CITIZEN, text="您没有工单", fields={"session_id": session["session_id"]})
    await wechat(app).send(reply)
    r = await client.get(f"/channels/web/sessions/{session['session_id']}/events", headers=auth)
    assert [e["text"] for e in r.json()["events"] if e["type"] == "reply"] == ["您没有工单"]
    assert fake.custom == []
    # A status update (no session id) reaches the page too, and waits for a channel to WeChat.
    await wechat(app).send(status_update("mp", MP_CITIZEN))
    r = await client.get(f"/channels/web/sessions/{session['session_id']}/events", headers=auth)
    assert any(e["type"] == "status_update" for e in r.json()["events"])
    # Consents granted on the page (wx.requestSubscribeMessage) are recorded for this openid.
    r = await client.post(f"/channels/wechat/mp/sessions/{session['session_id']}/subscriptions",
                          json={"accepted": ["TPL_STATUS_UPDATE"]}, headers=auth)
    assert r.json() == {"consents": {"TPL_STATUS_UPDATE": 1}}
    r = await client.post(f"/channels/wechat/mp/sessions/{session['session_id']}/subscriptions",
                          json={"accepted": ["TPL_STATUS_UPDATE"]}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


async def test_mini_program_login_refusals(client: httpx.AsyncClient, fake: FakeWechatApi) -> None:
    assert (await client.post("/channels/wechat/mp/login", json={"code": "expired"})).status_code == 401
    assert (await client.post("/channels/wechat/oa/login", json={"code": "code-x"})).status_code == 404
    assert (await client.post("/channels/wechat/mp/login", json={})).status_code == 422


# --- media --------------------------------------------------------------------------------
async def test_image_is_fetched_in_the_background(client: httpx.AsyncClient, app: Any, fake: FakeWechatApi,
                                                  settings: Settings) -> None:
    fake.media["2Zq7o9WqkB3x_MEDIA_ID_EXAMPLE"] = b"\xff\xd8\xff\xe0 jpeg"
    r = await push(client, "oa", fixture("image.xml"))
    assert r.status_code == 200  # answered before the image is fetched
    key = record_key("wechat:oa:2Zq7o9WqkB3x_MEDIA_ID_EXAMPLE")
    stored = json.loads(await eventually(lambda: app.state.runtime.redis.get(key), within=5))
    assert await asyncio.to_thread(Path(stored["path"]).read_bytes) == b"\xff\xd8\xff\xe0 jpeg"
    assert stored["mime"] == "image/jpeg"


async def test_media_fetch_retried_after_passing_errors(client: httpx.AsyncClient, app: Any, fake: FakeWechatApi,
                                                        settings: Settings) -> None:
    settings.wechat_media_retry_s = 0.2
    fake.media["2Zq7o9WqkB3x_MEDIA_ID_EXAMPLE"] = b"\xff\xd8\xff\xe0 jpeg"
    fake.fail_next(-1, -1)  # 系统繁忙, twice
    assert (await push(client, "oa", fixture("image.xml"))).status_code == 200
    key = record_key("wechat:oa:2Zq7o9WqkB3x_MEDIA_ID_EXAMPLE")
    stored = json.loads(await eventually(lambda: app.state.runtime.redis.get(key), within=10))
    assert stored["mime"] == "image/jpeg" and not fake.failures
    assert await app.state.runtime.redis.zcard(MEDIA_RETRY) == 0


async def test_media_fetch_not_retried_when_wechat_refuses(client: httpx.AsyncClient, app: Any,
                                                           fake: FakeWechatApi) -> None:
    assert (await push(client, "oa", fixture("image.xml"))).status_code == 200  # unknown media: 40007
    stored = json.loads(await eventually(lambda: app.state.runtime.redis.get(
        record_key("wechat:oa:2Zq7o9WqkB3x_MEDIA_ID_EXAMPLE")), within=5))
    assert "40007" in stored["error"]
    assert await app.state.runtime.redis.zcard(MEDIA_RETRY) == 0


async def test_redis_down_is_a_retryable_delivery_error(settings: Settings) -> None:
    import redis.asyncio as aioredis

    from channels.base import ChannelContext

    broken = aioredis.from_url("redis://127.0.0.1:1", decode_responses=True)
    async with httpx.AsyncClient() as http:
        channel = WechatChannel(ChannelContext(redis=broken, enqueue=None, settings=settings, http=http))
        with pytest.raises(DeliveryError) as info:
            await channel.send(out("oa", CITIZEN))
        assert info.value.retry_after == 5
        with pytest.raises(WechatApiError) as api_info:  # the token store too: translated, not leaked
            await channel.api(ACCOUNTS["oa"]).access_token()
        assert api_info.value.transient
    await broken.aclose()
