"""The admin API's export: the console's CSV for scripts, by Beijing days filed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from config.workdays import BEIJING
from tests.conftest import ADMIN_TOKEN
from ticket_client import LocationInfo, TicketDraft

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def numbers(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["工单编号", "平台编号", "受理时间"]
    return [row[0] for row in rows[1:]]


async def test_a_days_tickets_as_csv_for_a_script(app: Any, client: httpx.AsyncClient) -> None:
    tickets = app.state.runtime.tickets
    lamp = await tickets.file(TicketDraft(channel="web", conversation_key="web:a", title="路灯不亮", contact="13912345678",
                                          description="路灯坏了，电话13912345678", location=LocationInfo(text="A3区联丰路")), "a")
    board = await tickets.file(TicketDraft(channel="portal:liuyanban", conversation_key="portal:liuyanban:1",
                                           title="噪音扰民", description="工地夜间施工", urgent=True,
                                           departments=["生态环境局", "公安局"]), "b")
    await tickets.set_status(lamp.ticket_id, "accepted")
    today = datetime.now(UTC).astimezone(BEIJING).date()
    yesterday = today - timedelta(days=1)

    r = await client.get(f"/api/admin/tickets.csv?since={today}&until={today}", headers=ADMIN)
    assert numbers(r) == [board.ticket_id, lamp.ticket_id]
    assert "13912345678" not in r.text and "attachment" in r.headers["content-disposition"]
    assert numbers(await client.get(f"/api/admin/tickets.csv?until={yesterday}", headers=ADMIN)) == []
    assert numbers(await client.get(f"/api/admin/tickets.csv?since={today + timedelta(days=1)}", headers=ADMIN)) == []
    assert numbers(await client.get("/api/admin/tickets.csv?status=accepted", headers=ADMIN)) == [lamp.ticket_id]
    assert numbers(await client.get("/api/admin/tickets.csv?channel=portal:", headers=ADMIN)) == [board.ticket_id]
    assert numbers(await client.get("/api/admin/tickets.csv?urgent=false", headers=ADMIN)) == [lamp.ticket_id]
    assert numbers(await client.get("/api/admin/tickets.csv?department=公安局", headers=ADMIN)) == [board.ticket_id]


async def test_a_bad_export_request_says_what_is_wrong(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/admin/tickets.csv")).status_code == 401
    r = await client.get("/api/admin/tickets.csv?since=2026-11-30&until=2026-11-01", headers=ADMIN)
    assert r.status_code == 400 and "since 晚于 until" in r.json()["detail"]
    r = await client.get("/api/admin/tickets.csv?since=2026-02-30", headers=ADMIN)
    assert r.status_code == 422 and "since" in r.json()["detail"]
    r = await client.get("/api/admin/tickets.csv?status=done", headers=ADMIN)
    assert r.status_code == 400 and "未知的工单状态" in r.json()["detail"]


async def test_the_weekly_report_for_a_script(app: Any, client: httpx.AsyncClient) -> None:
    """The console's 周报 page with the admin token (mailed from cron); no phone numbers on it."""
    tickets = app.state.runtime.tickets
    await tickets.file(TicketDraft(channel="portal:liuyanban", conversation_key="portal:liuyanban:1", title="噪音扰民",
                                   description="工地夜间施工，电话13912345678", departments=["生态环境局"]), "b")
    r = await client.get("/api/admin/report", headers=ADMIN)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "12345政务服务便民热线周报" in r.text and "<td>生态环境局</td>" in r.text
    assert '<b id="filed">1</b>' in r.text and "13912345678" not in r.text
    assert (await client.get("/api/admin/report?days=30", headers=ADMIN)).status_code == 200
    assert (await client.get("/api/admin/report?days=1", headers=ADMIN)).status_code == 400
    today = datetime.now(BEIJING)
    this_month = await client.get(f"/api/admin/report?month={today.year}-{today.month:02d}", headers=ADMIN)
    assert this_month.status_code == 200 and f"月报（{today.year}年{today.month}月）" in this_month.text
    assert '<b id="filed">1</b>' in this_month.text
    ahead = await client.get(f"/api/admin/report?month={today.year + 1}-01", headers=ADMIN)
    assert ahead.status_code == 400 and "尚未开始" in ahead.json()["detail"]
    assert (await client.get("/api/admin/report")).status_code == 401
