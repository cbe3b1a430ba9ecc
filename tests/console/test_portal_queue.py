"""A portal source's post in the operators' queue, named as the city names the source."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from channels import portal
from config.settings import PortalSource, Settings

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
    body = json.dumps(post, ensure_ascii=False).encode()
    headers = {"content-type": "application/json", **portal.sign(SECRET, body)}
    assert (await client.post("/channels/portal/liuyanban", content=body, headers=headers)).status_code == 200
    op = await console_login("sun")
    for _ in range(100):
        queue = (await op.get("/queue")).json()
        if queue["conversations"]:
            break
        await asyncio.sleep(0.05)
    assert queue["conversations"][0]["channel"] == "portal:liuyanban"
    assert queue["channels"] == ["portal:liuyanban"]
    assert queue["channel_names"] == {"portal:liuyanban": "市政府网站留言板"}
