"""派单通知: a unit hears by e-mail of a ticket sent to it (filed, 改派, 重新办理), as 主办 or 协办, at
the addresses of HOTLINE_UNIT_CONTACTS_FILE; through a real SMTP server on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
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
    assert "（第2次催办）" in text_of(second)  # the matter's second, counted on the main and its repeats
    assert "市民催办：我也反映过，催一下" in text_of(second)
    assert await notifier.poll_once() == 0  # each once

    done = await file(rt, "done", [CITY])
    await notifier.poll_once()
    await rt.tickets.urge(done, "催一下")
    await rt.tickets.set_status(done, "accepted")
    await rt.tickets.set_status(done, "resolved", "已修复")
    smtp.received.clear()
    assert await notifier.poll_once() == 0 and smtp.received == []  # done before it was read


async def test_a_co_handlers_opinion_reaches_the_primary_unit(rt: Runtime, smtp: SmtpSink) -> None:
    """协办意见通知: the 主办 hears of each 协办意见 written on an open ticket of it, with the 协办's
    name and words (masked); the 协办 itself is not mailed; followed after the 催办 in order."""
    assert rt.tickets is not None
    notifier = UnitNotifier(rt)
    await notifier.poll_once()
    ticket_id = await file(rt, "assisted", ["K2区人民政府", CITY])
    assert await notifier.poll_once() == 2  # 派单通知: k2 主办, cgj 协办
    smtp.received.clear()
    await rt.tickets.urge(ticket_id, "催一下")
    await rt.tickets.assist(ticket_id, CITY, "已派人查看，井盖属市政所有，联系人13812345678")
    assert await notifier.poll_once() == 2
    [(to1, urged), (to2, assisted)] = mails(smtp)
    assert (to1, to2) == ("k2@city.gov.cn", "k2@city.gov.cn")
    assert urged["Subject"].startswith("【12345催办】")
    assert assisted["Subject"] == f"【12345协办】协办单位提交协办意见：{ticket_id} 书院路井盖破损"
    body = text_of(assisted)
    assert f"协办单位{CITY}对你单位主办的一件工单提交了协办意见" in body
    assert f"协办意见（{CITY}）：已派人查看，井盖属市政所有，联系人[电话]" in body and "13812345678" not in body
    assert await notifier.poll_once() == 0  # each once


async def test_the_unit_that_asked_for_an_extension_hears_the_centres_decision(rt: Runtime, smtp: SmtpSink) -> None:
    """延期审核通知: the unit that asked (主办 or 协办) is mailed the centre's decision, granted with
    the new 办理时限 or refused with the reason; the other units are not. A 延期 its 主办 did not ask
    for (a 协办's granted, the centre's own) tells the 主办 the new 办理时限."""
    from datetime import UTC, datetime, timedelta

    assert rt.tickets is not None
    notifier = UnitNotifier(rt)
    await notifier.poll_once()
    granted = await file(rt, "granted", ["K2区人民政府", CITY])
    refused = await file(rt, "refused", ["K2区人民政府", CITY])
    assert await notifier.poll_once() == 4
    smtp.received.clear()
    until = datetime.now(UTC) + timedelta(days=60)
    await rt.tickets.ask_extension(granted, until, "需协调多个部门", "K2区人民政府")
    await rt.tickets.ask_extension(refused, until, "需现场勘查", CITY)
    assert await notifier.poll_once() == 0  # asking mails nobody
    await rt.tickets.decide_extension(granted, approve=True, by="boss")
    await rt.tickets.decide_extension(refused, approve=False, by="boss", reason="现场勘查可在时限内完成")
    assert await notifier.poll_once() == 2
    [(to1, yes), (to2, no)] = mails(smtp)
    assert (to1, yes["Subject"]) == ("k2@city.gov.cn", f"【12345延期】延期申请审核结果：{granted} 书院路井盖破损")
    assert "你单位就一件工单提出的延期申请，12345中心已审核。" in text_of(yes)
    assert "审核结果：同意延期，办理时限延至" in text_of(yes)
    assert (to2, no["Subject"]) == ("cgj@city.gov.cn", f"【12345延期】延期申请审核结果：{refused} 书院路井盖破损")
    assert "（主办单位：K2区人民政府）" in text_of(no) and "审核结果：不同意延期：现场勘查可在时限内完成" in text_of(no)

    smtp.received.clear()  # a 延期 the 主办 did not ask for tells it the new 办理时限
    await rt.tickets.ask_extension(refused, until, "仍需现场勘查", CITY)
    await rt.tickets.decide_extension(refused, approve=True, by="boss")  # the 协办 asked: both hear
    await rt.tickets.extend(granted, until + timedelta(days=1), "需协调多个部门")  # the centre's own 延期
    assert await notifier.poll_once() == 3
    assert sorted((to, m["Subject"].split("】")[1].split("：")[0]) for to, m in mails(smtp)) == [
        ("cgj@city.gov.cn", "延期申请审核结果"), ("k2@city.gov.cn", "办理时限延长"), ("k2@city.gov.cn", "办理时限延长")]
    told = next(m for to, m in mails(smtp) if granted in m["Subject"])
    assert told["Subject"].startswith("【12345延期】办理时限延长：") and "延期说明：办理时限延长至" in text_of(told)
    assert "12345中心已将你单位主办的一件工单的办理时限延长" in text_of(told)


async def test_redis_losing_its_data_neither_mails_again_nor_skips(rt: Runtime, smtp: SmtpSink) -> None:
    """The mailer's cursors are kept with the tickets too: Redis flushed, it goes on from there,
    mailing nothing twice and missing nothing after."""
    assert rt.tickets is not None
    notifier = UnitNotifier(rt)
    await notifier.poll_once()
    first = await file(rt, "first", ["K2区人民政府"])
    await rt.tickets.urge(first, "催一下")
    assert await notifier.poll_once() == 2  # 派单通知 and 催办通知
    await rt.redis.flushdb()
    second = await file(rt, "second", ["K2区人民政府"])  # while Redis was empty
    assert await notifier.poll_once() == 1
    assert [m["Subject"].split("：")[1].split()[0] for _, m in mails(smtp)] == [first, first, second]


async def test_a_server_down_holds_the_change_until_it_is_back(settings: Settings, smtp: SmtpSink, tmp_path: Path) -> None:
    """The SMTP server is down: the cursor stays before the change, which is mailed once it is back."""
    runtime = Runtime(with_contacts(settings, smtp, tmp_path, f"{CITY}: [cgj@city.gov.cn, duty@city.gov.cn]\n"))
    await runtime.start(workers=False)
    try:
        notifier = UnitNotifier(runtime)
        await notifier.poll_once()
        cursor = await runtime.redis.get(keys.UNIT_NOTICE_CURSOR)
        smtp.stop()
        ticket_id = await file(runtime, "down", [CITY])
        for _ in range(2):
            assert await notifier.poll_once() == 0
            assert await runtime.redis.get(keys.UNIT_NOTICE_CURSOR) == cursor  # held
        assert notifier.retry_in == 30.0  # the next poll waits for the server
        smtp.controller = Controller(smtp.handler, hostname="127.0.0.1", port=smtp.port)  # up again
        smtp.start()
        assert await notifier.poll_once() == 2
        assert [(to, ticket_id in m["Subject"]) for to, m in mails(smtp)] == [
            ("cgj@city.gov.cn", True), ("duty@city.gov.cn", True)]
        assert await runtime.redis.get(keys.UNIT_NOTICE_CURSOR) != cursor
    finally:
        await runtime.stop()


async def test_a_deferring_mailbox_gets_its_mail_queued_in_order_and_holds_nobody(
    settings: Settings, smtp: SmtpSink, tmp_path: Path
) -> None:
    """A unit's mailbox its server defers (451: full) gets its mail queued, and the others go on at
    once; later mail to it waits behind; each try that is deferred again waits twice as long; when
    the mailbox takes mail again, its queue goes out oldest first, each mail once."""
    full = "duty@city.gov.cn"
    smtp.handler.deferring.add(full)
    runtime = Runtime(with_contacts(settings, smtp, tmp_path, f"{CITY}: [{full}, cgj@city.gov.cn]\nK2区人民政府: k2@city.gov.cn\n"))
    await runtime.start(workers=False)
    try:
        notifier = UnitNotifier(runtime)
        await notifier.poll_once()
        first = await file(runtime, "first", [CITY, "K2区人民政府"])
        assert await notifier.poll_once() == 2  # cgj and k2; duty's queued
        assert await runtime.redis.get(keys.UNIT_NOTICE_CURSOR) == str(await runtime.tickets.last_change())  # moved on
        second = await file(runtime, "second", [CITY])
        assert await notifier.poll_once() == 1  # cgj; duty's behind the first, not tried
        queue = keys.unit_mail_queue(full)
        assert await runtime.redis.llen(queue) == 2
        due = await runtime.redis.zscore(keys.UNIT_MAIL_DUE, full)
        assert due is not None and 25 < due - time.time() <= 30  # the server's wait
        assert await notifier.poll_once() == 0  # not yet due: not tried
        await runtime.redis.zadd(keys.UNIT_MAIL_DUE, {full: 0})  # the wait has passed
        assert await notifier.poll_once() == 0  # deferred again: 60 s now
        due = await runtime.redis.zscore(keys.UNIT_MAIL_DUE, full)
        assert due is not None and 55 < due - time.time() <= 60 and await runtime.redis.llen(queue) == 2
        smtp.handler.deferring.clear()  # the mailbox takes mail again
        await runtime.redis.zadd(keys.UNIT_MAIL_DUE, {full: 0})
        assert await notifier.poll_once() == 2
        assert [(to, m["Subject"].split("：")[1].split()[0]) for to, m in mails(smtp)] == [
            ("cgj@city.gov.cn", first), ("k2@city.gov.cn", first), ("cgj@city.gov.cn", second),
            (full, first), (full, second)]
        assert "联系人[电话]" in text_of(mails(smtp)[3][1])  # the queued mail is the one made, masked
        assert not await runtime.redis.exists(queue) and await runtime.redis.zcard(keys.UNIT_MAIL_DUE) == 0
        assert await notifier.poll_once() == 0 and len(smtp.received) == 5  # each once
    finally:
        await runtime.stop()


async def test_queued_mail_past_its_keeping_time_is_dropped_and_one_refused_is_passed(
    rt: Runtime, smtp: SmtpSink
) -> None:
    """A queued mail older than its keeping time is dropped (counted expired); a queued mail the
    server then refuses for good (550) is passed."""
    from gateway import unit_mail
    from gateway.metrics import UNIT_NOTICES

    def make(subject: str) -> Callable[[str], EmailMessage]:
        return lambda to: unit_mail.unit_mail(rt.settings, to, subject, ["正文"])

    expired = UNIT_NOTICES.labels("test", "expired")._value.get()
    smtp.handler.deferring.add("defer-x@city.gov.cn")
    await unit_mail.mail_unit(rt, "hl:test:reached:1", ["defer-x@city.gov.cn"], make("旧"), "test", keep_s=0)
    await unit_mail.mail_unit(rt, "hl:test:reached:2", ["defer-x@city.gov.cn"], make("新"), "test")
    assert await rt.redis.llen(keys.unit_mail_queue("defer-x@city.gov.cn")) == 2
    await rt.redis.zadd(keys.UNIT_MAIL_DUE, {"defer-x@city.gov.cn": 0})
    assert await unit_mail.retry_queued(rt) == (0, None)  # 旧 dropped, 新 deferred again
    assert UNIT_NOTICES.labels("test", "expired")._value.get() == expired + 1
    assert await rt.redis.llen(keys.unit_mail_queue("defer-x@city.gov.cn")) == 1
    await unit_mail.mail_unit(rt, "hl:test:reached:3", ["refuse-y@city.gov.cn"], make("拒"), "test")  # 550: passed
    assert not await rt.redis.exists(keys.unit_mail_queue("refuse-y@city.gov.cn"))
    # queued mail refused for good on a retry: passed
    await rt.redis.rename(keys.unit_mail_queue("defer-x@city.gov.cn"), keys.unit_mail_queue("refuse-z@city.gov.cn"))
    await unit_mail.mail_unit(rt, "hl:test:reached:4", ["refuse-z@city.gov.cn"], make("后"), "test")  # queued behind
    await rt.redis.zadd(keys.UNIT_MAIL_DUE, {"refuse-z@city.gov.cn": 0})
    assert await unit_mail.retry_queued(rt) == (0, None)  # both refused for good, dropped
    assert not await rt.redis.exists(keys.unit_mail_queue("refuse-z@city.gov.cn"))
    assert smtp.received == []


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
