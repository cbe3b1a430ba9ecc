"""End to end over WeChat: encrypted pushes in, customer-service (or subscribe) messages out through
a local fake WeChat API server, a conversation to a ticket number and status updates back."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from channels.wechat.fakeapi import FakeWechatApi
from config.settings import Settings
from tests.channels.test_wechat import ACCOUNTS, CITIZEN, MP_CITIZEN, eventually, fixture, push
from tests.conftest import ADMIN_TOKEN

TICKET = re.compile(r"12345-\d{8}-\d{6}")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def settings(settings: Settings, fake: FakeWechatApi) -> Settings:
    settings.wechat = dict(ACCOUNTS)
    settings.wechat_api_base = fake.url
    return settings


class Citizen:
    """One WeChat user writing to an account; every message gets a fresh MsgId."""

    def __init__(self, client: httpx.AsyncClient, account: str, openid: str) -> None:
        self.client, self.account, self.openid = client, account, openid
        self.seq = int(time.time() * 1000)

    async def say(self, text: str, msg_id: int | None = None) -> httpx.Response:
        self.seq += 1
        body = (
            f"<xml><ToUserName><![CDATA[gh_3f2a1b0c9d8e]]></ToUserName><FromUserName><![CDATA[{self.openid}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id or self.seq}</MsgId></xml>"
        )
        r = await push(self.client, self.account, body)
        assert (r.status_code, r.text) == (200, "success")
        return r


async def until(predicate: Callable[[], Any]) -> Any:
    return await eventually(predicate, within=15)


async def file_ticket(citizen: Citizen, fake: FakeWechatApi) -> str:
    await citizen.say("A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑")
    await until(lambda: any("确认" in t for t in fake.texts(citizen.openid)))
    await citizen.say("确认")
    text = await until(lambda: next((t for t in fake.texts(citizen.openid) if TICKET.search(t)), None))
    return TICKET.search(text).group()  # type: ignore[union-attr]


async def test_conversation_to_ticket_and_status_update(client: httpx.AsyncClient, fake: FakeWechatApi) -> None:
    citizen = Citizen(client, "oa", CITIZEN)
    ticket_id = await file_ticket(citizen, fake)
    confirm = next(m for m in fake.custom if m["msgtype"] == "msgmenu")
    assert [i["content"] for i in confirm["msgmenu"]["list"]] == ["确认", "取消"]

    r = await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)
    assert r.json()["conversation_key"] == f"wechat_oa:oa/{CITIZEN}" and "路灯" in r.json()["description"]
    r = await client.post(f"/api/admin/tickets/{ticket_id}/status",
                          json={"status": "accepted", "note": "已派至A3区城管局"}, headers=ADMIN)
    assert r.status_code == 200
    update = await until(lambda: next((t for t in fake.texts(CITIZEN) if "已派单" in t), None))
    assert ticket_id in update and "A3区城管局" in update

    r = await client.get("/api/admin/conversations", params={"channel": "wechat_oa"}, headers=ADMIN)
    [conv] = r.json()["conversations"]
    assert conv["conversation_key"] == f"wechat_oa:oa/{CITIZEN}" and conv["message_count"] == 2
    assert fake.token_calls == 1  # one token served every reply


async def test_the_menus_progress_button_lists_the_citizens_tickets(client: httpx.AsyncClient, fake: FakeWechatApi) -> None:
    citizen = Citizen(client, "oa", CITIZEN)
    ticket_id = await file_ticket(citizen, fake)
    r = await push(client, "oa", fixture("event__click_menu.xml").replace("1764211180", str(int(time.time()))))
    assert (r.status_code, r.text) == (200, "success")
    listed = await until(lambda: next((t for t in fake.texts(CITIZEN) if "您最近的工单" in t), None))
    assert ticket_id in listed


async def test_same_msgid_three_times_one_reply(client: httpx.AsyncClient, fake: FakeWechatApi) -> None:
    citizen = Citizen(client, "oa", CITIZEN)
    for _ in range(3):
        await citizen.say("你好", msg_id=24316620133500001)
    await until(lambda: fake.custom)
    await asyncio.sleep(1.0)  # give a second reply every chance to appear
    assert len(fake.custom) == 1


async def test_closed_window_subscribe_message_then_held_until_next_contact(
    client: httpx.AsyncClient, app: Any, fake: FakeWechatApi
) -> None:
    citizen = Citizen(client, "mp", MP_CITIZEN)
    ticket_id = await file_ticket(citizen, fake)
    redis = app.state.runtime.redis
    # Two days later the customer-service window is closed; the citizen allowed one notification.
    await redis.hset(f"hl:wx:win:mp:{MP_CITIZEN}", "last_in", repr(time.time() - 49 * 3600))
    r = await push(client, "mp", fixture("event__subscribe_msg_popup_event.json"), json_envelope=True)
    assert r.status_code == 200
    sent_before = len(fake.custom)

    await client.post(f"/api/admin/tickets/{ticket_id}/status", json={"status": "accepted"}, headers=ADMIN)
    [sub] = await until(lambda: fake.subscribe)
    assert sub["touser"] == MP_CITIZEN and sub["data"]["character_string1"]["value"] == ticket_id

    # No consent left: the next update waits — it is not dropped.
    await client.post(f"/api/admin/tickets/{ticket_id}/status", json={"status": "processing"}, headers=ADMIN)
    held_key = f"hl:wx:pending:mp:{MP_CITIZEN}"
    assert await eventually(lambda: redis.hlen(held_key)) == 1
    assert len(fake.custom) == sent_before and len(fake.subscribe) == 1

    # The citizen writes again: the held update goes out as a customer-service message.
    await citizen.say("你好")
    await until(lambda: any("办理中" in t and ticket_id in t for t in fake.texts(MP_CITIZEN)))
    assert await redis.hlen(held_key) == 0
