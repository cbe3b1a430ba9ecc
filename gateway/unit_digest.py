"""待办提醒: at ``HOTLINE_UNIT_DIGEST_AT`` (Beijing time) of each working day, each unit of
``HOTLINE_UNIT_CONTACTS_FILE`` with tickets waiting on it (待签收, 即将超期, 超期, 催办) is mailed how many
of each and which, the most pressing first, so a unit that does not keep the 承办单位工作台 open still
acts before its tickets run late. A unit with nothing waiting gets no mail.

One round at a time across processes; each address once a day (a restart, or a server that deferred,
mails only the addresses not reached yet); a gateway started after the hour sends that day's at once.
The lists are the 工作台's own (``gateway.console.unit``), as the tickets stand when the mail is made.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, time
from email.message import EmailMessage

from config.settings import Settings
from config.unit_contacts import load_unit_contacts
from config.workdays import BEIJING, calendar
from gateway import keys
from gateway.console.export import beijing
from gateway.console.unit import COUNTED, unit_query
from gateway.loops import repeat
from gateway.runtime import Runtime
from gateway.unit_mail import mail_unit, unit_mail
from nlu.pii import mask_pii
from ticket_client import deadlines
from ticket_client.base import Ticket

CHECK_S = 60.0  # how often the hour is looked for
DIGEST_KEEP_S = 12 * 3600  # a 待办提醒 its mailbox defers is tried till evening; the next day's has it all
LISTED = 20  # tickets named per list; the 工作台 has them all
# the lists, the most pressing first: (COUNTED's name, heading)
LISTS = (("overdue", "超期未办结"), ("due_soon", "即将超期"), ("urged", "市民催办"), ("received", "待签收"))


@dataclass
class Waiting:
    """What waits on one unit: COUNTED's counts and the first tickets of each of LISTS."""

    counts: dict[str, int]
    tickets: dict[str, list[Ticket]] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return any(self.counts.get(name) for name, _ in LISTS)


def mail(unit: str, waiting: Waiting, now: datetime, settings: Settings, to: str) -> EmailMessage:
    """The 待办提醒 of one unit for one address."""
    c = waiting.counts
    urgent = f"（其中紧急 {c['received_urgent']} 件）" if c.get("received_urgent") else ""
    local = now.astimezone(BEIJING)
    lines = [f"{unit}：", "", f"截至{local.year}年{local.month}月{local.day}日{local:%H:%M}，你单位在12345热线的待办工单如下，"
             "请及时登录承办单位工作台办理。", "",
             f"待签收：{c.get('received', 0)} 件{urgent}",
             f"未办结：{c.get('open', 0)} 件"]
    if settings.due_soon_hours:
        lines.append(f"即将超期（{settings.due_soon_hours:g}小时内到期）：{c.get('due_soon', 0)} 件")
    lines += [f"超期未办结：{c.get('overdue', 0)} 件", f"市民催办未办结：{c.get('urged', 0)} 件",
              f"延期申请待审核：{c.get('extension', 0)} 件"]
    for name, heading in LISTS:
        found = waiting.tickets.get(name) or []
        if not found:
            continue
        more = f"（共 {c[name]} 件，列出前 {len(found)} 件）" if c.get(name, 0) > len(found) else ""
        lines += ["", f"{heading}{more}："]
        for i, t in enumerate(found, 1):
            due = deadlines.due_at(t, settings)
            lines.append(f"{i}. {t.ticket_id} {mask_pii(t.title) or '（无标题）'}"
                         f"{'【紧急】' if t.urgent else ''}（办理时限 {beijing(due) if due else '—'}）")
    if settings.public_url:
        lines += ["", f"承办单位工作台：{settings.public_url.rstrip('/')}/console/"]
    lines += ["", "本邮件由系统每个工作日自动发送，请勿直接回复。"]
    counts = [f"{heading}{c[name]}件" for name, heading in LISTS if c.get(name)]
    subject = f"【12345待办提醒{'·紧急' if c.get('received_urgent') else ''}】{unit}：{'、'.join(counts)}"
    return unit_mail(settings, to, subject, lines)


class UnitDigest:
    """Sends each working day's 待办提醒 once the hour has come (``send_due``)."""

    def __init__(self, rt: Runtime) -> None:
        assert rt.settings.unit_contacts_file is not None and rt.settings.unit_digest_at
        self.rt = rt
        self.contacts = load_unit_contacts(rt.settings.unit_contacts_file)
        hour, minute = rt.settings.unit_digest_at.split(":")
        self.at = time(int(hour), int(minute))
        self.calendar = calendar(rt.settings.holidays_file)

    async def run(self) -> None:
        await repeat(self.rt, lambda: self.send_due(datetime.now(BEIJING)), "unit_digest_failed", lambda: CHECK_S)

    async def send_due(self, now: datetime) -> int:
        """Mail the day's 待办提醒 not sent yet, when ``now`` is a working day past the hour: how
        many mails went out. A deferral stops the round (the next check goes on from there)."""
        rt = self.rt
        local = now.astimezone(BEIJING)
        if local.time() < self.at or not self.calendar.is_workday(local.date()):
            return 0
        if not await rt.redis.set(keys.UNIT_DIGEST_LOCK, rt.consumer_prefix, nx=True, px=600_000):
            return 0
        sent = 0
        try:
            day = local.date().isoformat()
            for unit, addresses in self.contacts.items():
                reached = keys.unit_digest_sent(day, unit)
                if await rt.redis.scard(reached) >= len(addresses):
                    continue  # today's went out (or was refused for good) to each address
                waiting = await self.waiting(unit, now)
                if not waiting.any:
                    continue
                done, wait = await mail_unit(rt, reached, addresses,
                                             functools.partial(mail, unit, waiting, now, rt.settings), "digest",
                                             DIGEST_KEEP_S, unit=unit)
                sent += done
                if wait is not None:
                    break
            return sent
        finally:
            await rt.redis.delete(keys.UNIT_DIGEST_LOCK)

    async def waiting(self, unit: str, now: datetime) -> Waiting:
        """The unit's counts, as its 工作台 shows them, and the first tickets of each list."""
        tickets, settings = self.rt.tickets, self.rt.settings
        assert tickets is not None
        counts = {name: await tickets.count(unit_query(settings, unit, now, **narrowed))
                  for name, narrowed in COUNTED.items()}
        found = Waiting(counts)
        for name, _ in LISTS:
            if counts.get(name):
                query = unit_query(settings, unit, now, **COUNTED[name]).model_copy(update={"limit": LISTED})
                found.tickets[name] = await tickets.search(query)
        return found
