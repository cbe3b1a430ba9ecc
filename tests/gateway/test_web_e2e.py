"""End to end on the web channel over HTTP: a conversation to a ticket number and a status update."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, wait_for_events

TICKET = re.compile(r"12345-\d{8}-\d{6}")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def new_session(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post("/channels/web/sessions")
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"session_id", "token"}
    return dict(body)


async def say(client: httpx.AsyncClient, session: dict[str, str], text: str, **extra: Any) -> httpx.Response:
    return await client.post(
        f"/channels/web/sessions/{session['session_id']}/messages",
        json={"text": text, **extra},
        headers={"Authorization": f"Bearer {session['token']}"},
    )


async def file_ticket(client: httpx.AsyncClient, session: dict[str, str]) -> tuple[str, str]:
    r = await say(client, session, "A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑")
    assert r.status_code == 202
    _, cursor = await wait_for_events(client, session, lambda e: e["type"] == "reply" and "确认" in e["text"])
    assert (await say(client, session, "确认")).status_code == 202
    events, cursor = await wait_for_events(client, session, lambda e: e["type"] == "ticket_filed", after=cursor)
    filed = next(e for e in events if e["type"] == "ticket_filed")
    assert TICKET.fullmatch(filed["ticket_id"])
    assert filed["ticket_id"] in filed["text"]
    return filed["ticket_id"], cursor


async def test_conversation_files_ticket_and_hears_status(client: httpx.AsyncClient) -> None:
    session = await new_session(client)
    ticket_id, cursor = await file_ticket(client, session)

    r = await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)
    assert r.status_code == 200
    ticket = r.json()
    assert ticket["status"] == "received"
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "ticket_filed")
    receipt = next(e["text"] for e in events if e["type"] == "ticket_filed")
    assert re.search(r"办理时限：\d{4}年\d{1,2}月\d{1,2}日前。", receipt)  # 15 working days: a day
    await say(client, session, f"查询 {ticket_id}")
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "reply" and "更新于" in e["text"])
    answer = next(e["text"] for e in events if e["type"] == "reply" and "更新于" in e["text"])
    assert re.search(r"办理时限 \d{4}年\d{1,2}月\d{1,2}日前", answer)
    assert "路灯" in ticket["description"]
    assert ticket["conversation_key"] == f"web:{session['session_id']}"

    r = await client.post(
        f"/api/admin/tickets/{ticket_id}/status", json={"status": "accepted", "note": "已派至A3区城管局"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    events, cursor = await wait_for_events(client, session, lambda e: e["type"] == "status_update", after=cursor)
    update = next(e for e in events if e["type"] == "status_update")
    assert update["ticket_id"] == ticket_id
    assert "已派单" in update["text"] and "A3区城管局" in update["text"]


async def test_the_survey_asks_whether_it_was_solved_after_the_rating(client: httpx.AsyncClient) -> None:
    """回访: 满意 is thanked and followed by the second question, whose buttons answer it; the
    answer is on the ticket (解决率), and the question is not left hanging for later words."""
    session = await new_session(client)
    ticket_id, cursor = await file_ticket(client, session)
    for status in ("accepted", "resolved"):
        r = await client.post(f"/api/admin/tickets/{ticket_id}/status", json={"status": status}, headers=ADMIN)
        assert r.status_code == 200, r.text
    _, cursor = await wait_for_events(client, session, lambda e: e["type"] == "survey", after=cursor)
    await say(client, session, "满意")
    events, cursor = await wait_for_events(client, session, lambda e: "是否已经解决" in e.get("text", ""), after=cursor)
    asked = next(e for e in events if "是否已经解决" in e.get("text", ""))
    assert asked["buttons"] == ["已解决", "未解决"]
    await say(client, session, "已解决")
    await wait_for_events(client, session, lambda e: "问题已经解决" in e.get("text", ""), after=cursor)
    ticket = (await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)).json()
    assert ticket["rating"] == "满意" and ticket["solved"] is True


async def test_a_progress_note_reaches_the_citizen_once_without_a_survey(client: httpx.AsyncClient) -> None:
    """A department's interim answer (阶段性答复) while the ticket stays in progress: the citizen
    hears it once as 办理进展, the status stays, and no survey follows."""
    session = await new_session(client)
    ticket_id, cursor = await file_ticket(client, session)
    for status, heard in (("accepted", "已派单"), ("processing", "办理中")):  # one at a time: delivered in parallel
        r = await client.post(f"/api/admin/tickets/{ticket_id}/status", json={"status": status}, headers=ADMIN)
        assert r.status_code == 200, r.text
        _, cursor = await wait_for_events(
            client, session, lambda e, heard=heard: e["type"] == "status_update" and heard in e["text"], after=cursor
        )
    r = await client.post(
        f"/api/admin/tickets/{ticket_id}/notes", json={"note": "已联系物业，预计周五前修复"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "processing" and r.json()["history"][-1]["kind"] == "note"
    await wait_for_events(
        client, session, lambda e: e["type"] == "status_update" and "办理进展" in e["text"], after=cursor
    )
    await asyncio.sleep(0.5)  # the poller runs every 0.1 s: a repeat or a survey would be here by now
    r = await client.get(
        f"/channels/web/sessions/{session['session_id']}/events",
        params={"after": cursor, "wait": 0},
        headers={"Authorization": f"Bearer {session['token']}"},
    )
    later = r.json()["events"]
    assert [e["text"] for e in later] == [f"您的工单 {ticket_id} 有新的办理进展：已联系物业，预计周五前修复"]
    assert later[0]["type"] == "status_update" and later[0]["ticket_id"] == ticket_id
    assert (await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)).json()["status"] == "processing"


async def test_a_withdrawn_ticket_is_told_once_as_withdrawn_without_a_survey(client: httpx.AsyncClient) -> None:
    """撤单: the citizen hears that the ticket was withdrawn at their request, with the reason, and
    no survey; asked later, the bot says 已撤单. A done ticket cannot be withdrawn (409)."""
    session = await new_session(client)
    ticket_id, cursor = await file_ticket(client, session)
    r = await client.post(f"/api/admin/tickets/{ticket_id}/withdraw",
                          json={"reason": "市民表示问题已自行解决", "by": "12345-phone"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["withdrawn_at"]
    _, filed = await wait_for_events(client, session, lambda e: e["type"] == "status_update", after=cursor)
    await asyncio.sleep(0.5)  # the poller runs every 0.1 s: a survey would be here by now
    r = await client.get(
        f"/channels/web/sessions/{session['session_id']}/events",
        params={"after": cursor, "wait": 0},
        headers={"Authorization": f"Bearer {session['token']}"},
    )
    told = [e for e in r.json()["events"] if e["type"] in ("status_update", "survey")]
    assert [e["text"] for e in told] == [
        f"您的工单 {ticket_id} 已按您的要求撤单（市民表示问题已自行解决），不再办理。如问题再次出现，欢迎随时联系12345。"]
    assert told[0]["fields"]["status_label"] == "已撤单"  # the widget's tag
    await say(client, session, f"查询 {ticket_id}")
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "reply" and "更新于" in e["text"], after=filed)
    assert "已撤单，市民表示问题已自行解决" in next(e["text"] for e in events if "更新于" in e["text"])
    again = await client.post(f"/api/admin/tickets/{ticket_id}/withdraw", json={"reason": "再撤一次"}, headers=ADMIN)
    assert again.status_code == 409 and again.json()["detail"].startswith("不能撤单：")
    empty = await client.post(f"/api/admin/tickets/{ticket_id}/withdraw", json={"reason": ""}, headers=ADMIN)
    assert empty.status_code == 400


async def test_a_citizen_withdraws_a_ticket_not_yet_dispatched_in_the_chat(client: httpx.AsyncClient) -> None:
    """撤单 in the widget: asked, confirmed with the button, heard once as withdrawn, no survey."""
    session = await new_session(client)
    ticket_id, cursor = await file_ticket(client, session)
    await say(client, session, "那个单子撤了吧，人家已经来修好了")
    events, cursor = await wait_for_events(client, session, lambda e: e.get("buttons") == ["确认撤回", "不撤回"], after=cursor)
    assert ticket_id in next(e["text"] for e in events if e.get("buttons"))
    await say(client, session, "确认撤回")
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "status_update", after=cursor)
    [told] = [e for e in events if e["type"] == "status_update"]
    assert told["text"].startswith(f"您的工单 {ticket_id} 已按您的要求撤单（市民自行撤回：那个单子撤了吧")
    ticket = (await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)).json()
    assert ticket["status"] == "closed" and ticket["withdrawn_at"]


async def test_progress_query_answers_own_ticket_only(client: httpx.AsyncClient) -> None:
    owner = await new_session(client)
    ticket_id, cursor = await file_ticket(client, owner)
    await say(client, owner, f"查询 {ticket_id}")
    events, _ = await wait_for_events(client, owner, lambda e: e["type"] == "reply" and ticket_id in e["text"], after=cursor)
    assert any("已受理" in e["text"] for e in events)

    stranger = await new_session(client)
    await say(client, stranger, f"查询 {ticket_id}")
    events, _ = await wait_for_events(client, stranger, lambda e: e["type"] == "reply" and ticket_id in e["text"])
    answer = next(e for e in events if e["type"] == "reply" and ticket_id in e["text"])
    assert "没有找到" in answer["text"]
    assert "路灯" not in answer["text"]


async def test_asks_where_when_no_location(client: httpx.AsyncClient) -> None:
    session = await new_session(client)
    await say(client, session, "楼下餐馆每天晚上油烟特别大，熏得没法开窗")
    _, cursor = await wait_for_events(client, session, lambda e: e["type"] == "reply" and "地点" in e["text"])
    await say(client, session, "K2区书院路在水一方大厦")
    events, _ = await wait_for_events(client, session, lambda e: "确认" in e["text"] and e["type"] == "reply", after=cursor)
    confirm = next(e for e in events if "确认" in e["text"] and e["type"] == "reply")
    assert "在水一方" in confirm["text"]
    assert "油烟" in confirm["text"]


async def test_ask_for_human_marks_waiting(client: httpx.AsyncClient) -> None:
    session = await new_session(client)
    await say(client, session, "转人工")
    await wait_for_events(client, session, lambda e: e["type"] == "reply" and "人工" in e["text"])
    r = await client.get("/api/admin/conversations", params={"channel": "web"}, headers=ADMIN)
    conv = next(c for c in r.json()["conversations"] if c["conversation_key"] == f"web:{session['session_id']}")
    assert conv["mode"] == "waiting"
    assert conv["message_count"] == 1


async def test_retried_message_is_handled_once(client: httpx.AsyncClient) -> None:
    session = await new_session(client)
    for _ in range(3):
        r = await say(client, session, "你好", client_message_id="retry-1")
        assert r.status_code == 202
    await wait_for_events(client, session, lambda e: e["type"] == "reply")
    r = await client.get("/api/admin/conversations", headers=ADMIN)
    conv = next(c for c in r.json()["conversations"] if c["conversation_key"] == f"web:{session['session_id']}")
    assert conv["message_count"] == 1


async def test_websocket_streams_filing_and_status(live_gateway: str) -> None:
    """The same conversation with replies over WebSocket, against a real server."""
    import json

    import websockets

    async with httpx.AsyncClient(base_url=live_gateway) as http:
        session = await new_session(http)
        ws_url = live_gateway.replace("http", "ws") + f"/channels/web/sessions/{session['session_id']}/ws?token={session['token']}"
        async with websockets.connect(ws_url) as ws:

            async def until(pred: Any) -> dict[str, Any]:
                while True:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if pred(event):
                        return event

            await say(http, session, "A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
            await until(lambda e: e["type"] == "reply" and "确认" in e["text"])
            await say(http, session, "确认")
            filed = await until(lambda e: e["type"] == "ticket_filed")
            r = await http.post(
                f"/api/admin/tickets/{filed['ticket_id']}/status", json={"status": "accepted", "note": ""}, headers=ADMIN
            )
            assert r.status_code == 200
            update = await until(lambda e: e["type"] == "status_update")
            assert update["ticket_id"] == filed["ticket_id"]

        bad = live_gateway.replace("http", "ws") + f"/channels/web/sessions/{session['session_id']}/ws?token=wrong"
        with pytest.raises(websockets.exceptions.WebSocketException):
            async with websockets.connect(bad) as ws:
                await asyncio.wait_for(ws.recv(), 5)


async def test_session_lists_its_own_tickets(client: httpx.AsyncClient) -> None:
    owner = await new_session(client)
    ticket_id, _ = await file_ticket(client, owner)
    r = await client.get(
        f"/channels/web/sessions/{owner['session_id']}/tickets", headers={"Authorization": f"Bearer {owner['token']}"}
    )
    assert r.status_code == 200
    assert [(t["ticket_id"], t["status"], t["status_name"]) for t in r.json()["tickets"]] == [
        (ticket_id, "received", "已受理登记")
    ]
    other = await new_session(client)
    r = await client.get(
        f"/channels/web/sessions/{other['session_id']}/tickets", headers={"Authorization": f"Bearer {other['token']}"}
    )
    assert r.json() == {"tickets": []}
