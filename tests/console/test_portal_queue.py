"""A portal source's post in the operators' queue, named as the city names the source."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from config.settings import PortalSource, Settings
from tests.channels.test_portal import signed
from tests.console.test_console_browser import OPERATOR, _create_operator, _login, _page
from tests.console.test_console_browser import browser as browser  # the module's Chromium fixture

SECRET = "liuyanban-secret-0123456789"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # the reply URL is never reached here: the receipt's delivery simply waits for its retry
    board = PortalSource(secret=SECRET, reply_url="http://127.0.0.1:9/replies", name="市政府网站留言板")
    return settings.model_copy(update={"portal": {"liuyanban": board}})


async def test_the_queue_names_the_source(client: httpx.AsyncClient, console_login: Any) -> None:
    post = {
        "id": "40956",
        "user": "UU008729",
        "title": "鑫盛路请求安装路灯",
        "body": "B2区龙泉街道鑫盛路没有路灯，晚上很黑",
    }
    assert (await client.post("/channels/portal/liuyanban", **signed(post, SECRET))).status_code == 200
    op = await console_login("sun")
    for _ in range(100):
        queue = (await op.get("/queue")).json()
        if queue["conversations"]:
            break
        await asyncio.sleep(0.05)
    assert queue["conversations"][0]["channel"] == "portal:liuyanban"
    assert queue["channels"] == ["portal:liuyanban"]
    assert queue["channel_names"] == {"portal:liuyanban": "市政府网站留言板"}


async def test_a_post_asking_to_withdraw_reaches_an_operator_with_its_ticket(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    """撤单 by letter, through the portal adapter: the writer's second post asks to withdraw the
    first one's ticket; it waits for an operator as 撤单, its words on the ticket."""
    first = {"id": "50001", "user": "UU009001", "title": "鑫盛路请求安装路灯", "body": "B2区龙泉街道鑫盛路没有路灯，晚上很黑"}
    assert (await client.post("/channels/portal/liuyanban", **signed(first, SECRET))).status_code == 200
    tickets = app.state.runtime.tickets
    op = await console_login("sun")
    for _ in range(200):
        queue = (await op.get("/queue")).json()["conversations"]
        if queue and (mine := await tickets.list_for(queue[0]["key"])):
            break
        await asyncio.sleep(0.05)
    [ticket] = mine
    second = {"id": "50002", "user": "UU009001", "title": "撤回", "body": "路灯已经装好了，不用处理了"}
    assert (await client.post("/channels/portal/liuyanban", **signed(second, SECRET))).status_code == 200
    for _ in range(200):
        [row] = (await op.get("/queue")).json()["conversations"]
        if row["mode"] == "waiting":
            break
        await asyncio.sleep(0.05)
    assert (row["mode"], row["reason"]) == ("waiting", "withdraw")
    found = await tickets.get(ticket.ticket_id)
    assert [f.note for f in found.additions] == ["路灯已经装好了，不用处理了"] and found.withdrawn_at is None
    assert len(await tickets.list_for(row["key"])) == 1  # not filed again


def test_the_console_shows_the_sources_name(live_gateway: str, settings: Settings, browser: Any) -> None:
    """In Chromium: the queue's badge, the channel filter and the conversation's title."""
    from playwright.sync_api import expect

    base = live_gateway.rstrip("/")
    post = {
        "id": "197810",
        "user": "A00078084",
        "title": "咨询A市装修核价的相关问题",
        "body": "精装价格不得超过毛胚15%是否在所有楼盘实行？",
    }
    assert httpx.post(f"{base}/channels/portal/liuyanban", **signed(post, SECRET)).status_code == 200
    _create_operator(settings)
    errors: list[str] = []
    context, page = _page(browser, errors, [])
    try:
        _login(page, base, OPERATOR)
        item = page.locator(".queue-item").first
        expect(item.locator(".badge.channel")).to_have_text("市政府网站留言板")
        expect(page.locator("#f-channel option[value='portal:liuyanban']")).to_have_text("市政府网站留言板")
        item.click()
        expect(page.locator("#conv-title")).to_have_text("市政府网站留言板 · A00078084")
        # the post's own title above its words, as the board showed it
        expect(page.locator("#history .msg[data-from='citizen'] .title")).to_have_text(
            "咨询A市装修核价的相关问题"
        )
        assert errors == []
    finally:
        context.close()
