"""China's working days: the package's announced years, holidays.yml for later ones, and the
deadline (24:00 Beijing time of the Nth working day after filing) with its inverse."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import ValidationError
from structlog.testing import CapturingLogger

from config import workdays
from config.settings import Settings
from config.workdays import BEIJING, HolidaysFileError, WorkCalendar, load_holidays


def d(text: str) -> date:
    return date.fromisoformat(text)


def beijing(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def span(first: str, last: str) -> list[date]:
    return [d(first) + timedelta(days=i) for i in range((d(last) - d(first)).days + 1)]


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> CapturingLogger:
    captured = CapturingLogger()
    monkeypatch.setattr(workdays, "log", structlog.wrap_logger(captured, processors=[]))
    return captured


def holidays_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "holidays.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_spring_festival_2026_with_its_makeup_saturdays() -> None:
    """放假 2026-02-15 (Sun) … 02-23 (Mon); 调休上班 02-14 (Sat) and 02-28 (Sat)."""
    cal = WorkCalendar()
    assert not any(cal.is_workday(day) for day in span("2026-02-15", "2026-02-23"))
    assert cal.is_workday(d("2026-02-14")) and cal.is_workday(d("2026-02-28"))  # Saturdays worked
    assert cal.is_workday(d("2026-02-13")) and cal.is_workday(d("2026-02-24"))
    assert not cal.is_workday(d("2026-03-01"))  # an ordinary Sunday
    assert cal.add_workdays(d("2026-02-13"), 1) == d("2026-02-14")  # Friday → the makeup Saturday
    assert cal.add_workdays(d("2026-02-14"), 1) == d("2026-02-24")  # over the nine days off


def test_national_day_2026() -> None:
    """放假 2026-10-01 … 10-07; 调休上班 09-20 (Sun) and 10-10 (Sat)."""
    cal = WorkCalendar()
    assert not any(cal.is_workday(day) for day in span("2026-10-01", "2026-10-07"))
    assert cal.is_workday(d("2026-09-20")) and cal.is_workday(d("2026-10-10"))
    assert not cal.is_workday(d("2026-10-11"))
    assert cal.add_workdays(d("2026-09-30"), 1) == d("2026-10-08")
    assert cal.add_workdays(d("2026-09-30"), 3) == d("2026-10-10")  # Thu, Fri, the makeup Saturday
    assert cal.add_workdays(d("2026-09-25"), 15) == d("2026-10-22")  # calendar days would say 10-10


def test_deadline_is_the_end_of_the_nth_working_day_after_the_day_of_filing() -> None:
    cal = WorkCalendar()
    monday_end = beijing("2026-03-10T00:00")  # 24:00 of Monday 2026-03-09
    assert cal.deadline(beijing("2026-03-07T10:00"), 1) == monday_end  # filed on a Saturday
    assert cal.deadline(beijing("2026-03-06T23:59"), 1) == monday_end  # Friday night: Monday too
    assert cal.deadline(datetime(2026, 3, 6, 16, 30, tzinfo=UTC), 1) == monday_end  # 00:30 Saturday in Beijing
    assert cal.deadline(beijing("2026-03-06T15:59"), 1).tzinfo == UTC
    assert cal.deadline(beijing("2026-09-30T09:00"), 1) == beijing("2026-10-09T00:00")
    with pytest.raises(ValueError):
        cal.add_workdays(d("2026-03-06"), 0)


@pytest.mark.parametrize("n", [1, 5, 15])
def test_earliest_start_is_the_inverse_of_the_deadline(n: int) -> None:
    """Every filing moment before ``earliest_start(at)`` is due before ``at``, none after it:
    the 超期 filter of the ledger (by filing time) and each ticket's flag agree, around holidays."""
    cal = WorkCalendar()
    filed = [beijing("2026-09-01T00:00") + timedelta(hours=11 * i) for i in range(140)]
    for at in (beijing("2026-09-10T00:00") + timedelta(hours=13 * i, minutes=7 * i) for i in range(120)):
        cut = cal.earliest_start(at, n)
        assert cut.astimezone(BEIJING).time().isoformat() == "00:00:00"
        for t in filed:
            assert (cal.deadline(t, n) < at) == (t < cut), (t, at, cut)
    assert cal.earliest_start(cal.deadline(beijing("2026-10-08T12:00"), 1), 1) == beijing("2026-10-08T00:00")


def test_a_year_the_package_does_not_know_counts_weekends_and_warns_once(logged: CapturingLogger) -> None:
    cal = WorkCalendar()
    assert cal.is_workday(d("2040-10-01"))  # a Monday: nobody has announced 2040's National Day
    assert not cal.is_workday(d("2040-10-06")) and not cal.is_workday(d("2040-10-07"))
    assert cal.add_workdays(d("2040-10-05"), 1) == d("2040-10-08")
    assert [(c.method_name, c.kwargs["year"]) for c in logged.calls] == [("warning", 2040)]
    assert "holidays for 2040 unknown: add them to" in logged.calls[0].kwargs["detail"]
    assert str(workdays.HOLIDAYS_FILE) in logged.calls[0].kwargs["detail"]


