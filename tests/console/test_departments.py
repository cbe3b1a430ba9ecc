"""承办单位考核 over the console's API: per unit the period's tickets name, what it finished, let
run late or sent back, and how citizens judged it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ticket_client import TicketDraft


def draft(key: str, departments: list[str]) -> TicketDraft:
    return TicketDraft(channel="web", conversation_key=f"web:{key}", description="小区门口路灯坏了一个星期",
                       departments=departments)


async def test_the_report_counts_each_unit_of_the_periods_tickets(app: Any, console_login: Any) -> None:
    tickets = app.state.runtime.tickets
    done = await tickets.file(draft("a", ["城市管理和综合执法局", "洞井街道办事处"]), "d-a")
    sent_back = await tickets.file(draft("b", ["生态环境局", "洞井街道办事处"]), "d-b")
    await tickets.file(draft("c", ["洞井街道办事处"]), "d-c")
    for status in ("accepted", "resolved"):
        await tickets.set_status(done.ticket_id, status)
    await tickets.rate(done.ticket_id, "不满意")
    await tickets.set_status(sent_back.ticket_id, "returned")
    later = datetime.now(UTC) + timedelta(days=40)  # past 15 working days: the open ones are late
    app.state.console.clock = lambda: later
    boss = await console_login("boss", "supervisor")

    r = await boss.get("/departments", params={"days": 90})
    assert r.status_code == 200, r.text
    rows = {d["department"]: d for d in r.json()["departments"]}
    assert list(rows)[0] == "洞井街道办事处" and set(rows) == {"洞井街道办事处", "城市管理和综合执法局", "生态环境局"}
    street = rows["洞井街道办事处"]
    assert (street["filed"], street["primary"], street["done"], street["overdue"], street["returned"]) == (3, 1, 1, 2, 1)
    assert street["done_rate"] == 1 / 3 and street["rated"] == 1 and street["satisfaction"] == 0.0
    assert rows["城市管理和综合执法局"]["overdue"] == 0 and rows["城市管理和综合执法局"]["satisfaction"] == 0.0
    assert rows["生态环境局"]["satisfaction"] is None  # nobody rated it: no figure, not 0%
    assert (await boss.get("/departments", params={"days": 30})).json()["departments"] == []  # filed before
    refused = await boss.get("/departments", params={"days": 45})
    assert refused.status_code == 400 and "近7天、近30天、近90天" in refused.json()["detail"]
    operator = await console_login("li")
    assert (await operator.get("/departments")).status_code == 403  # supervisors' figures
