"""One e-mail (its raw RFC 5322 bytes) → a ``Mail``: who wrote, what, in which thread, what was
attached, and whether it must be ignored (pure: no I/O).

The stdlib parser reads the MIME structure (``policy.compat32``, so header values stay as written);
every header and text part is decoded here, by ``text.decode_bytes``: ``policy.default`` would
decode a ``=?GB2312?B?…?=`` subject with the declared charset and lose its GBK characters.

Never answered nor filed (RFC 3834 and the habits of mail servers): ``Auto-Submitted`` other than
``no``; ``Precedence: bulk/junk/list``; mailing lists (``List-Id``, ``List-Unsubscribe``); an
empty ``Return-Path: <>``; MAILER-DAEMON and postmaster; ``multipart/report`` (bounces, delivery
and read receipts); auto-reply markers some servers add (``X-Autoreply``, ``X-Autorespond``)
or write in the subject (自动回复, Automatic reply, 退信); mail from the mailbox's own address.
"""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from channels.email.text import decode_bytes, html_to_text, strip_quoted
from channels.email.verify import authenticated

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_ENCODED_WORD = re.compile(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=")
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "noreply-dmarc-support"}
_AUTO_SUBJECT = re.compile(
    r"^\s*(自动回复|自動回覆|自动答复|自動答覆|系统退信|退信|休假|Auto(matic)?[ _-]?(Reply|Response)|AutoReply|"
    r"Out of (the )?Office|Undeliverable|Undelivered Mail|Delivery Status Notification|Mail Delivery (Failed|System))",
    re.I,
)
_SIGNATURES = {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}


@dataclass(frozen=True, slots=True)
class Part:
    """One attached file as the mail carried it."""

    name: str
    mime: str
    data: bytes


@dataclass(slots=True)
class Mail:
    message_id: str  # "<id@host>", or one made of the mail's content when it has none
    has_message_id: bool
    sender: str  # the From address, lower-cased ("" when there is none)
    sender_name: str
    subject: str
    date: datetime | None
    text: str  # the writer's words, without the quoted earlier mail
    references: list[str] = field(default_factory=list)  # the thread before this mail, oldest first
    parts: list[Part] = field(default_factory=list)
    ignored: str = ""  # why the mail is neither answered nor filed ("" = it is a letter)
    authenticated: bool = False  # the city's own mail server vouches for ``sender`` (see verify)

    @property
    def key(self) -> str:
        """The mail's de-duplication key: its Message-ID without the angle brackets."""
        return self.message_id.strip("<>")


def header(msg: Message, name: str) -> str:
    """A header's value as the writer meant it: unfolded, encoded words and raw 8-bit decoded."""
    raw = msg.get(name)
    return decode_header_value(raw) if raw is not None else ""


def decode_header_value(raw: object) -> str:
    value = re.sub(r"\r?\n(?=[ \t])", "", str(raw))
    if re.search("[\udc80-\udcff]", value):  # 8-bit bytes in a header (no encoded words): guess
        value = decode_bytes(value.encode("ascii", "surrogateescape"), None)
    if not _ENCODED_WORD.search(value):
        return value.strip()
    try:
        chunks = decode_header(value)
    except (ValueError, IndexError):  # a broken encoded word: keep what was written
        return value.strip()
    return "".join(
        decode_bytes(text, charset) if isinstance(text, bytes) else text for text, charset in chunks
    ).strip()


def message_ids(value: str) -> list[str]:
    return [f"<{m}>" for m in _MESSAGE_ID.findall(value)]


