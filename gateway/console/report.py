"""周报 / 月报: the 班长视图's figures of the last 7 or 30 days as one printable page, for the
centre's report to its leadership (受理, 办结, 回访, 热点诉求, 承办单位考核), in the words a 12345
report uses. Rendered with Jinja2 (every value escaped); the page has no script, and prints (or
saves as PDF) from the browser."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from config.settings import Settings
from config.workdays import BEIJING
from gateway.console.export import channel_names
from gateway.errors import BadInput
from ticket_client import deadlines
from ticket_client.base import CategoryTrend, DepartmentTally, Hotspot, Summary, TicketClient, TicketQuery

REPORT_DAYS = {7: "周报", 30: "月报"}  # the periods offered, and what the centre calls each report
UNITS_SHOWN = 30  # 承办单位考核: the busiest units (the whole table is the console's CSV)
ROWS_SHOWN = 10  # 热点诉求: kinds and spots
# what a citizen's channel is called in a report (portal sources by their own names: channel_names)
CHANNELS = {"web": "网站在线咨询", "wechat_oa": "微信公众号", "wechat_mp": "微信小程序", "email": "市长信箱（电子邮件）",
            "telegram": "Telegram"}
TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class Report:
    """What the page shows; the figures as the ledger counted them at ``now``."""

    days: int
    since: datetime  # Beijing midnight ``days - 1`` days before today
    now: datetime
    summary: Summary
    before: int  # tickets filed in the period of the same length just before (受理 环比)
    overdue: int  # open and past their 办理时限 now
    due_soon: int
    kinds: list[CategoryTrend] = field(default_factory=list)
    spots: list[Hotspot] = field(default_factory=list)
    units: list[DepartmentTally] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return REPORT_DAYS[self.days]

    @property
    def filed(self) -> int:
        return sum(self.summary.filed.values())

    @property
    def change(self) -> float | None:
        """受理 环比: (filed - before) / before; None when nothing came the period before."""
        return (self.filed - self.before) / self.before if self.before else None

    def channel(self, key: str) -> str:
        return self.channels.get(key) or CHANNELS.get(key) or key


async def gather(tickets: TicketClient, settings: Settings, now: datetime, days: int) -> Report:
    """The period's figures, read as the 班长视图 reads them (one pass each)."""
    today = now.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    since = today - timedelta(days=days - 1)
    late = deadlines.late_filter(settings, now, overdue=True, due_soon=False)
    soon = deadlines.late_filter(settings, now, overdue=False, due_soon=True)
    return Report(
        days=days, since=since, now=now,
        summary=await tickets.summary(since),
        before=await tickets.count(TicketQuery(since=since - (now - since), until=since)),
        overdue=await tickets.count(TicketQuery(**late)),
        due_soon=await tickets.count(TicketQuery(**soon)) if settings.due_soon_hours else 0,
        kinds=await tickets.category_trends(since, now, limit=ROWS_SHOWN),
        spots=await tickets.hotspots(since, limit=ROWS_SHOWN),
        units=await tickets.department_tallies(TicketQuery(since=since, **late), UNITS_SHOWN),  # 超期 by the limits
        channels=channel_names(settings),
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


def _day(at: datetime) -> str:
    local = at.astimezone(BEIJING)
    return f"{local.year}年{local.month}月{local.day}日"


def _moment(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(percent=_percent, change=_change, day=_day, moment=_moment)
    return env


def render(report: Report) -> str:
    """The report as an HTML page (every value escaped)."""
    return _environment().get_template("report.html").render(r=report, shown=UNITS_SHOWN)


async def page(tickets: TicketClient, settings: Settings, now: datetime, days: int) -> str:
    """The page of the last ``days`` (the console's and the admin API's); BadInput for a period
    that is not offered."""
    if days not in REPORT_DAYS:
        raise BadInput(f"报告期间只能是{'、'.join(f'近{d}天' for d in REPORT_DAYS)}")
    return render(await gather(tickets, settings, now, days))
