"""``hotline admin rejudge``: 按期办结 judged again once a year's 放假安排 is in the holidays file."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.settings import get_settings
from gateway.cli import app
from ticket_client import Limits, LocalLedger, TicketDraft, deadlines, migrate

# 2026-12-30 (a Wednesday) 10:00 in Beijing: three working days are Dec 31, Jan 1 and Jan 4 while
# 2027's holidays are unknown (weekends only), Dec 31, Jan 4 and Jan 5 once 元旦 is a day off
FILED = datetime(2026, 12, 30, 2, 0, tzinfo=UTC)
FINISHED = datetime(2027, 1, 5, 4, 0, tzinfo=UTC)  # Jan 5, 12:00 in Beijing


@pytest.fixture
def finished_over_new_year(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A ledger under HOTLINE_DATA_DIR holding one ticket finished on Jan 5, judged 超期办结 by a
    holidays file that does not know 2027 yet; its number."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOTLINE_RESOLVE_DAYS", "3")
    monkeypatch.setenv("HOTLINE_HOLIDAYS_FILE", str(tmp_path / "no-2027.yml"))
    (tmp_path / "no-2027.yml").write_text("holidays: []\nworkdays: []\n", encoding="utf-8")
    get_settings.cache_clear()
    settings = get_settings()
    now = [FILED]

    async def fill() -> str:
        await migrate(settings.effective_database_url)
        ledger = LocalLedger(settings.effective_database_url, clock=lambda: now[0],
                             limits=Limits(due=lambda t: deadlines.due_at(t, settings)))
        try:
            draft = TicketDraft(channel="web", conversation_key="web:a", description="小区门口路灯坏了一个星期")
            number = (await ledger.file(draft, "a")).ticket_id
            now[0] = FILED + timedelta(hours=1)
            await ledger.set_status(number, "accepted")
            now[0] = FINISHED
            assert (await ledger.set_status(number, "resolved")).done_late is True
            return number
        finally:
            await ledger.close()

    number = asyncio.run(fill())
    yield number
    get_settings.cache_clear()


def done_late(number: str) -> bool | None:
    async def read() -> bool | None:
        ledger = LocalLedger(get_settings().effective_database_url)
        try:
            return (await ledger.get(number)).done_late
        finally:
            await ledger.close()

    return asyncio.run(read())


def test_a_ticket_judged_by_weekends_alone_is_on_time_once_the_holidays_are_known(
    finished_over_new_year: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    holidays = tmp_path / "with-2027.yml"
    holidays.write_text('holidays:\n  - "2027-01-01..2027-01-03"\nworkdays: []\n', encoding="utf-8")
    monkeypatch.setenv("HOTLINE_HOLIDAYS_FILE", str(holidays))
    get_settings.cache_clear()

    after = CliRunner().invoke(app, ["admin", "rejudge", "--since", "2027-01-06"])  # after its 办结: nothing
    assert after.exit_code == 0, after.output
    assert json.loads(after.output[:after.output.rindex("}") + 1])["done"] == 0
    assert done_late(finished_over_new_year) is True

    result = CliRunner().invoke(app, ["admin", "rejudge", "--since", "2027-01-01", "--until", "2027-01-05"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output[:result.output.rindex("}") + 1])
    assert (found["done"], found["done_late_before"], found["done_late"], found["changed"]) == (1, 1, 0, 1)
    assert found["since"] == "2027-01-01T00:00:00+08:00" and found["until"] == "2027-01-06T00:00:00+08:00"
    assert "超期办结 1 → 0" in result.output and "1 tickets changed" in result.output
    assert done_late(finished_over_new_year) is False


def test_an_end_before_the_start_is_refused(finished_over_new_year: str) -> None:
    result = CliRunner().invoke(app, ["admin", "rejudge", "--since", "2027-01-05", "--until", "2027-01-04"])
    assert result.exit_code == 2 and "--until is before --since" in result.output
    bad = CliRunner().invoke(app, ["admin", "rejudge", "--since", "2027/01/05"])
    assert bad.exit_code == 2 and "--since" in bad.output
    assert done_late(finished_over_new_year) is True
