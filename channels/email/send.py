"""Replies by SMTP, in the writer's thread.

Every mail read is remembered (``Threads``: its Message-ID, subject and References, for
``HOTLINE_EMAIL_THREAD_DAYS``) and every reply names the mail it answers (``fields.reply_to``),
so it goes out as ``Re: <subject>`` with ``In-Reply-To`` and ``References``. The ticket receipt
also ties the ticket to that mail: status updates and the survey, which come days later with only
the ticket's number, find the same thread. Bot mail carries ``Auto-Submitted`` (RFC 3834:
``auto-replied`` for answers, ``auto-generated`` for status updates and surveys) and
``X-Auto-Response-Suppress``, so other robots do not answer it; an operator's reply is a person's.

Every mail sent is remembered too, by its Message-ID, with the address it went to: a mail that
names one of them (In-Reply-To, References) is a reply from whoever received it
(``Threads.replying``). Those ids are keyed hashes of the outbound message's id (the same on a
redelivery) with a random key of this installation, kept in Redis: nobody who did not receive the
mail can know or compute them (a plain hash of ``survey:<n>`` could be).

SMTP errors are translated once (``delivery_error``): a network error or a 4xx answer is retried
by the gateway; a refused recipient or a refused message (5xx) is final; a refused login or
sender is the operators' fix and is retried slowly meanwhile.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

import aiosmtplib

from channels.base import DeliveryError, OutboundMessage, utcnow
from channels.email.parse import Mail
from config.settings import MailServer

TOO_LARGE = (
    "您的来信超过{limit_mb}MB，系统无法接收。请精简附件（例如压缩照片、分几封发送）后重新来信，"
    "或拨打12345热线反映。"
)
REPLY_WITH = "请直接回复本邮件，正文写“{first}”{rest}即可。"
SUBJECT_TICKET = "【12345】工单 {ticket_id} 办理进展"
SUBJECT_OTHER = "【12345】来信回复"
_IS_REPLY = re.compile(r"^\s*(re|回复|答复|回覆|aw|sv)\s*[:：]", re.I)
_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")
MAX_REFERENCES = 20  # the thread's ids carried on (the first and the most recent ones)
MAX_CHECKED = 50  # a reply's most recent ids looked up among the ones sent
ID_KEY = "hl:email:id_key"  # the random key our Message-IDs are made with (never expires)
RETRY_S = 30.0  # a network error or a busy server
FIX_RETRY_S = 300.0  # a refused login or sender: slow retries until an operator fixes the settings


def mask(address: str) -> str:
    """An address fit for logs: the first letter and the domain (the logs mask addresses again)."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


@dataclass(slots=True)
class Thread:
    """What a reply needs of the mail it answers."""

    message_id: str
    subject: str
    references: list[str] = field(default_factory=list)


class Threads:
    """Mail read, by Message-ID, and each ticket's first mail, kept in Redis."""

    def __init__(self, redis: Any, keep_days: float) -> None:
        self.redis = redis
        self.ttl = max(1, int(keep_days * 24 * 3600))
        self._id_key: bytes | None = None

    @staticmethod
    def key(message_id: str) -> str:
        return "hl:email:thread:" + hashlib.sha256(message_id.encode()).hexdigest()[:32]

    @staticmethod
    def ticket_key(ticket_id: str) -> str:
        return f"hl:email:ticket:{ticket_id}"

    @staticmethod
    def sent_key(message_id: str) -> str:
        return "hl:email:sent:" + hashlib.sha256(message_id.encode()).hexdigest()[:32]

    async def message_id(self, out_id: str, domain: str) -> str:
        """The Message-ID of the mail for the outbound message ``out_id``: the same every time
        it is sent, and unguessable (see the module's docstring)."""
        if self._id_key is None:
            await self.redis.set(ID_KEY, secrets.token_hex(32), nx=True)
            key = await self.redis.get(ID_KEY)
            self._id_key = key if isinstance(key, bytes) else str(key).encode()
        digest = hmac.new(self._id_key, out_id.encode(), hashlib.sha256).hexdigest()[:32]
        return f"<{digest}.hotline@{domain}>"

    async def sent(self, message_id: str, to: str, ticket_id: str = "") -> None:
        """``message_id`` went to ``to`` (about ``ticket_id``, if any): a mail naming it is that
        address's reply, in that ticket's thread."""
        value = to.lower() + (f"\t{ticket_id}" if ticket_id else "")
        await self.redis.set(self.sent_key(message_id), value, ex=self.ttl)

    async def replying(self, references: list[str], address: str) -> tuple[bool, str]:
        """Whether one of ``references`` (a mail's In-Reply-To and References) is a Message-ID the
        gateway sent to ``address``, and the ticket the latest such mail was about ("" if none)."""
        ids = references[-MAX_CHECKED:]
        if not ids or not address:
            return False, ""
        found = await self.redis.mget([self.sent_key(i) for i in ids])
        wanted, ours, ticket = address.lower(), False, ""
        for value in found:  # oldest first: the latest mail's ticket wins
            if not value:
                continue
            to, _, about = (value.decode() if isinstance(value, bytes) else value).partition("\t")
            if to == wanted:
                ours, ticket = True, about or ticket
        return ours, ticket

    def remember_command(self, mail: Mail) -> list[str | int | float]:
        """The Redis command that remembers ``mail`` (run with its enqueue, only if it is new)."""
        data = json.dumps(
            {"message_id": mail.message_id, "subject": mail.subject, "references": mail.references},
            ensure_ascii=False,
        )
        return ["SET", self.key(mail.message_id), data, "EX", self.ttl]

    async def remember(self, mail: Mail) -> None:
        await self.redis.execute_command(*self.remember_command(mail))

    async def tie(self, ticket_id: str, message_id: str) -> None:
        """The ticket's later messages answer ``message_id`` (the mail it was filed from)."""
        await self.redis.set(self.ticket_key(ticket_id), message_id, ex=self.ttl, nx=True)

    async def find(self, out: OutboundMessage) -> Thread | None:
        reply_to = out.fields.get("reply_to", "")
        if out.ticket_id and (out.kind == "ticket_filed" and reply_to):
            await self.tie(out.ticket_id, reply_to)
        if not reply_to and out.ticket_id:
            reply_to = await self.redis.get(self.ticket_key(out.ticket_id)) or ""
        if not reply_to:
            return None
        raw = await self.redis.get(self.key(reply_to))
        if not raw:
            return Thread(message_id=reply_to, subject="")
        data = json.loads(raw)
        return Thread(
            message_id=data["message_id"],
            subject=data.get("subject", ""),
            references=list(data.get("references", [])),
        )


