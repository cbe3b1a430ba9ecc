"""更正 / 改派 over the admin API: the centre's dispatch system sends a returned ticket out again."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import ADMIN_TOKEN, wait_for_events
from tests.gateway.test_web_e2e import file_ticket, new_session

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
