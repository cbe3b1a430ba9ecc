"""The mailbox poller: new mail in the IMAP folder → letters on the inbound stream, each once.

Where it stands is kept in Redis (``cursor``: the folder's UIDVALIDITY and the last UID handed
over), never in the mailbox: the folder is opened read-only and bodies are fetched with
``BODY.PEEK``, so people may read the mailbox by hand and nothing the poller does shows. The
cursor moves past a mail only once the mail is enqueued (or known to be ignored): with Redis or the
gateway down, mail waits in the mailbox and is read when they are back. One poller works at a time
across processes (a lock with an expiry, renewed as it goes). A new UIDVALIDITY (the folder was
recreated or moved) makes every UID meaningless: the folder is read again from a day before the
last poll, and Message-IDs already seen are dropped as duplicates.

imapclient is synchronous: every exchange with the server runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import imaplib
import re
import ssl
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from redis.exceptions import RedisError

from channels.base import (
    Attachment,
    BadRequest,
    ChannelContext,
    InboundMessage,
    OutboundMessage,
    Then,
    letter_text,
    stop_task,
    utcnow,
)
from channels.email.parse import Mail, Part, parse_mail
from channels.email.send import TOO_LARGE, Threads, mask
from channels.media import MediaRecord, normalise_image, save_record, write_file
from config.settings import MailServer

log = structlog.get_logger(__name__)

NAME = "email"
IGNORED = "hl:email:ignored"  # reason → how many mails were ignored for it (the operators' counter)
LOCK_MS = 120_000
FETCH_BATCH = 50  # mails handled per round at most; the next round goes on
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")
_LOCK_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_LOCK_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class MailboxError(Exception):
    """The IMAP server could not be reached, refused the login or the folder, or broke off."""


class PollInterrupted(Exception):
    """Redis or the gateway is down: the round stops, the cursor stays where it is."""


class Mailbox:
    """One IMAP session on the folder, read-only (blocking: call it from a thread)."""

    def __init__(self, server: MailServer, timeout_s: float) -> None:
        self.server, self.timeout_s = server, timeout_s
        self.client: IMAPClient | None = None

    def _call(self, what: str, fn: Callable[[IMAPClient], Any]) -> Any:
        try:
            if self.client is None:
                self.client = self._connect()
            return fn(self.client)
        except (IMAPClientError, imaplib.IMAP4.error, OSError) as exc:  # OSError: socket, TLS, timeout
            self.close()
            raise MailboxError(f"{self.server.label} {what}: {type(exc).__name__}: {exc}") from exc

    def _connect(self) -> IMAPClient:
        server = self.server
        context = ssl.create_default_context()
        client = IMAPClient(
            server.host,
            port=server.port,
            ssl=server.tls == "implicit",
            ssl_context=context,
            timeout=self.timeout_s,
        )
        try:
            if server.tls == "starttls":
                client.starttls(context)
            client.login(server.username, server.password.get_secret_value())
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        return client

    def open(self) -> tuple[int, int]:
        """Select the folder (again: new mail shows), read-only: (UIDVALIDITY, UIDNEXT)."""
        info = self._call("SELECT", lambda c: c.select_folder(self.server.folder, readonly=True))
        return int(info[b"UIDVALIDITY"]), int(info.get(b"UIDNEXT") or 0)

    def uids_after(self, uid: int) -> list[int]:
        # "n:*" names the last mail even when its UID is below n: filter
        found = self._call("SEARCH", lambda c: c.search(["UID", f"{uid + 1}:*"]))
        return sorted(u for u in found if u > uid)

    def uids_since(self, day: date) -> list[int]:
        return sorted(self._call("SEARCH", lambda c: c.search(["SINCE", day])))

    def sizes(self, uids: list[int]) -> dict[int, int]:
        found = self._call("FETCH", lambda c: c.fetch(uids, ["RFC822.SIZE"]))
        return {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in found.items()}

    def fetch(self, uid: int, headers_only: bool = False) -> bytes | None:
        """The mail's bytes (or its header), without setting \\Seen; None when it is gone."""
        item = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        found = self._call("FETCH", lambda c: c.fetch([uid], [item]))
        data = found.get(uid, {})
        raw = data.get(b"BODY[HEADER]" if headers_only else b"BODY[]")
        return bytes(raw) if raw is not None else None

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):  # closing a session that broke: nothing to report
                client.logout()
            with contextlib.suppress(Exception):
                client.shutdown()


def _report_end(task: asyncio.Task[None]) -> None:
    """A poller that stopped for anything but a shutdown reads no more mail: say so loudly."""
    if not task.cancelled() and task.exception() is not None:
        log.error("email_poller_stopped", error=repr(task.exception()))


