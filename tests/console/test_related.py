"""同一地点近30天工单: the side panel's tickets that name the place of the conversation's matter."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import wait_for_events
from tests.gateway.test_web_e2e import new_session, say
from ticket_client.base import LocationInfo, TicketDraft


def draft(text: str, category: list[str], key: str = "web:neighbour") -> TicketDraft:
    return TicketDraft(channel="web", conversation_key=key, title=text[:20], description=text,
                       category=category, location=LocationInfo(text=""))


async def test_tickets_at_the_same_place_newest_of_its_kind_first(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    tickets = app.state.runtime.tickets
    lamp = await tickets.file(draft("米兰春天东门路灯不亮", ["城乡建设", "市政设施"]), "n1")
    await tickets.file(draft("书院路在水一方大厦楼下油烟", ["环境保护"]), "n2")  # elsewhere
    noise = await tickets.file(draft("米兰春天小区晚上广场舞噪音", ["环境保护"]), "n3")
    done = await tickets.file(draft("米兰春天小区门口井盖松动", ["城乡建设"]), "n4")
    await tickets.set_status(done.ticket_id, "accepted")
    await tickets.set_status(done.ticket_id, "resolved")

    session = await new_session(client)
    await say(client, session, "A3区联丰路米兰春天小区门口的路灯坏了一个星期了")
    await wait_for_events(client, session, lambda e: e["type"] == "reply" and "确认" in e["text"])
    key = f"web:{session['session_id']}"
    op = await console_login("wang")
    found = (await op.get("/related", params={"key": key})).json()
    assert found["place"] == "米兰春天" and found["days"] == 30
    # 城乡建设 (the draft's kind) first, the open one before the resolved one; then the others
    assert [t["ticket_id"] for t in found["tickets"]] == [lamp.ticket_id, done.ticket_id, noise.ticket_id]
    assert not any(t["own"] for t in found["tickets"]) and found["count"] == 3

    await say(client, session, "确认")  # the citizen's own ticket shows too, marked as theirs
    await wait_for_events(client, session, lambda e: e["type"] == "ticket_filed")
    again = (await op.get("/related", params={"key": key})).json()["tickets"]
    assert [t["own"] for t in again].count(True) == 1 and len(again) == 4


async def test_no_place_no_lookup(client: httpx.AsyncClient, console_login: Any) -> None:
    session = await new_session(client)
    await say(client, session, "转人工")
    await wait_for_events(client, session, lambda e: "人工" in e["text"])
    op = await console_login("wang")
    found = (await op.get("/related", params={"key": f"web:{session['session_id']}"})).json()
    assert found == {"place": "", "days": 30, "tickets": [], "more": False}
    assert (await op.get("/related", params={"key": "web:nobody"})).status_code == 404