def subject_of(out: OutboundMessage, thread: Thread | None) -> str:
    if thread is not None and thread.subject:
        return thread.subject if _IS_REPLY.match(thread.subject) else f"Re: {thread.subject}"
    if out.ticket_id:
        return SUBJECT_TICKET.format(ticket_id=out.ticket_id)
    return f"Re: {SUBJECT_OTHER}" if thread is not None else SUBJECT_OTHER


def body_of(out: OutboundMessage, display_name: str) -> str:
    lines = [out.text.strip()]
    if out.buttons:  # no buttons in a mail: the writer answers with one of the words
        first, *others = out.buttons
        rest = ("、" + "、".join(f"“{b}”" for b in others[:-1]) if others[:-1] else "") + (
            f"或“{others[-1]}”" if others else ""
        )
        lines += ["", REPLY_WITH.format(first=first, rest=rest)]
    lines += ["", "——", display_name]
    return "\n".join(lines) + "\n"


def compose(
    out: OutboundMessage, thread: Thread | None, address: str, display_name: str, message_id: str
) -> EmailMessage:
    """The mail for ``out``: From the mailbox, in ``thread`` when there is one, text/plain UTF-8."""
    to = out.sender
    if not _ADDRESS.fullmatch(to):
        raise DeliveryError("not an e-mail conversation", retry_after=None)
    msg = EmailMessage(policy=SMTP)
    local, _, host = address.partition("@")
    msg["From"] = Address(display_name=display_name, username=local, domain=host)
    msg["To"] = to
    msg["Subject"] = subject_of(out, thread)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id
    if thread is not None and not thread.message_id.endswith(".invalid>"):
        refs = [r for r in thread.references if r != thread.message_id] + [thread.message_id]
        if len(refs) > MAX_REFERENCES:
            refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
        msg["In-Reply-To"] = thread.message_id
        msg["References"] = " ".join(refs)
    if out.kind != "operator":
        msg["Auto-Submitted"] = "auto-replied" if out.kind in ("reply", "ticket_filed") else "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office or receipts back to us
    msg.set_content(body_of(out, display_name), charset="utf-8", cte="base64")
    return msg


def delivery_error(exc: Exception) -> DeliveryError:
    """aiosmtplib's errors, translated once: what the gateway should do with the message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        if codes and all(code >= 500 for code in codes):
            return DeliveryError(f"recipient refused ({codes[0]})", retry_after=None)
        return DeliveryError(f"recipient deferred ({codes[0] if codes else '?'})", retry_after=RETRY_S, recipient=True)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError("SMTP login refused: check HOTLINE_EMAIL_SMTP_URL", retry_after=FIX_RETRY_S)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryError(f"SMTP server: {exc} (check HOTLINE_EMAIL_SMTP_URL)", retry_after=FIX_RETRY_S)
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        retry = RETRY_S if exc.code < 500 else FIX_RETRY_S
        return DeliveryError(f"sender refused ({exc.code}): check HOTLINE_EMAIL_ADDRESS", retry_after=retry)
    if isinstance(exc, aiosmtplib.SMTPResponseException):  # DATA refused (spam, size), HELO, …
        if exc.code >= 500:
            return DeliveryError(f"mail refused ({exc.code})", retry_after=None)
        return DeliveryError(f"SMTP server busy ({exc.code})", retry_after=RETRY_S)
    # connection refused, TLS, timeout, disconnect
    return DeliveryError(f"SMTP server unreachable ({type(exc).__name__})", retry_after=RETRY_S)


def _start_tls(server: MailServer) -> bool | None:
    """STARTTLS required (smtp+starttls://), never (smtp:// to a local relay), or when offered
    (smtp:// to a relay elsewhere, which may send no login: see ``config.settings.mail_server``)."""
    if server.tls == "starttls":
        return True
    if server.tls == "none":
        return False if server.host in ("127.0.0.1", "::1", "localhost") else None
    return False  # implicit TLS already


async def deliver(server: MailServer, msg: EmailMessage, sender: str, to: str, timeout_s: float) -> None:
    try:
        await aiosmtplib.send(
            msg,
            sender=sender,
            recipients=[to],
            hostname=server.host,
            port=server.port,
            username=server.username or None,
            password=server.password.get_secret_value() or None,
            use_tls=server.tls == "implicit",
            start_tls=_start_tls(server),
            timeout=timeout_s,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise delivery_error(exc) from exc
