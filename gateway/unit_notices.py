"""派单通知: a unit hears by e-mail, at the addresses ``HOTLINE_UNIT_CONTACTS_FILE`` gives it, when a
ticket is sent to it (filed naming it; 改派'd to it; 重新办理 after the citizen said it was not solved),
as 主办 or as 协办, so nobody has to watch the 承办单位工作台 to learn of it; and, as 主办, when the
citizen presses for an open ticket of it (催办通知) or one of its 协办 writes its 协办意见 (协办意见通知);
and a unit that asked for a 延期 hears the centre's decision (延期审核通知), a 主办 of a 延期 it did not
ask for.

The mailer follows the ledger's changes, then its follow-ups (催办, 协办意见, 延期 decisions), with a
cursor of its own for each (kept with the tickets too: ``gateway.cursors``), in order, one process
at a time, from the latest when it first starts (the past is not mailed). A mail the SMTP server
defers (down, busy: 4xx) holds the cursor, and the change is tried again, mailing only the
addresses it has not reached; a mailbox the server defers gets its mail queued and retried on its
own (``gateway.unit_mail``) while the others go on; an address refused for good (5xx) is logged and
passed. The mail says what and where and by when; the citizen's phone stays in the 工作台, and phone
and ID numbers in the words are masked."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TypeVar

import structlog

from config.unit_contacts import load_unit_contacts
from gateway import cursors, keys
from gateway.console import merging
from gateway.console.export import beijing
from gateway.loops import repeat
from gateway.runtime import Runtime
from gateway.unit_mail import mail_unit, retry_queued, unit_mail
from nlu.pii import mask_pii
from ticket_client import deadlines
from ticket_client.base import FollowUpEvent, StatusChange, Ticket, TicketNotFound

log = structlog.get_logger(__name__)
E = TypeVar("E", StatusChange, FollowUpEvent)  # what the mailer follows: the ledger's changes, its follow-ups

POLL_S = 5.0  # how often the ledger's changes are read (a unit's mail need not be instant)

# what a unit is told, by why the ticket came to it and whether it is its 主办
WHAT = {("filed", True): "新工单待签收", ("filed", False): "协办工单",
        ("redispatched", True): "改派工单待办理", ("redispatched", False): "改派协办工单",
        ("reopened", True): "工单重新办理", ("reopened", False): "协办工单重新办理",
        ("urged", True): "市民催办", ("assisted", True): "协办单位提交协办意见",
        ("decided", True): "延期申请审核结果", ("decided", False): "延期申请审核结果",
        ("extended", True): "办理时限延长"}
INTRO = {
    ("filed", True): "12345热线向你单位派发一件工单，由你单位主办，请及时登录承办单位工作台签收办理。",
    ("filed", False): "12345热线派发的一件工单由你单位协办（主办单位：{primary}），请登录承办单位工作台查看，"
                      "并将协办意见提交主办单位。",
    ("redispatched", True): "一件工单经12345中心改派，由你单位主办，请及时登录承办单位工作台办理。",
    ("redispatched", False): "一件工单经12345中心改派，由你单位协办（主办单位：{primary}），请登录承办单位工作台查看。",
    ("reopened", True): "群众反映问题仍未解决，12345中心将一件你单位办理的工单重新交办，请及时登录承办单位工作台签收办理。",
    ("reopened", False): "一件你单位协办的工单重新办理（主办单位：{primary}），请配合主办单位办理。",
    ("urged", True): "市民催办一件你单位主办、尚未办结的工单（第{urges}次催办），请抓紧办理，并将办理进展及时答复市民。",
    ("assisted", True): "协办单位{by}对你单位主办的一件工单提交了协办意见，请登录承办单位工作台查看，结合协办意见办理。",
    ("decided", True): "你单位就一件工单提出的延期申请，12345中心已审核。",
    ("decided", False): "你单位（协办）就一件工单提出的延期申请，12345中心已审核（主办单位：{primary}）。",
    ("extended", True): "12345中心已将你单位主办的一件工单的办理时限延长，请在新的办理时限前办结。",
}
# the mail's kind (metric, log, its record of the addresses reached); else dispatch
KIND = {"urged": "urge", "assisted": "assist", "decided": "decision", "extended": "extend"}
TAG = {"urged": "催办", "assisted": "协办", "decided": "延期", "extended": "延期"}  # the subject's 【12345…】; else 派单


@dataclass(frozen=True, slots=True)
class Notice:
    """One unit to tell of one change (or 催办) of one ticket."""

    unit: str
    primary: bool
    event: str  # filed, redispatched, reopened, extended (延期); urged (a 催办); assisted (a 协办意见); decided (延期申请)
    ticket: Ticket
    note: str  # the change's words (重新办理's reason), the citizen's (催办), the 协办's (协办意见)
    by: str = ""  # the 协办 unit that wrote a 协办意见
    urges: int = 0  # a 催办's count: the ticket's and its repeats' up to this one (第N次催办)

    @property
    def kind(self) -> str:
        return KIND.get(self.event, "dispatch")


def event_of(change: StatusChange, ticket: Ticket) -> str:
    """Why the change sends the ticket, as it is now, to its units ("" when it does not): filed, a
    改派 (the ticket's last dispatch is this change), or 重新办理. Read late (the mailer was down),
    a change the ticket has since moved past tells nobody: a ticket done meanwhile, or filed and
    改派'd since (the 改派 tells the units it has now)."""
    if change.kind != "status" or ticket.merged_into or not ticket.departments or ticket.status in deadlines.DONE:
        return ""  # a step of the work, a repeat handled with its main (whose units hear of it), done
    if change.status == "received":
        return "filed" if ticket.redispatched_at is None else ""
    if change.status == "accepted" and ticket.redispatched_at == change.at:
        return "redispatched"
    return "reopened" if change.status == "reopened" else ""


def compose(notice: Notice, to: str, rt: Runtime) -> EmailMessage:
    """The mail for one address of the unit: plain text, from the e-mail channel's mailbox."""
    settings, t = rt.settings, notice.ticket
    what = WHAT[(notice.event, notice.primary)]
    due = deadlines.due_at(t, settings)
    intro = INTRO[(notice.event, notice.primary)].format(primary=t.departments[0], urges=notice.urges or 1,
                                                        by=notice.by)
    lines = [f"{notice.unit}：", "", intro, "",
             f"工单编号：{t.ticket_id}",
             f"标题：{mask_pii(t.title) or '（无标题）'}",
             f"承办部门：{'、'.join(t.departments)}（本单位{'主办' if notice.primary else '协办'}）",
             f"分类：{' / '.join(t.category) or '—'}",
             f"诉求类型：{t.request_type or '—'}{'（紧急）' if t.urgent else ''}",
             f"地点：{t.location.text or '—'}",
             f"问题描述：{mask_pii(t.description)}",
             f"受理时间：{beijing(t.created_at)}",
             f"办理时限：{beijing(due) + ' 前' if due else '—'}"]
    if notice.event == "reopened" and notice.note:
        lines.append(f"重新办理原因：{mask_pii(notice.note)}")
    if notice.event == "urged" and notice.note:
        lines.append(f"市民催办：{mask_pii(notice.note)}")
    if notice.event == "assisted":
        lines.append(f"协办意见（{notice.by}）：{mask_pii(notice.note)}")
    if notice.event == "decided":
        lines.append(f"审核结果：{mask_pii(notice.note)}")
    if notice.event == "extended":
        lines.append(f"延期说明：{mask_pii(notice.note)}")
    if settings.public_url:
        lines.append(f"承办单位工作台：{settings.public_url.rstrip('/')}/console/")
    lines += ["", "群众联系电话等信息请登录承办单位工作台查看。本邮件由系统自动发送，请勿直接回复。"]
    tag = TAG.get(notice.event, "派单") + ("·紧急" if t.urgent else "")
    subject = f"【12345{tag}】{what}：{t.ticket_id} {mask_pii(t.title)}".rstrip()
    return unit_mail(settings, to, subject, lines)


class UnitNotifier:
    """Mails each unit of each ticket sent to it, change by change, each 主办 pressed for or
    written to by a 协办, and each unit whose 延期申请 was decided, follow-up by follow-up
    (``poll_once``)."""

    def __init__(self, rt: Runtime) -> None:
        assert rt.settings.unit_contacts_file is not None
        self.rt = rt
        self.contacts = load_unit_contacts(rt.settings.unit_contacts_file)
        self.retry_in = 0.0  # after a deferral: the server's wait (30 s busy or down, 5 min a refused login)

    async def run(self) -> None:
        await repeat(self.rt, self.poll_once, "unit_notice_poll_failed", self._pause)

    def _pause(self) -> float:
        """POLL_S, or after a deferral the server's wait."""
        wait, self.retry_in = max(POLL_S, self.retry_in), 0.0
        return wait

    async def poll_once(self) -> int:
        """Mail what waits in the mailboxes' queues, then the units of the changes, then of the
        follow-ups, since their cursors; the mails sent. Stops where the server defers (a change's
        cursor stays before it: the next poll tries it again)."""
        rt = self.rt
        assert rt.tickets is not None
        if not await rt.redis.set(keys.UNIT_NOTICE_LOCK, rt.consumer_prefix, nx=True, px=120_000):
            return 0
        try:
            sent, wait = await retry_queued(rt)
            if wait is not None:
                self.retry_in = wait
                return sent
            dispatched, deferred = await self._follow(keys.UNIT_NOTICE_CURSOR, "unit_dispatch", rt.tickets.last_change,
                                                      rt.tickets.changes_since, self._notices)
            if not deferred:
                followed, _ = await self._follow(keys.UNIT_FOLLOWUP_CURSOR, "unit_followup", rt.tickets.last_followup,
                                                 self._followups, self._followed)
                sent += followed
            return sent + dispatched
        finally:
            await rt.redis.delete(keys.UNIT_NOTICE_LOCK)

    async def _follow(self, cursor_key: str, reader: str, last: Callable[[], Awaitable[int]],
                      since: Callable[[int, int], Awaitable[Sequence[E]]],
                      notices_of: Callable[[E], Awaitable[list[Notice]]]) -> tuple[int, bool]:
        """Mail the notices of each event after the cursor at ``cursor_key``, moving it past each
        whose notices all went out: how many mails, and whether the server deferred one. Redis's
        cursor lost, the ledger's copy (``gateway.cursors``, moved after each batch) goes on; the
        first time, it starts at the latest event (``last``): the past is not mailed."""
        rt = self.rt
        cursor, found = await cursors.resume(rt, cursor_key, reader, last)
        if not found:
            return 0, False
        sent, moved, deferred = 0, cursor, False
        for event in await since(cursor, 100):
            for notice in await notices_of(event):
                done, wait = await mail_unit(
                    rt, keys.unit_notice_sent(f"{notice.kind}:{event.seq}"), self.contacts[notice.unit],
                    functools.partial(compose, notice, rt=rt), notice.kind,
                    ticket_id=notice.ticket.ticket_id, unit=notice.unit, why=notice.event)
                sent += done
                if wait is not None:  # deferred: this event again at the next poll
                    self.retry_in, deferred = wait, True
                    break
            if deferred:
                break
            await rt.redis.set(cursor_key, event.seq)
            moved = event.seq
        if moved != cursor:
            assert rt.tickets is not None
            await rt.tickets.keep_cursor(reader, moved)  # the ledger's copy, after a batch
        return sent, deferred

    async def _followups(self, cursor: int, limit: int) -> list[FollowUpEvent]:
        assert self.rt.tickets is not None
        return await self.rt.tickets.followups_since(cursor, ("urge", "assist", "decision"), limit)

    async def _followed(self, followup: FollowUpEvent) -> list[Notice]:
        """A 催办 or a 协办意见 tells the 主办 of the ticket (of its main, for a repeat merged into
        another), while it is open; the centre's decision on a 延期申请 tells the unit that asked."""
        assert self.rt.tickets is not None
        try:
            ticket = await self.rt.tickets.get(followup.ticket_id)
            if ticket.merged_into:
                ticket = await self.rt.tickets.get(ticket.merged_into)
        except TicketNotFound:
            return []
        if ticket.status in deadlines.DONE or not ticket.departments:
            return []
        if followup.kind == "decision":
            unit, event = followup.unit, "decided"
        else:
            unit, event = ticket.departments[0], "urged" if followup.kind == "urge" else "assisted"
        if unit not in self.contacts:
            return []
        urges = 0
        if event == "urged":  # how often the matter was pressed for by then: on the main and its repeats
            repeats = await merging.followers(self.rt.tickets, ticket)
            urges = sum(u.at <= followup.at for t in (ticket, *repeats) for u in t.urges)
        return [Notice(unit=unit, primary=unit == ticket.departments[0], event=event, ticket=ticket,
                       note=followup.note, by=followup.unit, urges=urges)]

    async def _notices(self, change: StatusChange) -> list[Notice]:
        assert self.rt.tickets is not None
        if change.kind == "extend":
            return await self._extended(change)
        if change.kind != "status" or change.status not in ("received", "accepted", "reopened"):
            return []
        try:
            ticket = await self.rt.tickets.get(change.ticket_id)
        except TicketNotFound:  # an abandoned filing
            return []
        event = event_of(change, ticket)
        return [Notice(unit=unit, primary=i == 0, event=event, ticket=ticket, note=change.note)
                for i, unit in enumerate(ticket.departments) if event and unit in self.contacts]

    async def _extended(self, change: StatusChange) -> list[Notice]:
        """A 延期 of an open ticket tells its 主办 the new 办理时限, unless the 主办 asked for it (its
        延期申请 granted at that moment: the decision's mail tells it). A repeat's follows its main."""
        assert self.rt.tickets is not None
        try:
            ticket = await self.rt.tickets.get(change.ticket_id)
        except TicketNotFound:
            return []
        if ticket.merged_into or ticket.status in deadlines.DONE or not ticket.departments:
            return []
        primary = ticket.departments[0]
        if primary not in self.contacts or any(r.decided_at == change.at and r.outcome == "approved" and r.unit == primary
                                               for r in ticket.extension_requests):
            return []
        return [Notice(unit=primary, primary=True, event="extended", ticket=ticket, note=change.note)]
