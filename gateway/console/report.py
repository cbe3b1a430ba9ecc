"""周报 / 月报: the 班长视图's figures of the last 7 or 30 days, or of a calendar week or month (the
week or month gone by: what a centre reports each Monday and each 1st), as one printable page, for
the centre's report to its leadership (受理, 办结, 回访, 热点诉求, 承办单位考核), in the words a 12345
report uses. Rendered with Jinja2 (every value escaped); the page has no script, and prints (or
saves as PDF) from the browser."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from config.settings import Settings
from config.workdays import BEIJING
from gateway.console.export import channel_names
from gateway.errors import BadInput
from ticket_client import deadlines
from ticket_client.base import CategoryTrend, DepartmentTally, Hotspot, Summary, TicketClient, TicketQuery

REPORT_DAYS = {7: "周报", 30: "月报"}  # the rolling periods offered, and what the centre calls each report
UNITS_SHOWN = 30  # 承办单位考核: the busiest units (the whole table is the console's CSV)
ROWS_SHOWN = 10  # 热点诉求: kinds and spots
# what a citizen's channel is called in a report (portal sources by their own names: channel_names)
CHANNELS = {"web": "网站在线咨询", "wechat_oa": "微信公众号", "wechat_mp": "微信小程序", "email": "市长信箱（电子邮件）",
            "telegram": "Telegram"}
TEMPLATES = Path(__file__).resolve().parent / "templates"
WEEK = re.compile(r"(\d{4})-W(\d{1,2})")  # an ISO week, as a browser's <input type="week"> gives it
MONTH = re.compile(r"(\d{4})-(\d{1,2})")  # as <input type="month"> gives it
PERIODS = "报告期间只能是近7天、近30天，或某一自然周（week=2026-W47）、某一自然月（month=2026-11）"


@dataclass(frozen=True)
class Period:
    """What a report covers: [since, until) in Beijing days, ``until`` now for a period not over
    yet; its 环比 is against [before, since) (the week, the calendar month, or as many days before)."""

    name: str  # 周报 / 月报
    label: str  # 近7天 / 2026年第47周 / 2026年11月
    since: datetime
    until: datetime
    before: datetime
    ended: bool  # the whole period is past (a calendar week or month gone by)
    rolling: bool = False  # the last days to now (近7天 / 近30天), not a calendar week or month

    @property
    def last_day(self) -> datetime:
        """The period's last moment, for its last day's date."""
        return self.until - timedelta(microseconds=1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), BEIJING)


def _month_start(year: int, month: int) -> date:
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def period(now: datetime, days: int | None = None, week: str = "", month: str = "") -> Period:
    """The period asked for: the last ``days`` (7 or 30) to now, a calendar ``week`` (2026-W47,
    Monday to Sunday) or ``month`` (2026-11); BadInput for anything else, or one not begun."""
    asked = [x for x in (days is not None, bool(week), bool(month)) if x]
    if len(asked) > 1:
        raise BadInput("只能选择一个报告期间（近几天、某一周或某一月）")
    today = now.astimezone(BEIJING).date()
    if week or month:
        found = (WEEK if week else MONTH).fullmatch((week or month).strip())
        try:
            if found is None:
                raise ValueError
            year, n = int(found[1]), int(found[2])
            if week:
                first = date.fromisocalendar(year, n, 1)
                end, previous = first + timedelta(days=7), first - timedelta(days=7)
                label = f"{year}年第{n}周"
            else:
                first, end, previous = (_month_start(year, n), _month_start(year, n + 1), _month_start(year, n - 1))
                if not 1 <= n <= 12:
                    raise ValueError
                label = f"{year}年{n}月"
        except ValueError:
            raise BadInput(PERIODS) from None
        if first > today:
            raise BadInput(f"{label}尚未开始，没有可统计的数据")
        since, ends = _midnight(first), _midnight(end)
        return Period(name="周报" if week else "月报", label=label, since=since, until=min(ends, now),
                      before=_midnight(previous), ended=ends <= now)
    n = days if days is not None else 7
    if n not in REPORT_DAYS:
        raise BadInput(PERIODS)
    since = _midnight(today - timedelta(days=n - 1))
    return Period(name=REPORT_DAYS[n], label=f"近{n}天", since=since, until=now, before=since - (now - since),
                  ended=False, rolling=True)


@dataclass
class Report:
    """What the page shows; the figures as the ledger counted them at ``now``."""

    period: Period
    now: datetime
    summary: Summary
    overdue: int  # open and past their 办理时限 now
    due_soon: int
    previous: Summary | None = None  # the period just before, for 环比
    kinds: list[CategoryTrend] = field(default_factory=list)
    spots: list[Hotspot] = field(default_factory=list)
    units: list[DepartmentTally] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)  # 综合得分 (HOTLINE_SCORE_WEIGHTS)
    least: int = 0  # HOTLINE_SCORE_MIN_TICKETS: a unit given fewer is not scored

    @property
    def name(self) -> str:
        return self.period.name

    @property
    def filed(self) -> int:
        return sum(self.summary.filed.values())

    @property
    def before(self) -> int:
        """Tickets filed in the period just before (受理 环比)."""
        return sum(self.previous.filed.values()) if self.previous is not None else 0

    @property
    def change(self) -> float | None:
        """受理 环比: (filed - before) / before; None when nothing came the period before."""
        return (self.filed - self.before) / self.before if self.before else None

    def channel(self, key: str) -> str:
        return self.channels.get(key) or CHANNELS.get(key) or key

    def weighed(self) -> str:
        """综合得分's weights as the footnote says them: 响应率10%、解决率45%、满意率45%."""
        total = sum(w for w in self.weights.values() if w > 0)
        return "、".join(f"{name}{w / total * 100:g}%" for name, w in self.weights.items() if w > 0) if total else ""

    def versus(self) -> str:
        """办结 and the rates against the period before, as a report says it (办结上升12.5%，满意率
        上升1.2个百分点); a rate either period has no figure for is left out ("" for none at all)."""
        if self.previous is None:
            return ""
        now, then = self.summary, self.previous
        said = [f"办结{_change((now.resolved - then.resolved) / then.resolved)}" if then.resolved
                else f"办结增加{now.resolved}件"]
        for name, rate in (("按期办结率", "on_time_rate"), ("满意率", "satisfaction"), ("解决率", "solved_rate")):
            a, b = getattr(now, rate), getattr(then, rate)
            if a is not None and b is not None:
                said.append(name + _points(a - b))
        return "，".join(said)