def test_holidays_yml_adds_a_year_and_wins_over_the_package(tmp_path: Path, logged: CapturingLogger) -> None:
    path = holidays_file(tmp_path, """\
holidays:
  - "2040-09-30..2040-10-06"
  - 2026-10-09     # a late change to an announced year: the file wins
workdays:
  - 2040-10-07     # a Sunday worked (调休上班)
""")
    cal = WorkCalendar.from_file(path)
    assert not any(cal.is_workday(day) for day in span("2040-09-30", "2040-10-06"))
    assert cal.is_workday(d("2040-10-07"))
    assert cal.is_workday(d("2040-10-08")) and not cal.is_workday(d("2040-10-13"))  # the rest by weekday
    assert not cal.is_workday(d("2026-10-09")) and cal.is_workday(d("2026-10-08"))  # the package otherwise
    assert cal.add_workdays(d("2040-09-28"), 1) == d("2040-10-07")
    assert logged.calls == []  # 2040 is known now
    cal.is_workday(d("2041-01-01"))
    assert [c.kwargs["year"] for c in logged.calls] == [2041]
    assert str(path) in logged.calls[0].kwargs["detail"]


def test_the_years_ahead_whose_holidays_are_unknown_are_named(tmp_path: Path) -> None:
    """The 班长视图's notice: the years within the days ahead that neither holidays.yml nor the
    package knows, so the centre adds them before deadlines run into them."""
    cal = WorkCalendar()
    assert cal.knows(2026) and not cal.knows(2040)
    assert cal.unknown_years(d("2026-06-01"), 60) == []
    assert cal.unknown_years(d("2040-11-29"), 60) == [2040, 2041]
    announced = WorkCalendar.from_file(holidays_file(tmp_path, 'holidays:\n  - "2041-01-01"\n'))
    assert announced.knows(2041) and announced.unknown_years(d("2040-11-29"), 60) == [2040]
    assert announced.unknown_years(d("2040-11-29"), 20) == [2040]  # the new year not in sight yet


def test_the_shipped_file_reads() -> None:
    announced = load_holidays(workdays.HOLIDAYS_FILE)
    assert all(day.year > 2026 for day in announced.holidays | announced.workdays)  # only what the package lacks
    assert Settings(_env_file=None).holidays_file == workdays.HOLIDAYS_FILE  # type: ignore[call-arg]


@pytest.mark.parametrize(("text", "said"), [
    ("holidays: [2027-02-30]\n", "2027-02-30"),  # unquoted, YAML leaves a non-date as text
    ("holidays:\n  - 2027-13-01\n", "2027-13-01"),
    ("workdays:\n  - 十月一日\n", "十月一日"),
    ("holidays:\n  - 20271001\n", "20271001"),
    ("holidays:\n  - 2027-10-01 08:00:00\n", "2027-10-01 08:00:00"),
    ('holidays:\n  - "2027-10-07..2027-10-01"\n', "2027-10-07..2027-10-01"),
    ('holidays:\n  - "2027-01-01..2027-12-31"\n', "2027-01-01..2027-12-31"),
    ("holidays: 2027-10-01\n", "must be a list"),
    ("holiday:\n  - 2027-10-01\n", "expected the keys holidays: and workdays:"),
    ("holidays: [2027-10-01\n", "not valid YAML"),
    ("holidays: [2027-10-09]\nworkdays: [2027-10-09]\n", "2027-10-09 is under both"),
])
def test_an_invalid_holidays_file_names_itself_and_the_value(tmp_path: Path, text: str, said: str) -> None:
    path = holidays_file(tmp_path, text)
    with pytest.raises(HolidaysFileError) as error:
        load_holidays(path)
    assert str(path) in str(error.value) and said in str(error.value)


def test_the_settings_refuse_a_bad_holidays_file_and_a_fraction_of_a_working_day(tmp_path: Path) -> None:
    base: dict[str, Any] = {"_env_file": None}
    bad = holidays_file(tmp_path, "workdays: [2027-02-30]\n")
    with pytest.raises(ValidationError, match=r"HOTLINE_HOLIDAYS_FILE: .*holidays\.yml.*2027-02-30"):
        Settings(**base, holidays_file=bad)
    with pytest.raises(ValidationError, match="HOTLINE_HOLIDAYS_FILE: .*cannot be read"):
        Settings(**base, holidays_file=tmp_path / "missing.yml")
    with pytest.raises(ValidationError, match="HOTLINE_RESOLVE_DAYS counts whole working days"):
        Settings(**base, resolve_days=7.5)
    assert Settings(**base, resolve_days=7.5, resolve_workdays=False, holidays_file=bad).resolve_days == 7.5
    assert Settings(**base, resolve_days=10.0).resolve_days == 10
