"""The 班长视图's reports over the console's API: 承办单位考核 (per unit the period's tickets name,
what it finished, let run late or sent back, and how citizens judged it) and 热点诉求 (the kinds of
matter against the period before, the spots reported again and again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config.settings import Settings
from config.workdays import BEIJING
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
    returned = await boss.get("/tickets", params={"returned": "true", "department": "生态环境局", "days": 90})
    assert [t["ticket_id"] for t in returned.json()["tickets"]] == [sent_back.ticket_id]  # the count's tickets
    assert (await boss.get("/tickets", params={"returned": "true", "department": "洞井街道办事处"})).json()["tickets"] == []
    assert street["done_rate"] == 1 / 3 and street["rated"] == 1 and street["satisfaction"] == 0.0
    # 综合得分 (HOTLINE_SCORE_WEIGHTS' default): none of a unit given fewer than 5 tickets
    assert (r.json()["weights"], r.json()["score_min_tickets"]) == ({"响应率": 0.1, "解决率": 0.45, "满意率": 0.45}, 5)
    assert all(row["score"] is None for row in rows.values())
    runtime = app.state.runtime  # HOTLINE_SCORE_MIN_TICKETS=1: a unit's 综合得分 from its first ticket
    runtime.settings = runtime.settings.model_copy(update={"score_min_tickets": 1})
    r = await boss.get("/departments", params={"days": 90})
    rows = {d["department"]: d for d in r.json()["departments"]}
    street = rows["洞井街道办事处"]
    # 响应率 1/3 (the other two never taken on), 解决率 0, 满意率 0
    assert street["score"] == pytest.approx(10 / 3) and rows["生态环境局"]["score"] is None  # no 回访 there
    assert (street["done_late"], street["on_time_rate"]) == (0, 1.0)  # 办结 at once: in time
    assert rows["生态环境局"]["on_time_rate"] is None  # nothing finished: no figure
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
    assert lines[0].startswith("承办单位,受理,主办,办结,办结率,超期办结,按期办结率,超期未办结,退回次数,退回待改派")
    # …, 已签收 1, 超时签收 0, 超时未签收 2 (the returned one was never taken on), 响应率 33.3%, …
    assert lines[1] == "洞井街道办事处,3,1,1,33.3%,0,100.0%,2,0,1,0,0,0,1,0,2,33.3%,1,0,0,1,0.0%,0,1,0.0%,3.3" and len(lines) == 4
    assert lines[0].endswith(",解决率,综合得分") and lines[2].endswith(",10.0")  # 城管局: taken on in time only
    assert lines[3].startswith("生态环境局,") and lines[3].endswith(",")  # nobody rated it: no score
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


async def test_the_weekly_report_is_one_printable_page_of_the_periods_figures(app: Any, console_login: Any) -> None:
    """周报 / 月报: 受理 by channel with its 环比, 办结 and the 回访, 热点诉求 and 承办单位考核 on one
    page for supervisors, every value escaped; audited; 400 for another period, 403 for operators."""
    import re

    tickets = app.state.runtime.tickets
    lamps = ["城乡建设", "城市建设和市政管理"]
    place = "<b>米兰春天</b>"  # words from a citizen: text on the page, never markup

    def at(key: str, channel: str) -> TicketDraft:
        return TicketDraft(channel=channel, conversation_key=f"{channel}:{key}", description="小区门口路灯坏了",
                           category=lamps, departments=["城市管理和综合执法局", "洞井街道办事处"],
                           location=LocationInfo(text=place, parts={"community": place}))

    refs = [await tickets.file(at(str(i), channel), f"r-{i}")
            for i, channel in enumerate(("web", "web", "wechat_oa"))]
    for status in ("accepted", "resolved"):
        await tickets.set_status(refs[0].ticket_id, status)
    await tickets.rate(refs[0].ticket_id, "满意")
    await tickets.mark_solved(refs[0].ticket_id, True)
    await tickets.withdraw(refs[2].ticket_id, "市民表示问题已自行解决")
    boss = await console_login("boss", "supervisor")

    r = await boss.get("/report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert "<title>12345热线周报（" in page and "近7天" in page
    assert re.search(r'<b id="filed">3</b> 件，较上一期（0 件）<span id="filed-change">新增</span>；办结 <b>1</b> 件', page)
    assert '满意率 <b id="satisfaction">100.0%</b>，解决率 <b id="solved-rate">100.0%</b>' in page
    assert "应群众要求撤单 1 件" in page
    assert re.search(r"<td>网站在线咨询</td><td class=\"n\">2</td><td class=\"n\">66.7%</td>", page)
    assert "<td>微信公众号</td>" in page
    assert "<td>城乡建设／城市建设和市政管理</td><td class=\"n\">3</td>" in page
    assert "&lt;b&gt;米兰春天&lt;/b&gt;" in page and "<b>米兰春天</b>" not in page  # escaped
    assert re.search(r"<td>城市管理和综合执法局</td><td class=\"n\">3</td><td class=\"n\">3</td><td class=\"n\">1</td>\s*"
                     r"<td class=\"n\">50.0%</td>", page)  # 办结率 = 1 / (3 - 1 withdrawn)
    month = await boss.get("/report", params={"days": 30})
    assert month.status_code == 200 and "12345政务服务便民热线月报" in month.text
    refused = await boss.get("/report", params={"days": 90})
    assert refused.status_code == 400 and "近7天、近30天" in refused.json()["detail"]
    assert (await (await console_login("li")).get("/report")).status_code == 403
    entries = (await boss.get("/audit?limit=20")).json()["entries"]
    assert [e["detail"] for e in entries if e["action"] == "report.view"] == [{"days": 30}, {"days": 7}]


async def test_what_was_finished_late_is_counted_found_and_exported(
    app: Any, console_login: Any, settings: Settings
) -> None:
    """按期办结: a ticket 办结 past its 办理时限 is 超期办结, judged when it was finished: 服务质量's
    按期办结率, 承办单位考核's count, 工单查询's filter (audited with the export), the ticket's
    detail and its CSV line, and the 月报 all say so; one 办结 at once is in time."""
    from ticket_client import LocalLedger

    tickets = app.state.runtime.tickets
    city = "城市管理和综合执法局"
    then = datetime.now(UTC) - timedelta(days=40)  # past 15 working days, whatever the holidays
    async with LocalLedger(settings.effective_database_url, clock=lambda: then) as old:
        late = (await old.file(draft("old", [city]), "f-old")).ticket_id
    quick = (await tickets.file(draft("new", [city, "洞井街道办事处"]), "f-new")).ticket_id
    for ticket_id in (late, quick):
        for status in ("accepted", "resolved"):
            await tickets.set_status(ticket_id, status)
    boss = await console_login("boss", "supervisor")

    month = (await boss.get("/stats")).json()["service"][-1]
    assert (month["done"], month["done_late"], month["on_time_rate"]) == (2, 1, 0.5)
    rows = {d["department"]: d for d in (await boss.get("/departments", params={"days": 90})).json()["departments"]}
    assert (rows[city]["done"], rows[city]["done_late"], rows[city]["on_time_rate"]) == (2, 1, 0.5)
    assert (rows["洞井街道办事处"]["done_late"], rows["洞井街道办事处"]["on_time_rate"]) == (0, 1.0)
    found = await boss.get("/tickets", params={"done_late": "true", "department": city, "days": 90})
    assert [t["ticket_id"] for t in found.json()["tickets"]] == [late]
    assert found.json()["tickets"][0]["done_late"] is True
    detail = (await boss.get(f"/tickets/{quick}")).json()["ticket"]
    assert detail["done_late"] is False and detail["done_at"] >= detail["created_at"]

    exported = (await boss.get("/tickets.csv", params={"done_late": "true"})).text.lstrip("\ufeff").splitlines()
    header = exported[0].split(",")
    assert len(exported) == 2 and exported[1].startswith(late + ",")
    line = exported[1].split(",")
    finished = datetime.now(UTC).astimezone(BEIJING).strftime("%Y-%m-%d")  # Beijing time, as the other columns
    assert line[header.index("超期办结")] == "是" and line[header.index("办结时间")].startswith(finished)
    entries = (await boss.get("/audit?limit=20")).json()["entries"]
    assert [e["detail"]["done_late"] for e in entries if e["action"] == "ticket.export"] == [True]
    page = (await boss.get("/report", params={"days": 30})).text
    assert '按期办结率 <b id="on-time">50.0%</b>（超期办结 1 件）' in page

    await tickets.set_status(late, "reopened", "市民反映仍未修好")  # open again: no longer counted
    assert (await boss.get("/stats")).json()["service"][-1]["done_late"] == 0
    assert (await boss.get("/tickets", params={"done_late": "true"})).json()["tickets"] == []


NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)  # Sunday 12:00 in Beijing, in week 48 of 2026


def beijing(*day: int) -> datetime:
    return datetime(*day, tzinfo=BEIJING)


def test_a_calendar_week_or_month_runs_from_its_first_beijing_midnight_to_the_next() -> None:
    """上周 / 上月 as a centre reports them: Monday to Sunday, the 1st to the month's end, in
    Beijing days, against the week or month before; one not over yet runs to now."""
    from gateway.console.report import period

    week = period(NOW, week="2026-W47")
    assert (week.name, week.label, week.ended) == ("周报", "2026年第47周", True)
    assert (week.since, week.until, week.before) == (beijing(2026, 11, 16), beijing(2026, 11, 23), beijing(2026, 11, 9))
    assert week.last_day.date() == datetime(2026, 11, 22).date()
    this_week = period(NOW, week="2026-W48")
    assert (this_week.since, this_week.until, this_week.ended) == (beijing(2026, 11, 23), NOW, False)
    october = period(NOW, month="2026-10")
    assert (october.name, october.label) == ("月报", "2026年10月")
    assert (october.since, october.until, october.before) == (beijing(2026, 10, 1), beijing(2026, 11, 1), beijing(2026, 9, 1))
    january = period(NOW, month="2026-1")
    assert (january.before, january.until) == (beijing(2025, 12, 1), beijing(2026, 2, 1))
    december = period(datetime(2026, 12, 31, 17, 0, tzinfo=UTC), month="2026-12")  # 01:00 on New Year's Day
    assert (december.until, december.ended) == (beijing(2027, 1, 1), True)
    rolling = period(NOW, days=30)
    assert (rolling.name, rolling.label, rolling.since, rolling.until) == ("月报", "近30天", beijing(2026, 10, 31), NOW)
    assert period(NOW).label == "近7天"


@pytest.mark.parametrize(("asked", "said"), [
    ({"month": "2026-13"}, "某一自然月（month=2026-11）"),
    ({"month": "11/2026"}, "某一自然月"),
    ({"week": "2026-W54"}, "某一自然周（week=2026-W47）"),
    ({"week": "2026-47"}, "某一自然周"),
    ({"days": 14}, "近7天、近30天"),
    ({"month": "2026-12"}, "2026年12月尚未开始"),
    ({"week": "2026-W49"}, "2026年第49周尚未开始"),
    ({"week": "2026-W47", "month": "2026-11"}, "只能选择一个报告期间"),
])
def test_a_period_not_offered_or_not_begun_is_refused_saying_why(asked: dict[str, Any], said: str) -> None:
    from gateway.console.report import period
    from gateway.errors import BadInput

    with pytest.raises(BadInput, match=said):
        period(NOW, **asked)


async def test_a_months_report_counts_what_happened_in_that_month(
    app: Any, console_login: Any, settings: Settings
) -> None:
    """月报 of the month gone by (the 1st's report): what was filed, finished and rated in it,
    against the month before; what came after it is not counted, whatever the ticket is now."""
    from ticket_client import LocalLedger

    now = datetime.now(UTC)
    this = now.astimezone(BEIJING).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this - timedelta(days=1)).replace(day=1)
    city = "城市管理和综合执法局"
    moments = {"before": last - timedelta(days=20), "in": last + timedelta(days=9), "after": this + timedelta(minutes=1)}
    if moments["after"] > now:  # the first minute of a month: nothing can be filed this month yet
        moments["after"] = now
    filed = {}
    for key, at in moments.items():
        async with LocalLedger(settings.effective_database_url, clock=lambda at=at: at) as ledger:
            filed[key] = (await ledger.file(draft(key, [city]), f"m-{key}")).ticket_id
    async with LocalLedger(settings.effective_database_url, clock=lambda: moments["in"] + timedelta(days=1)) as ledger:
        for status in ("accepted", "resolved"):
            await ledger.set_status(filed["in"], status)  # finished within the month, in time
        await ledger.rate(filed["in"], "满意")
    for status in ("accepted", "resolved"):  # finished now: next month's 办结
        await app.state.runtime.tickets.set_status(filed["before"], status)
    boss = await console_login("boss", "supervisor")

    month = f"{last.year}-{last.month:02d}"
    r = await boss.get("/report", params={"month": month})
    assert r.status_code == 200, r.text
    page = r.text
    assert f"12345政务服务便民热线月报（{last.year}年{last.month}月）" in page
    assert f"统计期间：{last.year}年{last.month}月1日至" in page and "，截至" not in page.split("</header>")[0]
    assert '<b id="filed">1</b> 件，较上一期（1 件）<span id="filed-change">持平</span>；办结 <b>1</b> 件' in page
    assert '按期办结率 <b id="on-time">100.0%</b>（超期办结 0 件）' in page  # not the late one finished now
    assert '满意率 <b id="satisfaction">100.0%</b>' in page
    assert '与上期相比，<span id="versus">办结增加1件</span>。' in page  # none the month before
    assert f"<td>{city}</td><td class=\"n\">1</td>" in page  # 考核: the month's one ticket
    entries = (await boss.get("/audit?limit=20")).json()["entries"]
    assert [e["detail"] for e in entries if e["action"] == "report.view"] == [{"month": month}]
    refused = await boss.get("/report", params={"month": "2026-13"})
    assert refused.status_code == 400 and "month=2026-11" in refused.json()["detail"]


def test_the_figures_are_told_against_the_period_before() -> None:
    """环比 of 办结 and the rates (in percentage points), as a report writes them; a rate either
    period has no figure for is left out."""
    from gateway.console.report import Report, period
    from ticket_client.base import Summary

    def summary(resolved: int, late: int, ratings: dict[str, int]) -> Summary:
        return Summary(since=NOW, resolved=resolved, done=resolved, done_late=late, ratings=ratings)

    report = Report(period=period(NOW), now=NOW, summary=summary(9, 1, {"满意": 3, "不满意": 1}),
                    overdue=0, due_soon=0, previous=summary(8, 2, {}))
    assert report.versus() == "办结上升12.5%，按期办结率上升13.9个百分点"  # 88.9% against 75%; no 满意率 before
    report.previous = summary(9, 1, {"满意": 1, "基本满意": 1, "不满意": 2})
    assert report.versus() == "办结持平，按期办结率持平，满意率上升25.0个百分点"
    report.previous = None
    assert report.versus() == ""


async def test_what_no_department_took_on_in_time_is_counted_found_and_exported(
    app: Any, console_login: Any, settings: Settings
) -> None:
    """响应 (签收, HOTLINE_RESPOND_HOURS: 24 h): the 超时未签收 card and filter, the ticket's flags,
    each unit's 响应率 = in time / (taken on + 超时未签收), the CSV files and the 月报."""
    from ticket_client import LocalLedger

    tickets = app.state.runtime.tickets
    city = "城市管理和综合执法局"
    then = datetime.now(UTC) - timedelta(days=3)
    async with LocalLedger(settings.effective_database_url, clock=lambda: then) as old:
        waiting = (await old.file(draft("w", [city]), "r-w")).ticket_id
        slow = (await old.file(draft("s", [city]), "r-s")).ticket_id
    quick = (await tickets.file(draft("q", [city]), "r-q")).ticket_id
    fresh = (await tickets.file(draft("f", [city]), "r-f")).ticket_id  # not yet due to be taken on
    for ticket_id in (slow, quick):
        await tickets.set_status(ticket_id, "accepted")
    boss = await console_login("boss", "supervisor")

    stats = (await boss.get("/stats")).json()
    assert (stats["unanswered"], stats["respond_limits"]) == (1, True)
    found = (await boss.get("/tickets", params={"unanswered": "true"})).json()["tickets"]
    assert [t["ticket_id"] for t in found] == [waiting] and found[0]["unanswered"] is True
    detail = (await boss.get(f"/tickets/{slow}")).json()["ticket"]
    assert detail["responded_late"] is True and detail["unanswered"] is False and detail["responded_at"]
    assert (await boss.get(f"/tickets/{fresh}")).json()["ticket"]["unanswered"] is False
    [unit] = (await boss.get("/departments", params={"days": 7})).json()["departments"]
    assert (unit["responded"], unit["responded_late"], unit["unanswered"]) == (2, 1, 1)
    assert unit["respond_rate"] == 1 / 3
    lines = (await boss.get("/departments.csv", params={"days": 7})).text.lstrip("\ufeff").splitlines()
    header, row = lines[0].split(","), lines[1].split(",")
    assert [row[header.index(c)] for c in ("已签收", "超时签收", "超时未签收", "响应率")] == ["2", "1", "1", "33.3%"]
    exported = (await boss.get("/tickets.csv", params={"unanswered": "true"})).text.lstrip("\ufeff").splitlines()
    assert len(exported) == 2 and exported[1].startswith(waiting + ",")
    assert exported[1].split(",")[exported[0].split(",").index("签收时间")] == ""  # never taken on
    page = (await boss.get("/report", params={"days": 7})).text
    assert "<th>响应率</th>" in page and '<td class="n up">33.3%</td>' in page
    assert "<th>综合得分</th>" in page and '<td class="n score">—</td>' in page  # nobody rated yet
    assert "综合得分为响应率10%、解决率45%、满意率45%的加权（百分制，缺少其中任一项或期间受理（不含撤单）少于5件的单位不计分）" in page