async def gather(tickets: TicketClient, settings: Settings, now: datetime, when: Period) -> Report:
    """The period's figures, read as the 班长视图 reads them (one pass each); 超期 and 即将超期 now."""
    since, until = when.since, when.until
    late = deadlines.late_filter(settings, now, overdue=True, due_soon=False)
    soon = deadlines.late_filter(settings, now, overdue=False, due_soon=True)
    return Report(
        period=when, now=now,
        summary=await tickets.summary(since, until),
        previous=await tickets.summary(when.before, since),
        overdue=await tickets.count(TicketQuery(**late)),
        due_soon=await tickets.count(TicketQuery(**soon)) if settings.due_soon_hours else 0,
        kinds=await tickets.category_trends(since, until, limit=ROWS_SHOWN, before=when.before),
        spots=await tickets.hotspots(since, limit=ROWS_SHOWN, until=until),
        units=await tickets.department_tallies(
            TicketQuery(since=since, until=until, **late, **deadlines.unanswered_filter(settings, now)), UNITS_SHOWN),
        channels=channel_names(settings),
        weights=settings.score_weights,
        least=settings.score_min_tickets,
    )


def _percent(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _change(x: float | None) -> str:
    """环比 as a 12345 report writes it: 上升12.5% / 下降3.0% / 持平; 新增 with nothing before."""
    if x is None:
        return "新增"
    if abs(x) < 0.0005:
        return "持平"
    return f"{'上升' if x > 0 else '下降'}{abs(x) * 100:.1f}%"


def _score(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def _points(x: float) -> str:
    """A rate's change in percentage points: 上升1.2个百分点 / 下降0.5个百分点 / 持平."""
    if abs(x) < 0.0005:
        return "持平"
    return f"{'上升' if x > 0 else '下降'}{abs(x) * 100:.1f}个百分点"


def _day(at: datetime) -> str:
    local = at.astimezone(BEIJING)
    return f"{local.year}年{local.month}月{local.day}日"


def _moment(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(percent=_percent, change=_change, day=_day, moment=_moment, score=_score)
    return env


def render(report: Report) -> str:
    """The report as an HTML page (every value escaped)."""
    return _environment().get_template("report.html").render(r=report, shown=UNITS_SHOWN)


async def page(tickets: TicketClient, settings: Settings, now: datetime, days: int | None = None,
               week: str = "", month: str = "") -> str:
    """The page of the period asked for (the console's and the admin API's; see ``period``)."""
    return render(await gather(tickets, settings, now, period(now, days, week, month)))
