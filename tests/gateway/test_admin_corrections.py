"""更正 / 改派 over the admin API: the centre's dispatch system sends a returned ticket out again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, wait_for_events
from tests.gateway.test_web_e2e import file_ticket, new_session
from ticket_client import deadlines

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_the_dispatch_system_redispatches_a_returned_ticket(client: httpx.AsyncClient, app: Any) -> None:
    session = await new_session(client)
    ticket_id, cursor = await file_ticket(client, session)
    for status in ("accepted", "returned"):
        assert (await client.post(f"/api/admin/tickets/{ticket_id}/status", json={"status": status},
                                  headers=ADMIN)).status_code == 200
    r = await client.post(f"/api/admin/tickets/{ticket_id}/correct", headers=ADMIN,
                          json={"departments": ["供电公司"], "reason": "退单改派", "by": "派单系统:张三"})
    assert r.status_code == 200, r.text
    ticket = r.json()
    assert ticket["status"] == "accepted" and ticket["departments"] == ["供电公司"]
    [revision] = ticket["revisions"]
    assert (revision["by"], revision["reason"], revision["dispatched"]) == ("派单系统:张三", "退单改派", True)
    events, _ = await wait_for_events(client, session, lambda e: "已改派至供电公司" in e["text"], after=cursor)
    assert (await client.get(f"/api/admin/tickets/{ticket_id}", headers=ADMIN)).json()["revisions"] == [revision]

    confirmed = await client.post(f"/api/admin/tickets/{ticket_id}/correct", headers=ADMIN, json={})
    assert confirmed.status_code == 200 and confirmed.json()["revisions"][-1]["by"] == "admin"
    assert (await client.post(f"/api/admin/tickets/{ticket_id}/correct", json={})).status_code == 401
    bad = await client.post(f"/api/admin/tickets/{ticket_id}/correct", headers=ADMIN, json={"request_type": "抱怨"})
    assert bad.status_code == 400
    assert (await client.post("/api/admin/tickets/12345-20201231-999999/correct", headers=ADMIN, json={})).status_code == 404


@pytest.mark.parametrize("restart", [False, True])
async def test_a_redispatch_that_restarts_the_time_limit_tells_the_citizen_the_new_one(
    client: httpx.AsyncClient, app: Any, restart: bool
) -> None:
    """HOTLINE_RESOLVE_RESTART_ON_REDISPATCH: the receipt named a 办理时限 from the filing; sent out
    again, the ticket is due anew, and the 改派 message says when (as filed otherwise: not a word)."""
    settings = app.state.runtime.settings
    settings.resolve_restart_on_redispatch = restart
    session = await new_session(client)
    ticket_id, cursor = await file_ticket(client, session)
    for status in ("accepted", "returned"):
        await client.post(f"/api/admin/tickets/{ticket_id}/status", json={"status": status}, headers=ADMIN)
    await client.post(f"/api/admin/tickets/{ticket_id}/correct", headers=ADMIN, json={"departments": ["供电公司"]})
    events, _ = await wait_for_events(client, session, lambda e: "已改派至供电公司" in e["text"], after=cursor)
    told = next(e["text"] for e in events if "已改派至供电公司" in e["text"])
    accepted = [e["text"] for e in events if e["type"] == "status_update" and "已派单" in e["text"]]
    ticket = await app.state.runtime.tickets.get(ticket_id)
    due = deadlines.due_at(ticket, settings)
    assert due is not None and ticket.redispatched_at is not None
    if restart:
        assert told.endswith(f"（已改派至供电公司），办理时限 {deadlines.said(due)}前")
        assert [("办理时限" in t) for t in accepted] == [False, True]  # the first acceptance says nothing of it
    else:
        assert "办理时限" not in told
