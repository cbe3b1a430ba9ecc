"""派单通知: a unit hears by e-mail of a ticket sent to it (filed, 改派, 重新办理), as 主办 or 协办, at
the addresses of HOTLINE_UNIT_CONTACTS_FILE; through a real SMTP server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from config.settings import Settings
from gateway import keys, unit_notices
from gateway.runtime import Runtime
from gateway.unit_notices import UnitNotifier
from tests.channels.mailservers import SmtpSink
from ticket_client import Correction, TicketDraft

CITY = "城市管理和综合执法局"
CONTACTS = f"""
{CITY}: [cgj@city.gov.cn, refuse-duty@city.gov.cn]
K2区人民政府: k2@city.gov.cn
"""


def with_contacts(settings: Settings, smtp: SmtpSink, tmp_path: Path, text: str = CONTACTS) -> Settings:
    path = tmp_path / "unit_contacts.yml"
    path.write_text(text, encoding="utf-8")
    return settings.model_copy(update={
        "email_imap_url": SecretStr("imap://u:p@127.0.0.1:1/INBOX"), "email_smtp_url": SecretStr(smtp.url),
        "email_address": "12345@city.gov.cn", "email_timeout_s": 5.0, "unit_contacts_file": path,
        "public_url": "https://12345.city.gov.cn"})


@pytest.fixture
async def rt(settings: Settings, smtp: SmtpSink, tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = Runtime(with_contacts(settings, smtp, tmp_path))
    await runtime.start(workers=False)
    try:
        yield runtime
    finally:
        await runtime.stop()


async def file(rt: Runtime, key: str, departments: list[str], **kw: Any) -> str:
    assert rt.tickets is not None
    draft = TicketDraft(channel="web", conversation_key=f"web:{key}", title="书院路井盖破损", category=["城乡建设", "市政设施"],
                        description="书院路主干道井盖破损，车辆经过很危险，联系人13812345678", contact="13900001111",
                        departments=departments, **kw)
    return (await rt.tickets.file(draft, key)).ticket_id


def mails(smtp: SmtpSink) -> list[tuple[str, EmailMessage]]:
    found = []
    for got in smtp.received:
        msg = got.message
        assert isinstance(msg, EmailMessage)
        found += [(to, msg) for to in got.recipients]
    return found


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


async def test_the_units_of_a_new_ticket_hear_of_it_as_primary_and_co_handler(rt: Runtime, smtp: SmtpSink) -> None:
    """The first start begins at the latest change (the past is not mailed); a ticket filed since
    reaches each address of its units once, 主办 and 协办 told apart; an address refused for good
    is passed; no citizen's phone in the mail."""
    await file(rt, "old", [CITY])
    notifier = UnitNotifier(rt)
    assert await notifier.poll_once() == 0 and smtp.received == []  # begins now
    urgent = await file(rt, "new", [CITY, "K2区人民政府", "水务局"], urgent=True, request_type="投诉")
    assert await notifier.poll_once() == 2  # cgj and k2; refuse-duty refused (550), 水务局 has no address
    got = dict(mails(smtp))
    assert set(got) == {"cgj@city.gov.cn", "k2@city.gov.cn"}
    primary, helper = got["cgj@city.gov.cn"], got["k2@city.gov.cn"]
    assert primary["Subject"] == f"【12345派单·紧急】新工单待签收：{urgent} 书院路井盖破损"
    assert helper["Subject"] == f"【12345派单·紧急】协办工单：{urgent} 书院路井盖破损"
    assert primary["From"].addresses[0].addr_spec == "12345@city.gov.cn" and primary["Auto-Submitted"] == "auto-generated"
    body = text_of(primary)
    assert body.startswith(f"{CITY}：\n\n12345热线向你单位派发一件工单，由你单位主办")
    for line in (f"工单编号：{urgent}", f"承办部门：{CITY}、K2区人民政府、水务局（本单位主办）", "分类：城乡建设 / 市政设施",
                 "诉求类型：投诉（紧急）", "承办单位工作台：https://12345.city.gov.cn/console/"):
        assert line in body
    assert "办理时限：20" in body and " 前\n" in body
    assert "13812345678" not in body and "13900001111" not in body  # masked; the contact only in the 工作台
    assert f"（主办单位：{CITY}）" in text_of(helper) and "协办意见" in text_of(helper)
    assert await notifier.poll_once() == 0 and len(smtp.received) == 2  # each once