def ignore_reason(msg: Message, sender: str, own_address: str) -> str:
    """Why ``msg`` must be neither answered nor filed, or "" for a letter from a person."""
    if msg.get_content_type() == "multipart/report" or any(
        p.get_content_type() in ("message/delivery-status", "message/disposition-notification")
        for p in msg.walk()
    ):
        return "report"
    if sender and sender.split("@")[0] in _DAEMONS:
        return "mailer_daemon"
    return_path = msg.get("Return-Path")
    if return_path is not None and re.fullmatch(r"\s*<\s*>\s*", str(return_path)):
        return "null_return_path"
    if not sender:
        return "no_sender"
    if own_address and sender == own_address.lower():
        return "own_address"
    if msg.get("List-Id") is not None or msg.get("List-Unsubscribe") is not None:
        return "mailing_list"
    auto = header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return "auto_submitted"
    if header(msg, "Precedence").strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return "precedence"
    if any(msg.get(h) is not None for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return "auto_reply_header"
    if _AUTO_SUBJECT.match(header(msg, "Subject")):
        return "auto_reply_subject"
    return ""


def _filename(part: Message) -> str:
    name = part.get_param("filename", header="content-disposition") or part.get_param("name")
    if isinstance(name, tuple):  # RFC 2231: (charset, language, %-decoded value)
        charset, _, value = name
        raw = value.encode("latin-1", "surrogateescape") if isinstance(value, str) else bytes(value)
        return decode_bytes(raw, charset)
    return decode_header_value(name) if name else ""


def _is_attachment(part: Message) -> bool:
    if part.is_multipart():
        return False
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment" or part.get_content_type() == "message/rfc822":
        return True
    if part.get_content_maintype() == "text" and part.get_content_subtype() in ("plain", "html"):
        return bool(_filename(part)) and disposition != "inline"
    return part.get_content_type() not in _SIGNATURES


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    return decode_bytes(data, part.get_content_charset())


def body_text(part: Message) -> str:
    """The mail's words: text/plain preferred over text/html in each alternative, inline text
    parts in order (Apple Mail splits a body around a photo)."""
    if part.is_multipart():
        subparts = [p for p in part.get_payload() if isinstance(p, Message)]
        if part.get_content_subtype() == "alternative":
            for wanted in ("text/plain", "text/html", "multipart"):
                for sub in subparts:
                    matches = (
                        sub.is_multipart() if wanted == "multipart" else sub.get_content_type() == wanted
                    )
                    if matches and not _is_attachment(sub) and (text := body_text(sub)):
                        return text
            return ""
        return "\n".join(t for sub in subparts if (t := body_text(sub)))
    if _is_attachment(part) or part.get_content_maintype() != "text":
        return ""
    if part.get_content_subtype() == "html":
        return html_to_text(_text_of(part))
    if part.get_content_subtype() == "plain":
        return _text_of(part)
    return ""


def attachments(msg: Message) -> list[Part]:
    found: list[Part] = []
    for part in msg.walk():
        if not _is_attachment(part):
            continue
        if part.get_content_type() == "message/rfc822":  # a mail forwarded as an attachment: kept as .eml
            inner = part.get_payload()
            data = (
                inner[0].as_bytes()
                if isinstance(inner, list) and inner and isinstance(inner[0], Message)
                else b""
            )
            found.append(Part(name=_filename(part) or "forwarded.eml", mime="message/rfc822", data=data))
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            found.append(Part(name=_filename(part), mime=part.get_content_type(), data=payload))
    return found


def parse_mail(
    raw: bytes, own_address: str = "", *, headers_only: bool = False, authserv_id: str = ""
) -> Mail:
    """``raw`` (a whole mail, or only its header with ``headers_only``) as a ``Mail``; its
    ``Authentication-Results`` count when written by ``authserv_id`` (none count without one)."""
    msg = email.message_from_bytes(raw, policy=compat32)
    addresses = getaddresses([header(msg, "From")])
    name, address = addresses[0] if addresses else ("", "")
    sender = address.strip().lower() if "@" in address else ""
    subject = re.sub(r"\s+", " ", header(msg, "Subject")).strip()
    try:
        date = parsedate_to_datetime(header(msg, "Date")) if msg.get("Date") else None
        if date is not None and date.tzinfo is None:  # "-0000": the zone is unknown, take it as UTC
            date = date.replace(tzinfo=UTC)
    except (TypeError, ValueError, IndexError):
        date = None
    ids = message_ids(header(msg, "Message-ID"))
    text = "" if headers_only else strip_quoted(body_text(msg))
    if ids:
        message_id = ids[0]
    else:  # the same mail read twice must get the same key: From, Date, Subject and the body's bytes
        _, _, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
        digest = hashlib.sha256(
            b"\0".join([sender.encode(), str(msg.get("Date", "")).encode(), subject.encode(), body])
        ).hexdigest()[:40]
        message_id = f"<{digest}@no-message-id.invalid>"
    references = message_ids(header(msg, "References"))
    for earlier in message_ids(header(msg, "In-Reply-To")):
        if earlier not in references:
            references.append(earlier)
    return Mail(
        message_id=message_id,
        has_message_id=bool(ids),
        sender=sender,
        sender_name=name.strip(),
        subject=subject,
        date=date,
        text=text,
        references=references,
        parts=[] if headers_only else attachments(msg),
        ignored=ignore_reason(msg, sender, own_address),
        authenticated=authenticated(msg, sender, authserv_id),
    )
