"""China's working days (工作日), which 12345 centres count 办理时限 in.

A working day is Monday to Friday unless the State Council's 放假安排 makes it a holiday, plus the
weekend days it makes working days (调休上班). The ``chinese-calendar`` package knows the years
announced when it was released; ``config/holidays.yml`` (``HOTLINE_HOLIDAYS_FILE``) adds the years
it does not know yet, and wins over it for any date it names. A year neither knows counts weekends
as rest days and every other day as a working day, with a warning once per year: a deadline a few
days early across a holiday beats no deadline at all.

Dates are Beijing dates (Asia/Shanghai, UTC+8 all year: China has had no summer time since 1991).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import chinese_calendar
import structlog
import yaml

log = structlog.get_logger(__name__)

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
HOLIDAYS_FILE = Path(__file__).resolve().parent / "holidays.yml"
MAX_RANGE_DAYS = 31  # "2027-10-01..2027-10-07": no 放假 is longer; a longer range is a typo


class HolidaysFileError(ValueError):
    """holidays.yml cannot be read: the message names the file and the value."""


@dataclass(frozen=True)
class Announced:
    """What holidays.yml adds to the package: days off (放假) and weekend days worked (调休上班)."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    @property
    def years(self) -> frozenset[int]:
        return frozenset(d.year for d in self.holidays | self.workdays)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _TextDates(yaml.SafeLoader):
    """YAML without its timestamps: a date stays the text written, so a bad one (2027-02-30) is
    named in the error instead of lost in YAML's own "day is out of range for month"."""


_TextDates.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _day(text: str) -> date:
    if not _DATE.fullmatch(text):
        raise ValueError(text)
    return date.fromisoformat(text)


def _dates(value: Any, where: str) -> set[date]:
    """One entry of a list: a date, or a range ``2027-10-01..2027-10-07`` (both ends included)."""
    first, _, last = str(value).strip().partition("..")
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        start = _day(first.strip())
        end = _day(last.strip()) if last else start
    except ValueError:
        raise HolidaysFileError(f"{where}: {value!r} is not a date (YYYY-MM-DD) or a range "
                                "(\"YYYY-MM-DD..YYYY-MM-DD\")") from None
    if not 0 <= (end - start).days < MAX_RANGE_DAYS:
        raise HolidaysFileError(f"{where}: {value!r} is not a range of 1 to {MAX_RANGE_DAYS} days")
    return {start + timedelta(days=i) for i in range((end - start).days + 1)}


def load_holidays(path: Path) -> Announced:
    """Read holidays.yml; HolidaysFileError naming the file for anything it cannot take."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_TextDates)  # a SafeLoader
    except OSError as exc:
        raise HolidaysFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise HolidaysFileError(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        return Announced()
    if not isinstance(data, dict) or not set(data) <= {"holidays", "workdays"}:
        raise HolidaysFileError(f"{path}: expected the keys holidays: and workdays:, each a list of dates")
    found: dict[str, set[date]] = {}
    for key in ("holidays", "workdays"):
        entries = data.get(key) or []
        if not isinstance(entries, list):
            raise HolidaysFileError(f"{path}: {key}: must be a list of dates (- 2027-10-01)")
        found[key] = {d for entry in entries for d in _dates(entry, f"{path}: {key}")}
    if both := sorted(found["holidays"] & found["workdays"]):
        raise HolidaysFileError(f"{path}: {both[0].isoformat()} is under both holidays: and workdays:")
    return Announced(frozenset(found["holidays"]), frozenset(found["workdays"]))


@dataclass
class WorkCalendar:
    """Working days: holidays.yml first, then chinese-calendar, then weekends only (warned)."""

    announced: Announced = field(default_factory=Announced)
    source: Path = HOLIDAYS_FILE  # named in the warning of an unknown year
    _days: dict[date, bool] = field(default_factory=dict, repr=False)
    _warned: set[int] = field(default_factory=set, repr=False)
    _after: dict[tuple[date, int], date] = field(default_factory=dict, repr=False)  # an export asks per row

    @classmethod
    def from_file(cls, path: Path) -> WorkCalendar:
        return cls(load_holidays(path), path)

    def is_workday(self, day: date) -> bool:
        if (known := self._days.get(day)) is None:
            known = self._days[day] = self._look_up(day)
        return known

    def _look_up(self, day: date) -> bool:
        if day in self.announced.holidays or day in self.announced.workdays:
            return day in self.announced.workdays
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:  # a year announced after the package was released
            if day.year not in self.announced.years and day.year not in self._warned:
                self._warned.add(day.year)
                log.warning("holidays_unknown", year=day.year,
                            detail=f"holidays for {day.year} unknown: add them to {self.source}")
        return day.weekday() < 5

    def knows(self, year: int) -> bool:
        """Whether ``year``'s 放假安排 is known (holidays.yml names a day of it, or the package has it)."""
        if year in self.announced.years:
            return True
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            return False
        return True

    def unknown_years(self, start: date, days: int) -> list[int]:
        """The years from ``start`` to ``days`` later whose 放假安排 is not known: 办理时限 running into
        them count weekends only, so the centre is told before (the 班长视图's notice)."""
        return [year for year in range(start.year, (start + timedelta(days=days)).year + 1) if not self.knows(year)]

    def add_workdays(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (``day`` itself never counts; n >= 1)."""
        if n < 1:
            raise ValueError(f"a number of working days must be at least 1, not {n}")
        if (known := self._after.get((day, n))) is not None:
            return known
        first, left = day, n
        while left:
            day += timedelta(days=1)
            left -= self.is_workday(day)
        self._after[(first, n)] = day
        return day

    def deadline(self, start: datetime, n: int) -> datetime:
        """24:00 Beijing time of the ``n``-th working day after ``start``'s Beijing date (UTC)."""
        return midnight(self.add_workdays(start.astimezone(BEIJING).date(), n) + timedelta(days=1))

    def earliest_start(self, at: datetime, n: int) -> datetime:
        """The first instant whose ``deadline(…, n)`` is not before ``at``: everything started
        earlier was due before ``at``, everything started since is due at or after it (UTC)."""
        day = at.astimezone(BEIJING).date()  # its deadline is at least a day after ``at``
        while self.deadline(midnight(day - timedelta(days=1)), n) >= at:
            day -= timedelta(days=1)
        return midnight(day)


def midnight(day: date) -> datetime:
    """00:00 Beijing time of ``day``, in UTC."""
    return datetime.combine(day, time(), BEIJING).astimezone(UTC)


@lru_cache
def calendar(path: Path = HOLIDAYS_FILE) -> WorkCalendar:
    """The calendar of ``HOTLINE_HOLIDAYS_FILE``, read once per process (restart after editing)."""
    return WorkCalendar.from_file(path)
