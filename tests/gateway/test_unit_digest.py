"""待办提醒: each working day after HOTLINE_UNIT_DIGEST_AT, a unit with tickets waiting on it hears
how many and which, once per address; through a real SMTP server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from config.settings import Settings
from config.workdays import BEIJING, calendar
from gateway.runtime import Runtime
from gateway.unit_digest import UnitDigest
from tests.channels.mailservers import SmtpSink
from tests.gateway.test_unit_notices import CITY, mails, text_of, with_contacts
from ticket_client import LocalLedger, TicketDraft


def working_day(after: date, workday: bool = True) -> date:
    """The first day from ``after`` on that is (or is not) a working day by the shipped calendar."""
    day = after
    while calendar().is_workday(day) != workday:
        day += timedelta(days=1)
    return day


@pytest.fixture
async def rt(settings: Settings, smtp: SmtpSink, tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = Runtime(with_contacts(settings, smtp, tmp_path).model_copy(update={"unit_digest_at": "08:30"}))
    await runtime.start(workers=False)
    try:
        yield runtime
    finally:
        await runtime.stop()


async def filed(settings: Settings, key: str, departments: list[str], days_ago: float, before: datetime | None = None,
                **kw: object) -> str:
    """A ticket filed ``days_ago`` before ``before`` (now)."""
    then = (before or datetime.now(UTC)) - timedelta(days=days_ago)
    async with LocalLedger(settings.effective_database_url, clock=lambda: then) as ledger:
        draft = TicketDraft(channel="web", conversation_key=f"web:{key}", title=f"{key}井盖破损，电话13812345678",
                            description="井盖破损", departments=departments, **kw)  # type: ignore[arg-type]
        return (await ledger.file(draft, key)).ticket_id


async def test_a_unit_with_tickets_waiting_hears_which_once_a_working_day(rt: Runtime, smtp: SmtpSink) -> None:
    """Before the hour and on a rest day nothing goes out; after it, the units with something
    waiting are mailed (each address once: 550 refused, passed), the overdue first; a unit with
    nothing waiting, nothing; a second check that day, nothing."""
    day = working_day(datetime.now(BEIJING).date())
    at = datetime.combine(day, time(8, 29), BEIJING)
    # filed before the mail is made, whatever the hour the test runs at (fresh: urgent, due within a day)
    late = await filed(rt.settings, "late", [CITY], days_ago=45, before=at)
    fresh = await filed(rt.settings, "fresh", [CITY, "K2区人民政府"], days_ago=0.01, before=at, urgent=True)
    await filed(rt.settings, "elsewhere", ["水务局"], days_ago=45, before=at)  # no address: nobody told
    assert rt.tickets is not None
    await rt.tickets.urge(late, "都一个多月了还没修")
    digest = UnitDigest(rt)
    assert await digest.send_due(at) == 0  # not yet
    rest = working_day(day, workday=False)
    assert await digest.send_due(datetime.combine(rest, time(10, 0), BEIJING)) == 0  # a rest day
    assert smtp.received == []

    now = datetime.combine(day, time(8, 31), BEIJING)
    assert await digest.send_due(now) == 2  # cgj (refuse-duty refused for good) and k2, whose 协办 ticket waits
    got = dict(mails(smtp))
    city, k2 = got["cgj@city.gov.cn"], got["k2@city.gov.cn"]
    assert city["Subject"] == f"【12345待办提醒·紧急】{CITY}：超期未办结1件、即将超期1件、市民催办1件、待签收2件"
    body = text_of(city)
    assert f"截至{day.year}年{day.month}月{day.day}日08:31" in body
    for line in ("待签收：2 件（其中紧急 1 件）", "未办结：2 件", "即将超期（24小时内到期）：1 件", "超期未办结：1 件",
                 "市民催办未办结：1 件", "延期申请待审核：0 件",
                 "承办单位工作台：https://12345.city.gov.cn/console/"):
        assert line in body
    assert (body.index(f"超期未办结：\n1. {late}") < body.index(f"即将超期：\n1. {fresh}")  # urgent: due in 24 h
            < body.index(f"市民催办：\n1. {late}") < body.index(f"待签收：\n1. {fresh}"))  # the most pressing first
    assert f"2. {late}" in body and "【紧急】" in body and "13812345678" not in body  # masked
    assert "K2区人民政府：" in text_of(k2) and "待签收：1 件（其中紧急 1 件）" in text_of(k2)
    assert await digest.send_due(now + timedelta(hours=3)) == 0 and len(smtp.received) == 2  # once a day


async def test_settings_name_the_hour_and_need_the_addresses() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="HH:MM"):
        Settings(_env_file=None, unit_digest_at="8:30")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="needs HOTLINE_UNIT_CONTACTS_FILE"):
        Settings(_env_file=None, unit_digest_at="08:30")  # type: ignore[call-arg]
    assert Settings(_env_file=None).unit_digest_at == ""  # type: ignore[call-arg]


async def test_the_workers_run_the_digest(settings: Settings, smtp: SmtpSink, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With HOTLINE_UNIT_DIGEST_AT set, the gateway's workers look for the hour."""
    import asyncio
    import threading

    looked = threading.Event()  # the workers run on a thread of their own

    async def seen(self: UnitDigest, now: datetime) -> int:
        looked.set()
        return 0

    monkeypatch.setattr(UnitDigest, "send_due", seen)
    runtime = Runtime(with_contacts(settings, smtp, tmp_path).model_copy(update={"unit_digest_at": "08:30"}))
    await runtime.start(workers=True)
    try:
        assert await asyncio.to_thread(looked.wait, 30)
    finally:
        await runtime.stop()
