"""Mail to units (派单通知, 催办通知, 待办提醒), made and delivered so that none is lost to one bad
mailbox.

A mail goes straight to the unit's SMTP server. When the server defers one recipient (4xx for the
mailbox: full, greylisting), that address's mail is queued for it alone, in order, and retried
with growing pauses (``retry_queued``) until it is taken, refused for good (5xx) or older than its
keeping time (an MTA's bounce): the other addresses and units go on. When the server itself is down
or busy, nothing is queued: the caller holds its place and tries again after the server's wait.
"""

from __future__ import annotations

import base64
import email
import json
import time
from collections.abc import Callable, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any

import structlog

from channels.base import DeliveryError, utcnow
from channels.email.send import deliver, mask
from config.settings import Settings
from gateway import keys, metrics
from gateway.runtime import Runtime

log = structlog.get_logger(__name__)

SENT_KEEP_S = 7 * 86400  # how long the addresses a mail reached are remembered (its retries)
KEEP_S = 5 * 86400  # how long a deferred 派单通知 or 催办通知 is kept trying, as an MTA before it bounces
MAX_PAUSE_S = 3600.0  # the longest pause between two tries of a mailbox's queue


def unit_mail(settings: Settings, to: str, subject: str, lines: list[str]) -> EmailMessage:
    """A mail to a unit: plain text from the e-mail channel's mailbox, signed with its name, marked
    as sent by a machine (RFC 3834) so that no auto-reply comes back."""
    msg = EmailMessage(policy=SMTP)
    local, _, host = settings.email_address.partition("@")
    msg["From"] = Address(display_name=settings.email_display_name, username=local, domain=host)
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid(domain=host)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content("\n".join([*lines, "——", settings.email_display_name]) + "\n", charset="utf-8", cte="base64")
    return msg


async def mail_unit(rt: Runtime, reached: str, addresses: Sequence[str], make: Callable[[str], EmailMessage],
                    kind: str, keep_s: float = KEEP_S, **logged: str) -> tuple[int, float | None]:
    """Mail each of a unit's ``addresses`` not yet in the Redis set ``reached`` (``make``: the mail
    for one address): how many were sent, and the server's wait when the server deferred (down,
    busy: the rest wait for the caller's next try). An address whose mailbox is deferred, or that
    has mail queued already (order is kept), gets this one queued for ``keep_s``; one refused for
    good is logged, counted, and not tried again."""
    sent = 0
    for to in addresses:
        if await rt.redis.sismember(reached, to):
            continue
        msg = make(to)
        if await rt.redis.exists(keys.unit_mail_queue(to)):
            await _queue(rt, to, msg, kind, keep_s, time.time(), logged)
        else:
            try:
                await _deliver(rt, to, msg)
            except DeliveryError as exc:
                if exc.retry_after is not None and exc.recipient:
                    await _queue(rt, to, msg, kind, keep_s, time.time() + exc.retry_after, logged)
                elif exc.retry_after is not None:
                    metrics.UNIT_NOTICES.labels(kind, "deferred").inc()
                    log.warning(f"unit_{kind}_deferred", to=mask(to), error=str(exc), **logged)
                    return sent, exc.retry_after
                else:
                    _refused(kind, to, exc, logged)
            else:
                _sent(kind, to, logged)
                sent += 1
        async with rt.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(reached, to)
            pipe.expire(reached, int(SENT_KEEP_S))
            await pipe.execute()
    return sent, None


async def retry_queued(rt: Runtime) -> tuple[int, float | None]:
    """Try again each mailbox whose queue is due, oldest mail first, until its server defers it
    again (then it waits twice as long, at most MAX_PAUSE_S): how many were sent, and the server's
    wait when the server itself deferred (the rest wait for the next call). Mail older than its
    keeping time is dropped, logged and counted ``expired``."""
    sent = 0
    for to in await rt.redis.zrangebyscore(keys.UNIT_MAIL_DUE, "-inf", time.time()):
        queue = keys.unit_mail_queue(to)
        while (head := await rt.redis.lindex(queue, 0)) is not None:
            entry: dict[str, Any] = json.loads(head)
            logged = entry["logged"]
            if time.time() > entry["keep_until"]:
                metrics.UNIT_NOTICES.labels(entry["kind"], "expired").inc()
                log.warning(f"unit_{entry['kind']}_expired", to=mask(to), tries=entry["tries"], **logged)
                await rt.redis.lpop(queue)
                continue
            msg = email.message_from_bytes(base64.b64decode(entry["raw"]), _class=EmailMessage, policy=SMTP)
            try:
                await _deliver(rt, to, msg)
            except DeliveryError as exc:
                if exc.retry_after is not None and exc.recipient:
                    entry["tries"] += 1
                    pause = min(exc.retry_after * 2 ** entry["tries"], MAX_PAUSE_S)
                    await rt.redis.lset(queue, 0, json.dumps(entry, ensure_ascii=False))
                    await rt.redis.zadd(keys.UNIT_MAIL_DUE, {to: time.time() + pause})
                    log.info(f"unit_{entry['kind']}_still_deferred", to=mask(to), tries=entry["tries"], **logged)
                    break
                if exc.retry_after is not None:
                    log.warning("unit_mail_queue_deferred", to=mask(to), error=str(exc))
                    return sent, exc.retry_after
                _refused(entry["kind"], to, exc, logged)
            else:
                _sent(entry["kind"], to, logged)
                sent += 1
            await rt.redis.lpop(queue)
        else:  # emptied: no longer due (unless mail was queued meanwhile)
            await rt.redis.zrem(keys.UNIT_MAIL_DUE, to)
            if await rt.redis.exists(queue):
                await rt.redis.zadd(keys.UNIT_MAIL_DUE, {to: time.time()}, nx=True)
    return sent, None


async def _queue(rt: Runtime, to: str, msg: EmailMessage, kind: str, keep_s: float, due: float,
                 logged: dict[str, str]) -> None:
    """Queue ``msg`` behind the mailbox's others; it is due at ``due`` unless the queue is due sooner."""
    now = time.time()
    entry = {"raw": base64.b64encode(msg.as_bytes()).decode("ascii"), "kind": kind, "keep_until": now + keep_s,
             "tries": 0, "logged": logged}
    queue = keys.unit_mail_queue(to)
    async with rt.redis.pipeline(transaction=True) as pipe:
        pipe.rpush(queue, json.dumps(entry, ensure_ascii=False))
        pipe.expire(queue, int(keep_s + SENT_KEEP_S))
        pipe.zadd(keys.UNIT_MAIL_DUE, {to: due}, nx=True)
        await pipe.execute()
    metrics.UNIT_NOTICES.labels(kind, "queued").inc()
    log.warning(f"unit_{kind}_queued", to=mask(to), **logged)


async def _deliver(rt: Runtime, to: str, msg: EmailMessage) -> None:
    """``msg`` to ``to`` through the e-mail channel's SMTP server (DeliveryError as it says)."""
    settings = rt.settings
    await deliver(settings.email_smtp(), msg, settings.email_address, to, settings.email_timeout_s)


def _sent(kind: str, to: str, logged: dict[str, str]) -> None:
    metrics.UNIT_NOTICES.labels(kind, "sent").inc()
    log.info(f"unit_{kind}_sent", to=mask(to), **logged)


def _refused(kind: str, to: str, exc: DeliveryError, logged: dict[str, str]) -> None:
    metrics.UNIT_NOTICES.labels(kind, "refused").inc()
    log.warning(f"unit_{kind}_refused", to=mask(to), error=str(exc), **logged)