async def test_a_redispatch_and_a_reopening_reach_the_units_a_taking_on_does_not(rt: Runtime, smtp: SmtpSink) -> None:
    """改派 and 重新办理 reach the units the ticket names then; a unit's own steps reach nobody; a
    change read late that the ticket has moved past (filed, then 改派'd; done) tells nobody."""
    assert rt.tickets is not None
    notifier = UnitNotifier(rt)
    await notifier.poll_once()
    moved = await file(rt, "moved", ["水务局"])
    await rt.tickets.set_status(moved, "returned", "非本单位职责")
    await rt.tickets.correct(moved, Correction(by="li", departments=[CITY], reason="改派城管"))  # 改派
    await rt.tickets.set_status(moved, "processing")  # the unit at work: no mail
    await rt.tickets.set_status(moved, "resolved", "井盖已更换")
    await rt.tickets.set_status(moved, "reopened", "市民反映井盖仍松动，电话13812345678")
    assert await notifier.poll_once() == 2  # read late: not the filing, 改派'd away from 水务局 since
    [(to1, redispatched), (to2, reopened)] = mails(smtp)
    assert {to1, to2} == {"cgj@city.gov.cn"}
    assert redispatched["Subject"] == f"【12345派单】改派工单待办理：{moved} 书院路井盖破损"
    assert "经12345中心改派，由你单位主办" in text_of(redispatched)
    assert reopened["Subject"] == f"【12345派单】工单重新办理：{moved} 书院路井盖破损"
    assert "重新办理原因：市民反映井盖仍松动，电话[电话]" in text_of(reopened)  # masked

    done = await file(rt, "done", [CITY])
    await rt.tickets.set_status(done, "accepted")
    await rt.tickets.set_status(done, "resolved", "已修复")
    assert await notifier.poll_once() == 0  # done before the mailer read its filing


async def test_a_citizens_urge_reaches_the_primary_unit_of_the_ticket_or_its_main(rt: Runtime, smtp: SmtpSink) -> None:
    """催办通知: the 主办 hears of each 催办 of an open ticket (the 协办 not); a repeat's 催办 is told
    about its main; one done before the mailer read it tells nobody."""
    assert rt.tickets is not None
    notifier = UnitNotifier(rt)
    await notifier.poll_once()  # both cursors start now
    main = await file(rt, "main", [CITY, "K2区人民政府"])
    repeat = await file(rt, "repeat", [CITY])
    await rt.tickets.merge(repeat, main)
    assert await notifier.poll_once() == 2  # 派单通知: main's 主办 and 协办 (the repeat, merged since, none)
    smtp.received.clear()
    await rt.tickets.urge(main, "怎么还没人来修，我电话13812345678")
    await rt.tickets.urge(repeat, "我也反映过，催一下")
    assert await notifier.poll_once() == 2
    [(to1, first), (to2, second)] = mails(smtp)
    assert (to1, to2) == ("cgj@city.gov.cn", "cgj@city.gov.cn")  # the 主办 only (refuse-duty refused)
    assert first["Subject"] == f"【12345催办】市民催办：{main} 书院路井盖破损"
    body = text_of(first)
    assert "市民催办一件你单位主办、尚未办结的工单（第1次催办）" in body
    assert "市民催办：怎么还没人来修，我电话[电话]" in body and "13812345678" not in body
    assert second["Subject"] == first["Subject"]  # the repeat's, about its main
    assert "市民催办：我也反映过，催一下" in text_of(second)
    assert await notifier.poll_once() == 0  # each once

    done = await file(rt, "done", [CITY])
    await notifier.poll_once()
    await rt.tickets.urge(done, "催一下")
    await rt.tickets.set_status(done, "accepted")
    await rt.tickets.set_status(done, "resolved", "已修复")
    smtp.received.clear()
    assert await notifier.poll_once() == 0 and smtp.received == []  # done before it was read


