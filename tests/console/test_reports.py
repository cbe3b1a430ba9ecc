"""The 班长视图's reports over the console's API: 承办单位考核 (per unit the period's tickets name,
what it finished, let run late or sent back, and how citizens judged it) and 热点诉求 (the kinds of
matter against the period before, the spots reported again and again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ticket_client import LocationInfo, TicketDraft


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
    await tickets.mark_solved(done.ticket_id, False)  # 未解决, the 回访's second answer
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
    assert (street["returns"], rows["生态环境局"]["returns"]) == (0, 1)  # its 主办 sent it back
    assert street["done_rate"] == 1 / 3 and street["rated"] == 1 and street["satisfaction"] == 0.0
    assert (street["unsolved"], street["solved_rate"]) == (1, 0.0) and rows["生态环境局"]["solved_rate"] is None
    month = (await boss.get("/stats")).json()["service"][-1]  # 服务质量 (30 days, the work resolved in it)
    assert (month["solved"], month["unsolved"], month["solved_rate"]) == (0, 1, 0.0)
    assert (await boss.get(f"/tickets/{done.ticket_id}")).json()["ticket"]["solved"] is False

    async def found(solved: str) -> list[str]:
        return [t["ticket_id"] for t in (await boss.get("/tickets", params={"solved": solved})).json()["tickets"]]

    assert await found("未解决") == [done.ticket_id] and await found("已解决") == []  # 工单查询's 解决情况
    assert await found("redo") == [done.ticket_id] and (await boss.get("/stats")).json()["redo"] == 1  # 回访未解决
    assert len(await found("none")) == 2 and done.ticket_id not in await found("none")
    assert (await boss.get("/tickets", params={"solved": "yes"})).status_code == 400
    exported = (await boss.get("/tickets.csv")).text.lstrip("\ufeff").splitlines()
    assert exported[0].endswith(",解决情况") and sum(line.endswith(",未解决") for line in exported) == 1
    assert rows["城市管理和综合执法局"]["overdue"] == 0 and rows["城市管理和综合执法局"]["satisfaction"] == 0.0
    assert rows["生态环境局"]["satisfaction"] is None  # nobody rated it: no figure, not 0%
    assert (await boss.get("/departments", params={"days": 30})).json()["departments"] == []  # filed before
    report = await boss.get("/departments.csv", params={"days": 90})  # the same, as a file for 考核
    assert report.status_code == 200 and 'filename="departments-90d-' in report.headers["content-disposition"]
    lines = report.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("承办单位,受理,主办,办结,办结率,超期未办结,退回次数,退回待改派") and len(lines) == 4
    assert lines[1] == "洞井街道办事处,3,1,1,33.3%,2,0,1,0,0,1,0,0,1,0.0%,0,1,0.0%"
    assert (await boss.get("/departments.csv", params={"days": 45})).status_code == 400
    entries = (await boss.get("/audit?limit=20")).json()["entries"]
    assert [e["detail"] for e in entries if e["action"] == "departments.export"] == [{"days": 90, "rows": 3}]
    refused = await boss.get("/departments", params={"days": 45})
    assert refused.status_code == 400 and "近7天、近30天、近90天" in refused.json()["detail"]
    operator = await console_login("li")
    assert (await operator.get("/departments")).status_code == 403  # supervisors' figures
    assert (await operator.get("/departments.csv")).status_code == 403


async def test_hotspots_show_the_weeks_kinds_against_the_week_before_and_the_spots_reported_again(
    app: Any, console_login: Any
) -> None:
    tickets = app.state.runtime.tickets
    lamps = ["城乡建设", "城市建设和市政管理"]

    def at(key: str, place: str, category: list[str]) -> TicketDraft:
        return TicketDraft(channel="web", conversation_key=f"web:{key}", description="小区门口路灯坏了一个星期",
                           category=category, location=LocationInfo(text=place, parts={"community": place}))

    for i in range(3):
        await tickets.file(at(f"l{i}", "米兰春天", lamps), f"h-l{i}")
    await tickets.file(at("n", "融城苑", ["环境保护", "噪音污染"]), "h-n")
    boss = await console_login("boss", "supervisor")
    found = (await boss.get("/hotspots")).json()
    assert found["days"] == 7
    assert [(c["category"], c["filed"], c["before"], c["change"]) for c in found["categories"]] == [
        (lamps, 3, 0, None), (["环境保护", "噪音污染"], 1, 0, None)]  # nothing the week before: 新增
    assert [(p["place"], p["kind"], p["filed"], p["open"]) for p in found["places"]] == [("米兰春天", "城乡建设", 3, 3)]
    lamp_tickets = (await boss.get("/tickets", params={"category": "城乡建设/城市建设和市政管理"})).json()["tickets"]
    assert len(lamp_tickets) == 3  # a kind's tickets in 工单查询 (分类: it or below it)
    assert len((await boss.get("/tickets", params={"category": "城乡建设"})).json()["tickets"]) == 3
    assert abs(found["places"][0]["latest"] - datetime.now(UTC).timestamp()) < 60
    app.state.console.clock = lambda: datetime.now(UTC) + timedelta(days=10)  # a week on: they were the week before
    later = (await boss.get("/hotspots", params={"days": 7})).json()
    assert [(c["filed"], c["before"]) for c in later["categories"]] == [] and later["places"] == []
    month = (await boss.get("/hotspots", params={"days": 30})).json()
    assert [c["filed"] for c in month["categories"]] == [3, 1] and len(month["places"]) == 1
    assert (await boss.get("/hotspots", params={"days": 90})).status_code == 400
    assert (await (await console_login("li")).get("/hotspots")).status_code == 403
