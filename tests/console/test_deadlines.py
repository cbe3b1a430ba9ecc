"""办理时限 of one ticket, and the filing moments the ledger filters by, at their edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from config.settings import Settings
from config.workdays import BEIJING
from gateway.console import deadlines
from ticket_client.base import Ticket


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def ticket(filed: datetime, urgent: bool = False, status: str = "received") -> Ticket:
    return Ticket(ticket_id="12345-20261003-000001", status=status, channel="web", conversation_key="web:a",
                  urgent=urgent, description="路灯坏了", created_at=filed, updated_at=filed)


def test_urgent_tickets_count_clock_hours_over_a_holiday() -> None:
    filed = datetime(2026, 10, 3, 11, 0, tzinfo=BEIJING)  # National Day
    s = settings()
    assert deadlines.deadline(filed, True, s) == filed + timedelta(hours=24)
    assert deadlines.deadline(filed, False, s) == datetime(2026, 10, 28, tzinfo=BEIJING)
    assert deadlines.deadline(filed, False, settings(resolve_workdays=False, resolve_days=7.5)) == filed + timedelta(
        days=7.5)
    assert deadlines.deadline(filed, False, settings(resolve_days=0)) is None
    assert deadlines.deadline(filed, True, settings(resolve_urgent_hours=0)) is None


def test_a_ticket_due_now_is_not_late_yet_but_due_soon() -> None:
    s = settings()
    t = ticket(datetime(2026, 9, 22, 9, 0, tzinfo=BEIJING))
    due = deadlines.due_at(t, s)
    assert due == datetime(2026, 10, 21, tzinfo=BEIJING)
    assert not deadlines.overdue(t, due, due) and deadlines.due_soon(t, due, due, s)
    later = due + timedelta(microseconds=1)
    assert deadlines.overdue(t, due, later) and not deadlines.due_soon(t, due, later, s)
    early = due - timedelta(hours=24)
    assert not deadlines.due_soon(t, due, early, s) and deadlines.due_soon(t, due, early + timedelta(seconds=1), s)
    done = t.model_copy(update={"status": "resolved"})
    assert not deadlines.overdue(done, due, later) and not deadlines.due_soon(done, due, due, s)
    assert not deadlines.due_soon(t, due, due, settings(due_soon_hours=0))


def test_the_filter_is_the_inverse_of_the_flags() -> None:
    s = settings()
    now = datetime(2026, 10, 20, 10, 0, tzinfo=BEIJING)
    found = deadlines.late_filter(s, now, overdue=True, due_soon=True)
    assert found["due_before"] == datetime(2026, 9, 22, tzinfo=BEIJING)
    assert found["soon_before"] == datetime(2026, 9, 23, tzinfo=BEIJING)
    assert found["urgent_due_before"] == now - timedelta(hours=24) and found["urgent_soon_before"] == now
    for hours in range(0, 24 * 40, 5):
        for urgent in (False, True):
            t = ticket(datetime(2026, 9, 10, tzinfo=UTC) + timedelta(hours=hours), urgent)
            due = deadlines.due_at(t, s)
            before = found["urgent_due_before" if urgent else "due_before"]
            soon = found["urgent_soon_before" if urgent else "soon_before"]
            assert deadlines.overdue(t, due, now) == (t.created_at < before)
            assert deadlines.due_soon(t, due, now, s) == (before <= t.created_at < soon)
    assert deadlines.late_filter(s, now, overdue=False, due_soon=False) == {}
    off = deadlines.late_filter(settings(due_soon_hours=0, resolve_days=0), now, overdue=True, due_soon=True)
    assert off["due_before"] is None and off["soon_before"] is None and off["urgent_soon_before"] is None
