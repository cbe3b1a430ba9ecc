"""办理时限: when a ticket is due, whether it is 超期 or 即将超期, and which filing moments are.

A ticket is due ``HOTLINE_RESOLVE_DAYS`` after it was filed: working days by default (24:00
Beijing time of the Nth working day after the day of filing, ``config.workdays``), calendar days
with ``HOTLINE_RESOLVE_WORKDAYS=false``; an urgent one ``HOTLINE_RESOLVE_URGENT_HOURS`` clock hours
after. It is 超期 when still open once that moment has passed, 即将超期 when still open and due
within ``HOTLINE_DUE_SOON_HOURS``.

The ledger filters by filing time, so the 班长视图 cards and 工单查询 use the inverse of ``due_at``
(``filed_before``) at the same ``now`` as the flags of each row and of the CSV export: the count
on a card and the rows it opens can then never disagree, holiday or not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from config import workdays
from ticket_client.base import Ticket

if TYPE_CHECKING:
    from config.settings import Settings

DONE = ("resolved", "closed")  # the ledger's 超期 filter leaves the same statuses out


def deadline(filed: datetime, urgent: bool, settings: Settings) -> datetime | None:
    """When a ticket filed at ``filed`` is due (None: that kind has no limit)."""
    if urgent:
        hours = settings.resolve_urgent_hours
        return filed + timedelta(hours=hours) if hours else None
    if not settings.resolve_days:
        return None
    if settings.resolve_workdays:
        return workdays.calendar(settings.holidays_file).deadline(filed, int(settings.resolve_days))
    return filed + timedelta(days=settings.resolve_days)


def filed_before(at: datetime, urgent: bool, settings: Settings) -> datetime | None:
    """The earliest filing moment whose deadline is not before ``at``: every ticket filed earlier
    is due before ``at``, every one filed since is due at or after it (None: no limit)."""
    if urgent:
        hours = settings.resolve_urgent_hours
        return at - timedelta(hours=hours) if hours else None
    if not settings.resolve_days:
        return None
    if settings.resolve_workdays:
        return workdays.calendar(settings.holidays_file).earliest_start(at, int(settings.resolve_days))
    return at - timedelta(days=settings.resolve_days)


def due_at(t: Ticket, settings: Settings) -> datetime | None:
    """办理时限 of one ticket."""
    return deadline(t.created_at, t.urgent, settings)


def overdue(t: Ticket, due: datetime | None, now: datetime) -> bool:
    """超期: still open past its 办理时限."""
    return due is not None and t.status not in DONE and now > due


def due_soon(t: Ticket, due: datetime | None, now: datetime, settings: Settings) -> bool:
    """即将超期: still open, not yet late, and due within HOTLINE_DUE_SOON_HOURS."""
    hours = settings.due_soon_hours
    return (due is not None and bool(hours) and t.status not in DONE
            and now <= due < now + timedelta(hours=hours))


def late_filter(settings: Settings, now: datetime, *, overdue: bool, due_soon: bool) -> dict[str, Any]:
    """The TicketQuery fields that find the tickets 超期 and/or 即将超期 at ``now``."""
    if not (overdue or due_soon):
        return {}
    soon = now + timedelta(hours=settings.due_soon_hours) if settings.due_soon_hours else None
    return {
        "overdue": overdue,
        "due_soon": due_soon,
        "due_before": filed_before(now, False, settings),
        "urgent_due_before": filed_before(now, True, settings),
        "soon_before": filed_before(soon, False, settings) if soon else None,
        "urgent_soon_before": filed_before(soon, True, settings) if soon else None,
    }