async def test_a_deferred_mail_holds_the_change_and_its_retry_mails_only_the_rest(
    settings: Settings, smtp: SmtpSink, tmp_path: Path
) -> None:
    """The server defers one address (451) or is down: the cursor stays, and the change is tried
    again; an address already reached is not mailed twice."""
    runtime = Runtime(with_contacts(settings, smtp, tmp_path, f"{CITY}: [cgj@city.gov.cn, defer-duty@city.gov.cn]\n"))
    await runtime.start(workers=False)
    try:
        notifier = UnitNotifier(runtime)
        await notifier.poll_once()
        cursor = await runtime.redis.get(keys.UNIT_NOTICE_CURSOR)
        first = await file(runtime, "first", [CITY])
        for sent in (1, 0):  # cgj, then nobody: defer-duty is deferred twice
            assert await notifier.poll_once() == sent
            assert await runtime.redis.get(keys.UNIT_NOTICE_CURSOR) == cursor  # held
        assert [to for to, _ in mails(smtp)] == ["cgj@city.gov.cn"]  # once, though tried twice
        notifier.contacts[CITY] = ("cgj@city.gov.cn", "duty@city.gov.cn")  # the duty mailbox takes mail again
        smtp.stop()  # and then the server is down
        second = await file(runtime, "second", [CITY])
        assert await notifier.poll_once() == 0
        smtp.controller = Controller(smtp.handler, hostname="127.0.0.1", port=smtp.port)  # up again
        smtp.start()
        assert await notifier.poll_once() == 3  # first's duty, then second's two
        assert [(to, m["Subject"].split("：")[1].split()[0]) for to, m in mails(smtp)][1:] == [
            ("duty@city.gov.cn", first), ("cgj@city.gov.cn", second), ("duty@city.gov.cn", second)]
    finally:
        await runtime.stop()


async def test_a_mailbox_deferring_too_long_no_longer_holds_the_others(
    settings: Settings, smtp: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit's mailbox its server keeps deferring (451: full, greylisting gone wrong) holds the
    mail only for GIVE_UP_S; then it is tried once per mail and passed, and the others go on."""
    monkeypatch.setattr(unit_notices, "GIVE_UP_S", 0.0)
    runtime = Runtime(with_contacts(settings, smtp, tmp_path, f"{CITY}: defer-full@city.gov.cn\nK2区人民政府: k2@city.gov.cn\n"))
    await runtime.start(workers=False)
    try:
        notifier = UnitNotifier(runtime)
        await notifier.poll_once()
        first = await file(runtime, "first", [CITY, "K2区人民政府"])
        assert await notifier.poll_once() == 0 and smtp.received == []  # held: deferring since now
        assert await notifier.poll_once() == 1  # deferring "too long": passed, and k2 goes on
        second = await file(runtime, "second", [CITY, "K2区人民政府"])
        assert await notifier.poll_once() == 1  # tried once, passed at once
        assert [(to, m["Subject"].split("：")[1].split()[0]) for to, m in mails(smtp)] == [
            ("k2@city.gov.cn", first), ("k2@city.gov.cn", second)]
        assert await runtime.redis.get(keys.unit_mail_deferring("defer-full@city.gov.cn")) is not None
    finally:
        await runtime.stop()


async def test_the_workers_mail_the_units(settings: Settings, smtp: SmtpSink, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With the setting, the gateway's workers run the mailer (and without it, none)."""
    import asyncio

    monkeypatch.setattr(unit_notices, "POLL_S", 0.1)
    runtime = Runtime(with_contacts(settings, smtp, tmp_path))
    await runtime.start(workers=True)
    try:
        for _ in range(100):  # the first poll takes the latest change as its start
            if await runtime.redis.get(keys.UNIT_NOTICE_CURSOR) is not None:
                break
            await asyncio.sleep(0.05)
        ticket_id = await file(runtime, "live", ["K2区人民政府"])
        for _ in range(100):
            if smtp.received:
                break
            await asyncio.sleep(0.05)
        [(to, msg)] = mails(smtp)
        assert to == "k2@city.gov.cn" and ticket_id in msg["Subject"]
    finally:
        await runtime.stop()
