"""Bad input gets a clear 4xx naming what was wrong, and nothing is half-written."""

from __future__ import annotations

import httpx
import pytest

from config.settings import Settings
from gateway import keys
from tests.conftest import ADMIN_TOKEN, wait_for_events
from tests.gateway.test_web_e2e import file_ticket, new_session, say

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def inbound_count(app_: object) -> int:
    return int(await app_.state.runtime.redis.zcard(keys.CONVERSATIONS))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"text": ""}, 400, "不能为空"),
        ({"text": "   \n "}, 400, "不能为空"),
        ({"text": "路" * 2001}, 400, "过长"),
        ({"nothing": 1}, 400, "不能为空"),
        ({"text": 123}, 422, "请求格式不正确"),
    ],
)
async def test_bad_messages_refused(app: object, client: httpx.AsyncClient, body: dict, status: int, detail: str) -> None:
    session = await new_session(client)
    r = await client.post(
        f"/channels/web/sessions/{session['session_id']}/messages",
        json=body,
        headers={"Authorization": f"Bearer {session['token']}"},
    )
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]
    assert await inbound_count(app) == 0


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    session = await new_session(client)
    r = await client.post(
        f"/channels/web/sessions/{session['session_id']}/messages",
        content=b'{"text": "unterminated',
        headers={"Authorization": f"Bearer {session['token']}", "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert "请求格式不正确" in r.json()["detail"]


async def test_oversized_body_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    session = await new_session(client)
    r = await client.post(
        f"/channels/web/sessions/{session['session_id']}/messages",
        content=b'{"text": "' + b"a" * (settings.max_body_bytes + 10) + b'"}',
        headers={"Authorization": f"Bearer {session['token']}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413


async def test_unknown_session_and_wrong_token(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/channels/web/sessions/nope/messages", json={"text": "你好"}, headers={"Authorization": "Bearer x"}
    )
    assert r.status_code == 404 and "会话不存在" in r.json()["detail"]
    session = await new_session(client)
    r = await client.post(
        f"/channels/web/sessions/{session['session_id']}/messages",
        json={"text": "你好"},
        headers={"Authorization": "Bearer wrong"},
    )
    assert r.status_code == 401 and "令牌" in r.json()["detail"]
    r = await client.post(f"/channels/web/sessions/{session['session_id']}/messages", json={"text": "你好"})
    assert r.status_code == 401
    r = await client.get(f"/channels/web/sessions/{session['session_id']}/events", headers={"Authorization": "Bearer x"})
    assert r.status_code == 401


async def test_rate_limit(settings: Settings, tmp_path: object) -> None:
    from gateway.app import create_app

    limited = settings.model_copy(update={"web_rate_per_minute": 3})
    application = create_app(limited, workers=False)
    await application.state.runtime.start(workers=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c:
            session = await new_session(c)
            codes = [(await say(c, session, f"第{i}条消息内容")).status_code for i in range(5)]
        assert codes == [202, 202, 202, 429, 429]
    finally:
        await application.state.runtime.stop()


async def test_admin_api_errors(client: httpx.AsyncClient) -> None:
    session = await new_session(client)
    ticket_id, _ = await file_ticket(client, session)
    url = f"/api/admin/tickets/{ticket_id}/status"
    r = await client.post(url, json={"status": "accepted"})
    assert r.status_code == 401
    r = await client.post(url, json={"status": "accepted"}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = await client.post(url, json={"status": "done"}, headers=ADMIN)
    assert r.status_code == 400 and "未知的工单状态" in r.json()["detail"]
    # an answer quoting half an emoji (JSON "\\udc00") is still written, with U+FFFD for it
    r = await client.post(
        url, content=b'{"status": "x\\udc00"}', headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and "未知的工单状态“x\ufffd”" in r.json()["detail"]
    # received -> closed is allowed; a note holding half an emoji is taken, as the citizen's own
    # words are, not refused for its length
    r = await client.post(
        url,
        content='{"status": "closed", "note": "已办结\\ud83d"}'.encode(),
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["history"][-1]["note"] == "已办结\ufffd"
    r = await client.post(url, json={"status": "processing"}, headers=ADMIN)  # closed -> processing is not
    assert r.status_code == 409 and "不允许" in r.json()["detail"]
    ticket = (await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)).json()
    assert ticket["status"] == "closed"
    assert [h["status"] for h in ticket["history"]] == ["received", "closed"]
    r = await client.get("/api/admin/tickets/12345-20200101-999999", headers=ADMIN)
    assert r.status_code == 404


async def test_bad_event_cursor(client: httpx.AsyncClient) -> None:
    session = await new_session(client)
    r = await client.get(
        f"/channels/web/sessions/{session['session_id']}/events",
        params={"after": "abc"},
        headers={"Authorization": f"Bearer {session['token']}"},
    )
    assert r.status_code == 400 and "游标" in r.json()["detail"]


async def test_half_an_emoji_is_kept_as_a_replacement_character(client: httpx.AsyncClient) -> None:
    """A client that cuts text by UTF-16 units can send half an emoji (JSON ``\\ud83d``); Python
    decodes it to a lone surrogate, which Redis and JSON cannot write. The message is taken with
    U+FFFD in its place, and the conversation goes on to a ticket."""
    session = await new_session(client)
    url = f"/channels/web/sessions/{session['session_id']}/messages"
    headers = {"Authorization": f"Bearer {session['token']}", "Content-Type": "application/json"}
    text = "A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑\\ud83d"
    r = await client.post(
        url, content=('{"text": "' + text + '", "client_message_id": "m1"}').encode(), headers=headers
    )
    assert r.status_code == 202, r.text
    events, cursor = await wait_for_events(
        client, session, lambda e: e["type"] == "reply" and "确认" in e["text"]
    )
    echo = next(e for e in events if e["type"] == "echo")
    assert echo["text"].endswith("很黑\ufffd")
    assert (await say(client, session, "确认")).status_code == 202
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "ticket_filed", after=cursor)
    ticket_id = next(e for e in events if e["type"] == "ticket_filed")["ticket_id"]
    ticket = (await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)).json()
    assert "路灯" in ticket["description"] and "\ufffd" in ticket["description"]
    # the widget's own message id is not the citizen's words: a broken one is refused, by name
    r = await client.post(
        url,
        content=b'{"text": "\xe4\xbd\xa0\xe5\xa5\xbd", "client_message_id": "m2\\udc00"}',
        headers=headers,
    )
    assert r.status_code == 422 and "client_message_id" in r.json()["detail"]


async def test_an_unencodable_enqueue_is_a_400_and_writes_nothing(app: object) -> None:
    """Every channel cleans what it enqueues; should a side write still hold half an emoji, the
    enqueue refuses it by name (400), alone, and writes nothing."""
    from channels.base import InboundMessage
    from gateway.errors import BadInput
    from gateway.streams import SideWrite

    streams = app.state.runtime.streams  # type: ignore[attr-defined]
    msg = InboundMessage(channel="web", channel_message_id="m-bad", sender="s1", text="你好")
    with pytest.raises(BadInput, match="无法识别的字符"):
        await streams.enqueue(msg, SideWrite("hl:test:side", "x\ud83d"))
    assert await inbound_count(app) == 0
    ok = InboundMessage(channel="web", channel_message_id="m-ok", sender="s1", text="你好")
    assert await streams.enqueue(ok)