class Poller:
    """Reads the mailbox every ``HOTLINE_EMAIL_POLL_S`` seconds (see the module's docstring)."""

    def __init__(self, ctx: ChannelContext, threads: Threads) -> None:
        settings = ctx.settings
        self.ctx, self.threads, self.settings = ctx, threads, settings
        self.server: MailServer = settings.email_imap()
        self.mailbox = Mailbox(self.server, settings.email_timeout_s)
        ident = f"{self.server.username}@{self.server.host}:{self.server.port}/{self.server.folder}"
        box = hashlib.sha256(ident.encode()).hexdigest()[:16]
        self.cursor_key = f"hl:email:cursor:{box}"
        self.lock_key = f"hl:email:poll_lock:{box}"
        self.folder: Path = settings.media_folder / NAME
        self.task: asyncio.Task[None] | None = None
        self.kick = asyncio.Event()
        self.token = ""

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())
        self.task.add_done_callback(_report_end)

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and not await stop_task(task, 10):
            log.warning("email_poller_not_stopped")
        await asyncio.to_thread(self.mailbox.close)

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except (MailboxError, PollInterrupted, RedisError, OSError) as exc:
                log.warning("email_poll_failed", error=str(exc))
            except Exception as exc:  # noqa: BLE001  (a bug must not end the reading of the mailbox)
                log.error("email_poll_error", error=repr(exc))  # the round is tried again next time
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.kick.wait(), self.settings.email_poll_s)
            self.kick.clear()

    # --- one round ----------------------------------------------------------------------------
    async def poll_once(self) -> int:
        """Hand over the mail that arrived since the cursor; returns how many mails were handled
        (letters enqueued, duplicates, ignored ones). 0 also when another process holds the lock."""
        redis = self.ctx.redis
        self.token = hashlib.sha256(f"{time.time_ns()}:{id(self)}".encode()).hexdigest()[:16]
        if not await redis.set(self.lock_key, self.token, nx=True, px=LOCK_MS):
            return 0
        try:
            return await self._round()
        finally:
            with contextlib.suppress(RedisError, OSError):
                await redis.eval(_LOCK_RELEASE, 1, self.lock_key, self.token)

    async def _round(self) -> int:
        redis = self.ctx.redis
        uidvalidity, uidnext = await asyncio.to_thread(self.mailbox.open)
        cursor = await redis.hgetall(self.cursor_key)
        if not cursor:  # first start: recent mail only
            days = self.settings.email_backlog_days
            start_uid = max(uidnext - 1, 0)
            uids = (
                await asyncio.to_thread(self.mailbox.uids_since, date.today() - timedelta(days=days))
                if days
                else []
            )
        elif int(cursor.get("uidvalidity", 0)) != uidvalidity:
            polled = float(cursor.get("polled_at") or time.time())
            since = datetime.fromtimestamp(polled).date() - timedelta(days=1)
            log.warning(
                "email_uidvalidity_changed",
                old=cursor.get("uidvalidity"),
                new=uidvalidity,
                reread_since=str(since),
            )
            start_uid = max(uidnext - 1, 0)
            uids = await asyncio.to_thread(self.mailbox.uids_since, since)
        else:
            start_uid = int(cursor.get("uid", 0))
            uids = await asyncio.to_thread(self.mailbox.uids_after, start_uid)
        uids = uids[:FETCH_BATCH]
        sizes = await asyncio.to_thread(self.mailbox.sizes, uids) if uids else {}
        handled = 0
        for uid in uids:
            await self._handle(uid, sizes.get(uid, 0))
            handled += 1
            await self._advance(uidvalidity, uid)
        if not uids or len(uids) < FETCH_BATCH:
            # all read: a folder read again (first start, new UIDVALIDITY) goes on from its end
            last = max([start_uid, *uids])
            await redis.hset(
                self.cursor_key, mapping={"uidvalidity": uidvalidity, "uid": last, "polled_at": time.time()}
            )
        else:
            self.kick.set()  # more waiting: the next round at once
        return handled

    async def _advance(self, uidvalidity: int, uid: int) -> None:
        redis = self.ctx.redis
        await redis.hset(self.cursor_key, mapping={"uidvalidity": uidvalidity, "uid": uid})
        await redis.eval(_LOCK_RENEW, 1, self.lock_key, self.token, LOCK_MS)

    async def _handle(self, uid: int, size: int) -> None:
        too_large = size > self.settings.email_max_bytes
        raw = await asyncio.to_thread(self.mailbox.fetch, uid, too_large)
        if raw is None:  # expunged between SEARCH and FETCH
            return
        try:
            mail = parse_mail(raw, self.settings.email_address, headers_only=too_large)
        except Exception as exc:  # noqa: BLE001  (a mail no rule foresaw must not stop the mailbox)
            log.error("email_unreadable", uid=uid, error=repr(exc))
            await self.ctx.redis.hincrby(IGNORED, "unreadable", 1)
            return
        if mail.ignored:
            log.info("email_ignored", uid=uid, reason=mail.ignored, sender=mask(mail.sender))
            await self.ctx.redis.hincrby(IGNORED, mail.ignored, 1)
            return
        if too_large:
            await self._too_large(mail, size)
            return
        attachments, dropped = await self._store(mail)
        meta = {"subject": mail.subject[:200], "sender_name": mail.sender_name[:100]}
        if dropped:
            meta["attachments_dropped"] = str(dropped)
            log.info("email_attachments_dropped", uid=uid, kept=len(attachments), dropped=dropped)
        msg = InboundMessage(
            channel=NAME,
            channel_message_id=mail.key,
            sender=mail.sender,
            received_at=min(mail.date, utcnow()) if mail.date else utcnow(),
            text=letter_text(mail.subject, mail.text),  # a letter written in its subject alone (如题)
            title=mail.subject or None,
            attachments=attachments,
            reply_to=mail.message_id,
            letter=True,
            meta=meta,
        )
        await self._enqueue(msg, then=Then([self.threads.remember_command(mail)]))
        log.info("email_received", uid=uid, sender=mask(mail.sender), attachments=len(attachments))

    async def _enqueue(self, msg: InboundMessage, then: Then) -> None:
        try:
            await self.ctx.enqueue(msg, then=then)
        except (RedisError, OSError) as exc:
            raise PollInterrupted(f"enqueue: {exc}") from exc
        except Exception as exc:
            # The gateway's own error for "Redis is down, nothing accepted" (a 503), which this
            # layer cannot import: the round stops and the mail is read again later.
            if getattr(exc, "status_code", None) == 503:
                raise PollInterrupted(f"enqueue: {exc}") from exc
            raise

    async def _too_large(self, mail: Mail, size: int) -> None:
        """Tell the writer the mail was too large to read (and go on: it stays in the mailbox)."""
        log.warning(
            "email_too_large", sender=mask(mail.sender), size=size, max_bytes=self.settings.email_max_bytes
        )
        limit_mb = max(1, self.settings.email_max_bytes // (1024 * 1024))
        out = OutboundMessage(
            id=f"email:too_large:{mail.key}",
            conversation_key=f"{NAME}:{mail.sender}",
            channel=NAME,
            kind="reply",
            text=TOO_LARGE.format(limit_mb=limit_mb),
            fields={"reply_to": mail.message_id},
        )
        try:
            await self.threads.remember(mail)
            await self.ctx.publish(out)
        except (RedisError, OSError) as exc:
            raise PollInterrupted(f"publish: {exc}") from exc

    async def _store(self, mail: Mail) -> tuple[list[Attachment], int]:
        """Keep the mail's files like the other channels' media; returns them and how many were left out."""
        keep = mail.parts[: self.settings.email_max_attachments]
        out = []
        for i, part in enumerate(keep):
            try:
                out.append(await self._store_one(mail, i, part))
            except (RedisError, OSError) as exc:  # a full disk or Redis down: the mail waits
                raise PollInterrupted(f"attachment: {exc}") from exc
        return out, len(mail.parts) - len(keep)

    async def _store_one(self, mail: Mail, index: int, part: Part) -> Attachment:
        # the same mail read twice gets the same references (and overwrites the same files)
        ident = hashlib.sha256(f"{mail.key}\0{index}".encode()).hexdigest()[:32]
        ref = f"{NAME}:{ident}"
        kind, mime, content = "file", part.mime, part.data
        suffix = Path(part.name).suffix.lower()
        suffix = suffix if _SAFE_SUFFIX.fullmatch(suffix) else ".bin"
        if part.mime.startswith("image/"):
            try:  # decoded and saved again: upright, shrunk, without EXIF (no GPS position)
                content, mime = await asyncio.to_thread(
                    normalise_image, part.data, self.settings.media_max_side
                )
                kind, suffix = "image", ".png" if mime == "image/png" else ".jpg"
            except BadRequest:  # not an image it claims to be: kept as a file, never shown inline
                mime = "application/octet-stream"
        elif part.mime.startswith(("audio/", "video/")):
            kind = part.mime.split("/")[0]
        path = self.folder / ident[:2] / f"{ident}{suffix}"
        await asyncio.to_thread(write_file, path, content)
        record = MediaRecord(path=str(path), mime=mime, size=len(content), owner=f"{NAME}:{mail.sender}")
        await save_record(self.ctx.redis, ref, record, self.settings.media_keep_days)
        name = part.name or f"附件{index + 1}{suffix}"
        return Attachment(kind=kind, mime=mime, ref=ref, name=name[:200])  # type: ignore[arg-type]
