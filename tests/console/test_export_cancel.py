"""A 导出 the supervisor cancels part-way, against a real server: the file ends early, and the audit
log still says who exported what and how many rows left (httpx's in-process transport cannot drop
a connection mid-body; uvicorn over a socket does)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import create_engine, insert

from config.settings import Settings
from tests.console.test_console_browser import PASSWORD, _create_operator
from ticket_client.db import sync_url
from ticket_client.models import TicketRow

TICKETS = 20_000  # about 3 MB of CSV: far more than the socket buffers hold before the client leaves


def fill(settings: Settings) -> None:
    """Tickets straight into the live gateway's ledger (filing 20,000 one by one takes minutes)."""
    engine = create_engine(sync_url(settings.effective_database_url))
    start = datetime.now(UTC) - timedelta(days=20)
    with engine.begin() as conn:
        conn.execute(insert(TicketRow), [{
            "ticket_id": f"12345-20261101-{i:06d}", "idempotency_key": f"fill:{i}", "channel": "web",
            "conversation_key": f"web:fill{i}", "contact": "", "title": f"路灯不亮{i}", "description": "小区门口路灯坏了",
            "category": ["城乡建设"], "request_type": "投诉", "urgent": False, "location": {"text": "", "parts": {}},
            "departments": [], "attachments": [], "status": "accepted", "rating": None, "rating_comment": "",
            "created_at": start + timedelta(seconds=i), "updated_at": start + timedelta(seconds=i),
        } for i in range(1, TICKETS + 1)])
    engine.dispose()


def test_a_download_cancelled_part_way_is_audited_with_the_rows_sent(live_gateway: str, settings: Settings) -> None:
    fill(settings)
    _create_operator(settings, "banzhang", "supervisor", "李班长")
    with httpx.Client(base_url=live_gateway.rstrip("/"), timeout=30) as http:
        assert http.post("/api/console/login", json={"username": "banzhang", "password": PASSWORD}).status_code == 200
        with http.stream("GET", "/api/console/tickets.csv", params={"days": 0}) as r:
            assert r.status_code == 200
            first = next(r.iter_bytes())
            assert first.startswith("\ufeff工单编号".encode())
        # closed with most of the file unread: the server is told the client left
        deadline = time.monotonic() + 15
        while True:
            entries = http.get("/api/console/audit", params={"limit": 20}).json()["entries"]
            exported = [e for e in entries if e["action"] == "ticket.export"]
            if exported or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    [entry] = exported
    assert entry["actor"] == "banzhang"
    assert 0 < entry["detail"]["rows"] < TICKETS, entry  # what left before the supervisor did
    assert entry["detail"]["cut"] is False and entry["detail"]["broken"] is False
