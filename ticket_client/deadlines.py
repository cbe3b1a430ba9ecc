"""办理时限: when a ticket is due, whether it is 超期 or 即将超期, and which filing moments are.

A ticket is due ``HOTLINE_RESOLVE_DAYS`` after it was filed, or the days its request type has in
``HOTLINE_RESOLVE_DAYS_BY_TYPE`` (咨询 sooner than 投诉; 0: that type has no limit): working days
by default (24:00 Beijing time of the Nth working day after the day of filing, ``config.workdays``),
calendar days with ``HOTLINE_RESOLVE_WORKDAYS=false``; an urgent one, whatever its type,
``HOTLINE_RESOLVE_URGENT_HOURS`` clock hours after. With ``HOTLINE_RESOLVE_RESTART_ON_REDISPATCH``
a ticket sent out again after its department returned it (改派) counts from that 派单 instead. It is 超期 when still open once that moment has
passed, 即将超期 when still open and due within ``HOTLINE_DUE_SOON_HOURS``.

The ledger filters by filing time, so the 班长视图 cards and 工单查询 use the inverse of ``due_at``
(``filed_before``), one ``TimeLimit`` per distinct limit, at the same ``now`` as the flags of each
row and of the CSV export: the count on a card and the rows it opens can then never disagree,
holiday or not.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from config import workdays
from ticket_client.base import Ticket, TicketDraft, TimeLimit

if TYPE_CHECKING:
    from config.settings import Settings

DONE = ("resolved", "closed")  # the ledger's 超期 filter leaves the same statuses out
# how far ahead the 班长视图 looks for a year whose 放假安排 is not known yet: a ticket filed today is
# due within about a month (15 working days, the Spring Festival between), and the State Council
# announces the next year's in November
HOLIDAYS_AHEAD = timedelta(days=60)


def resolve_days(request_type: str, settings: Settings) -> float:
    """The 办理时限 of a non-urgent ticket of this type, in days (0: none)."""
    return settings.resolve_days_by_type.get(request_type, settings.resolve_days)


def deadline(filed: datetime, urgent: bool, settings: Settings, request_type: str = "") -> datetime | None:
    """When a ticket filed at ``filed`` is due (None: that kind has no limit)."""
    if urgent:
        hours = settings.resolve_urgent_hours
        return filed + timedelta(hours=hours) if hours else None
    days = resolve_days(request_type, settings)
    if not days:
        return None
    if settings.resolve_workdays:
        return workdays.calendar(settings.holidays_file).deadline(filed, int(days))
    return filed + timedelta(days=days)


def filed_before(at: datetime, urgent: bool, settings: Settings, request_type: str = "") -> datetime | None:
    """The earliest filing moment whose deadline is not before ``at``: every ticket of that kind
    filed earlier is due before ``at``, every one filed since is due at or after it (None: no limit)."""
    if urgent:
        hours = settings.resolve_urgent_hours
        return at - timedelta(hours=hours) if hours else None
    days = resolve_days(request_type, settings)
    if not days:
        return None
    if settings.resolve_workdays:
        return workdays.calendar(settings.holidays_file).earliest_start(at, int(days))
    return at - timedelta(days=days)


def clock_start(t: Ticket, settings: Settings) -> datetime:
    """When a ticket's 办理时限 started: its filing, or its last 改派 with
    HOTLINE_RESOLVE_RESTART_ON_REDISPATCH."""
    again = t.redispatched_at if settings.resolve_restart_on_redispatch else None
    return again or t.created_at


def due_at(t: Ticket, settings: Settings) -> datetime | None:
    """办理时限 of one ticket: the one a 延期 granted, or the one counted from its clock start."""
    if t.extended_until is not None:
        return t.extended_until
    return deadline(clock_start(t, settings), t.urgent, settings, t.request_type)


def respond_by(t: Ticket, settings: Settings) -> datetime | None:
    """When a department must have taken the ticket on (签收), counted from its filing in clock
    hours (None: that kind has no limit)."""
    hours = settings.respond_urgent_hours if t.urgent else settings.respond_hours
    return t.created_at + timedelta(hours=hours) if hours else None


def unanswered(t: Ticket, settings: Settings, now: datetime) -> bool:
    """超时未签收: never taken on by a department (已受理登记 or 已退回), past its time to (a ticket
    merged into another is counted by its main)."""
    by = respond_by(t, settings)
    return (by is not None and t.responded_at is None and t.status in ("received", "returned")
            and t.merged_into is None and now > by)


def unanswered_filter(settings: Settings, now: datetime) -> dict[str, Any]:
    """The TicketQuery fields that find the tickets 超时未签收 at ``now`` (filed before the moment
    their kind's limit has run from), and with which 承办单位考核 counts them."""
    def before(hours: float) -> datetime | None:
        return now - timedelta(hours=hours) if hours else None

    return {"unanswered_before": before(settings.respond_hours),
            "unanswered_urgent_before": before(settings.respond_urgent_hours)}


def end_of(day: date) -> datetime:
    """The 办理时限 that ends with ``day`` (24:00 Beijing time), as a 延期 grants it: told as the day."""
    return workdays.midnight(day + timedelta(days=1))


def said(due: datetime) -> str:
    """A 办理时限 as a citizen reads it, in Beijing time: the day, when it falls at the end of one
    (a limit in working days is due at 24:00: "2026年12月18日"), else the day and the time."""
    local = due.astimezone(workdays.BEIJING)
    if (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0):
        day = local - timedelta(days=1)
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def promised(draft: TicketDraft, settings: Settings, filed: datetime) -> str:
    """The 办理时限 of a ticket filed now from ``draft``, as the receipt tells it ("": none)."""
    due = deadline(filed, draft.urgent, settings, draft.request_type)
    return said(due) if due is not None else ""


def overdue(t: Ticket, due: datetime | None, now: datetime) -> bool:
    """超期: still open past its 办理时限 (a ticket merged into another is counted by its main)."""
    return due is not None and t.status not in DONE and t.merged_into is None and now > due


def due_soon(t: Ticket, due: datetime | None, now: datetime, settings: Settings) -> bool:
    """即将超期: still open, not yet late, and due within HOTLINE_DUE_SOON_HOURS."""
    hours = settings.due_soon_hours
    return (due is not None and bool(hours) and t.status not in DONE and t.merged_into is None
            and now <= due < now + timedelta(hours=hours))


def holidays_missing(settings: Settings, now: datetime) -> list[int]:
    """The years within ``HOLIDAYS_AHEAD`` of ``now`` whose holidays the calendar does not know
    (working days only: calendar days need none). Their 办理时限 count weekends alone."""
    if not settings.resolve_workdays:
        return []
    today = now.astimezone(workdays.BEIJING).date()
    return workdays.calendar(settings.holidays_file).unknown_years(today, HOLIDAYS_AHEAD.days)


def late_filter(settings: Settings, now: datetime, *, overdue: bool, due_soon: bool) -> dict[str, Any]:
    """The TicketQuery fields that find the tickets 超期 and/or 即将超期 at ``now``: one TimeLimit
    for the urgent tickets, one per number of days the types of HOTLINE_RESOLVE_DAYS_BY_TYPE set
    apart, one for every other type (HOTLINE_RESOLVE_DAYS); a kind without a limit has none."""
    if not (overdue or due_soon):
        return {}
    soon = now + timedelta(hours=settings.due_soon_hours) if settings.due_soon_hours else None
    apart: dict[float, list[str]] = {}  # days → the types that differ from HOTLINE_RESOLVE_DAYS
    for kind, days in settings.resolve_days_by_type.items():
        if days != settings.resolve_days:
            apart.setdefault(days, []).append(kind)
    kinds: list[tuple[bool, tuple[str, ...], bool]] = [  # (urgent, request types, others)
        (True, (), True),
        (False, tuple(sorted(t for types in apart.values() for t in types)), True),
        *((False, tuple(sorted(types)), False) for types in apart.values()),
    ]
    limits = []
    for urgent, types, others in kinds:
        example = "" if others else types[0]  # a type of that limit (none set apart: the default)
        due = filed_before(now, urgent, settings, example)
        if due is None:
            continue
        limits.append(TimeLimit(urgent=urgent, request_types=types, others=others, due_before=due,
                                soon_before=filed_before(soon, urgent, settings, example) if soon else None))
    return {"overdue": overdue, "due_soon": due_soon, "time_limits": limits,
            "from_redispatch": settings.resolve_restart_on_redispatch,
            "extended_due_before": now, "extended_soon_before": soon}  # 延期: the 办理时限 granted
