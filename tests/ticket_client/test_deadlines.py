"""办理时限 of one ticket, and the filing moments the ledger filters by, at their edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from config.settings import Settings
from config.workdays import BEIJING
from ticket_client import deadlines
from ticket_client.base import Revision, Ticket, TimeLimit


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def ticket(filed: datetime, urgent: bool = False, status: str = "", request_type: str = "") -> Ticket:
    return Ticket(ticket_id="12345-20261003-000001", status=status or "received", channel="web",
                  conversation_key="web:a", urgent=urgent, request_type=request_type, description="路灯坏了",
                  created_at=filed, updated_at=filed)


def limit_of(t: Ticket, limits: list[TimeLimit]) -> TimeLimit | None:
    """The one TimeLimit of ``limits`` the ledger would hold ``t`` to (None: no limit)."""
    found = [x for x in limits if x.urgent == t.urgent and (t.request_type in x.request_types) != x.others]
    assert len(found) <= 1, found
    return found[0] if found else None


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
    assert (found["overdue"], found["due_soon"]) == (True, True)
    urgent, other = found["time_limits"]
    assert (urgent.urgent, urgent.request_types, urgent.others) == (True, (), True)
    assert (other.urgent, other.request_types, other.others) == (False, (), True)  # every type
    assert other.due_before == datetime(2026, 9, 22, tzinfo=BEIJING)
    assert other.soon_before == datetime(2026, 9, 23, tzinfo=BEIJING)
    assert urgent.due_before == now - timedelta(hours=24) and urgent.soon_before == now
    for hours in range(0, 24 * 40, 5):
        for is_urgent in (False, True):
            t = ticket(datetime(2026, 9, 10, tzinfo=UTC) + timedelta(hours=hours), is_urgent)
            due = deadlines.due_at(t, s)
            rule = urgent if is_urgent else other
            assert deadlines.overdue(t, due, now) == (t.created_at < rule.due_before)
            assert rule.soon_before and deadlines.due_soon(t, due, now, s) == (
                rule.due_before <= t.created_at < rule.soon_before)
    assert deadlines.late_filter(s, now, overdue=False, due_soon=False) == {}
    off = deadlines.late_filter(settings(due_soon_hours=0, resolve_days=0), now, overdue=True, due_soon=True)
    assert [(x.urgent, x.soon_before) for x in off["time_limits"]] == [(True, None)]  # no limit: no rule


def test_a_redispatch_restarts_the_time_limit_only_when_the_centre_says_so() -> None:
    """改派 after a 退回: with HOTLINE_RESOLVE_RESTART_ON_REDISPATCH the new department has its
    whole time from the last 派单; a correction that sent nothing out, and the default, change nothing."""
    filed = datetime(2026, 9, 22, 9, 0, tzinfo=BEIJING)
    again = datetime(2026, 10, 12, 15, 0, tzinfo=BEIJING)
    t = ticket(filed).model_copy(update={"status": "accepted", "revisions": [
        Revision(at=filed + timedelta(days=2), by="op1", after={"departments": ["城管局"]}),  # not sent out
        Revision(at=filed + timedelta(days=5), by="op1", after={"departments": ["水务局"]}, dispatched=True),
        Revision(at=again, by="op2", after={"departments": ["供电公司"]}, dispatched=True),
        Revision(at=again + timedelta(days=1), by="qa"),  # 审核无误
    ]})
    assert t.redispatched_at == again and ticket(filed).redispatched_at is None
    assert deadlines.due_at(t, settings()) == datetime(2026, 10, 21, tzinfo=BEIJING)  # from the filing
    restart = settings(resolve_restart_on_redispatch=True)
    assert deadlines.clock_start(t, restart) == again
    assert deadlines.due_at(t, restart) == datetime(2026, 11, 3, tzinfo=BEIJING)  # 15 working days on
    assert deadlines.due_at(ticket(filed), restart) == datetime(2026, 10, 21, tzinfo=BEIJING)  # never returned
    assert deadlines.late_filter(restart, again, overdue=True, due_soon=False)["from_redispatch"] is True
    assert deadlines.late_filter(settings(), again, overdue=True, due_soon=False)["from_redispatch"] is False


def test_each_request_type_has_its_own_limit_and_filter() -> None:
    """咨询=3, 求助=5, 表扬=0, 建议=15 (the default: no rule of its own), 投诉, 举报 and no type 15 working
    days; urgent ones 24 hours whatever the type. For every type, the flags of a ticket and the
    filing moments of the rule the ledger holds it to say the same, over the National Day holiday."""
    s = settings(resolve_days_by_type="咨询=3,求助=5,表扬=0,建议=15")
    filed = datetime(2026, 9, 28, 15, 0, tzinfo=BEIJING)  # Monday before National Day
    assert deadlines.deadline(filed, False, s, "咨询") == datetime(2026, 10, 9, tzinfo=BEIJING)  # 09-29, 09-30, 10-08
    assert deadlines.deadline(filed, False, s, "投诉") == datetime(2026, 10, 24, tzinfo=BEIJING)
    assert deadlines.deadline(filed, False, s, "") == deadlines.deadline(filed, False, s, "投诉")
    assert deadlines.deadline(filed, False, s, "吐槽") == deadlines.deadline(filed, False, s, "投诉")  # not named
    assert deadlines.deadline(filed, False, s, "表扬") is None
    assert deadlines.deadline(filed, True, s, "咨询") == filed + timedelta(hours=24)
    calendar_days = settings(resolve_workdays=False, resolve_days_by_type={"咨询": 1.5})
    assert deadlines.deadline(filed, False, calendar_days, "咨询") == filed + timedelta(days=1.5)

    now = datetime(2026, 10, 9, 10, 0, tzinfo=BEIJING)
    limits = deadlines.late_filter(s, now, overdue=True, due_soon=True)["time_limits"]
    assert {(x.urgent, frozenset(x.request_types), x.others) for x in limits} == {
        (True, frozenset(), True), (False, frozenset({"咨询", "求助", "表扬"}), True),  # 表扬: no rule of its own
        (False, frozenset({"咨询"}), False), (False, frozenset({"求助"}), False)}
    for request_type in ("咨询", "求助", "表扬", "建议", "投诉", "举报", ""):
        for hours in range(0, 24 * 45, 7):
            for is_urgent in (False, True):
                t = ticket(datetime(2026, 8, 25, tzinfo=UTC) + timedelta(hours=hours), is_urgent,
                           request_type=request_type)
                due = deadlines.due_at(t, s)
                rule = limit_of(t, limits)
                if rule is None:
                    assert due is None and request_type == "表扬" and not is_urgent
                    continue
                assert rule.soon_before is not None
                late = deadlines.overdue(t, due, now)
                assert late == (t.created_at < rule.due_before), (request_type, t.created_at)
                assert deadlines.due_soon(t, due, now, s) == (rule.due_before <= t.created_at < rule.soon_before)
    consult = ticket(filed, request_type="咨询")
    complaint = ticket(filed, request_type="投诉")
    assert deadlines.overdue(consult, deadlines.due_at(consult, s), now)
    assert not deadlines.overdue(complaint, deadlines.due_at(complaint, s), now)
    assert not deadlines.due_soon(complaint, deadlines.due_at(complaint, s), now, s)


def test_a_deadline_is_said_as_the_citizen_reads_it() -> None:
    """A limit in working days ends at 24:00 Beijing time: said as that day; one in clock hours
    (urgent) with its time; whatever the server's zone."""
    end_of_day = datetime(2026, 12, 18, 16, 0, tzinfo=UTC)  # 2026-12-19 00:00 in Beijing
    assert deadlines.said(end_of_day) == "2026年12月18日"
    assert deadlines.said(datetime(2026, 11, 30, 2, 30, tzinfo=UTC)) == "2026年11月30日 10:30"
