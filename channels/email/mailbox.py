"""The mailbox poller: new mail in the IMAP folder → letters on the inbound stream, each once.

Where it stands is kept in Redis (``cursor``: the folder's UIDVALIDITY and the last UID handed
over), never in the mailbox: the folder is opened read-only and bodies are fetched with
``BODY.PEEK``, so people may read the mailbox by hand and nothing the poller does shows. The
cursor moves past a mail only once the mail is enqueued (or known to be ignored): with Redis or the
gateway down, mail waits in the mailbox and is read when they are back. One poller works at a time
across processes (a ``Lease``, renewed as it goes). A new UIDVALIDITY (the folder was recreated or
moved) makes every UID meaningless: the folder is read again from a day before the last poll, and
Message-IDs already seen are dropped as duplicates.

The folder is read every ``HOTLINE_EMAIL_POLL_S`` seconds and, where the server offers IDLE (and
``HOTLINE_EMAIL_IDLE`` is on), as soon as mail arrives: one process at a time (a lease of its own)
keeps a second session in IDLE (``imap.IdleWatcher``) that wakes the poller up. A server without
IDLE, or an IDLE session that fails, leaves the periodic poll, which goes on regardless.

Each letter says whether its From address is believed (``meta["sender_verified"]``, ``yes`` or
``no``): a reply naming a Message-ID the gateway sent to that address, or a mail the city's own
mail server vouches for (``verify``). The bot lets only those answer a survey.

imapclient is synchronous: every exchange with the server runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import structlog
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
from channels.email.imap import IdleUnsupported, IdleWatcher, Mailbox, MailboxError
from channels.email.parse import Mail, Part, parse_mail
from channels.email.send import TOO_LARGE, Threads, mask
from channels.lease import Lease
from channels.media import MediaRecord, normalise_image, save_record, write_file
from config.settings import MailServer

log = structlog.get_logger(__name__)

NAME = "email"
IGNORED = "hl:email:ignored"  # reason → how many mails were ignored for it (the operators' counter)
LOCK_MS = 120_000
IDLE_LEASE_MS = 60_000  # the IDLE session's lease; renewed every third of it
IDLE_RETRY_S = 60.0  # a failed IDLE session (or another process's) is tried again this often
BUSY_RETRY_S = 1.0  # woken up while another process reads: try again this soon
FETCH_BATCH = 50  # mails handled per round at most; the next round goes on
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")

__all__ = ["IGNORED", "NAME", "Mailbox", "MailboxError", "PollInterrupted", "Poller"]


class PollInterrupted(Exception):
    """Redis or the gateway is down: the round stops, the cursor stays where it is."""


def _report_end(task: asyncio.Task[None]) -> None:
    """A poller that stopped for anything but a shutdown reads no more mail: say so loudly."""
    if not task.cancelled() and task.exception() is not None:
        log.error("email_poller_stopped", error=repr(task.exception()))


class Poller:
    """Reads the mailbox every ``HOTLINE_EMAIL_POLL_S`` seconds, and when IDLE says mail came (see
    the module's docstring)."""

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
        self.busy = False  # the last round found another process reading
        self.idle = IdleWatcher(self.server, settings.email_timeout_s) if settings.email_idle else None
        self.idle_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="email-idle")
        self.idle_lease = Lease(ctx.redis, f"hl:email:idle_lock:{box}", IDLE_LEASE_MS)
        self.idle_task: asyncio.Task[None] | None = None
        self.stopping = threading.Event()  # the IDLE thread looks at it
        self.session_stop = threading.Event()  # the current IDLE session's own stop

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())
        self.task.add_done_callback(_report_end)
        if self.idle is not None:
            self.idle_task = asyncio.create_task(self.watch())
            self.idle_task.add_done_callback(_report_end)

    async def stop(self) -> None:
        self.stopping.set()
        self.session_stop.set()
        for name, task in (("idle", self.idle_task), ("poller", self.task)):
            if task is not None and not await stop_task(task, 10):
                log.warning(f"email_{name}_not_stopped")
        self.task = self.idle_task = None
        if self.idle is not None:  # its thread ends within a second and logs out
            await asyncio.to_thread(self.idle.finished.wait, 10)
            with contextlib.suppress(RedisError, OSError):
                await self.idle_lease.release()
        self.idle_thread.shutdown(wait=False)
        await asyncio.to_thread(self.mailbox.close)

    async def run(self) -> None:
        kicked = False
        while True:
            try:
                await self.poll_once()
            except (MailboxError, PollInterrupted, RedisError, OSError) as exc:
                log.warning("email_poll_failed", error=str(exc))
            except Exception as exc:  # noqa: BLE001  (a bug must not end the reading of the mailbox)
                log.error("email_poll_error", error=repr(exc))  # the round is tried again next time
            # woken up for new mail while another process was reading: soon again, not in 30 s
            retry = kicked and self.busy
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.kick.wait(), BUSY_RETRY_S if retry else self.settings.email_poll_s
                )
            kicked = self.kick.is_set() or retry
            self.kick.clear()

    # --- IDLE ---------------------------------------------------------------------------------
    async def watch(self) -> None:
        """Keep one IDLE session on the folder (one process at a time: a lease), waking the
        poller up when mail arrives; without IDLE, or while it fails, the poll goes on alone."""
        assert self.idle is not None
        loop = asyncio.get_running_loop()

        def kick() -> None:  # called from the IDLE thread
            with contextlib.suppress(RuntimeError):  # the loop is closing: nothing to wake up
                loop.call_soon_threadsafe(self.kick.set)

        quiet = False  # a failure was logged: the same again is not (a new one after IDLE worked is)
        while not self.stopping.is_set():
            idles = self.idle.idles
            try:
                if await self.idle_lease.acquire():
                    await self._idle_session(kick)
            except IdleUnsupported as exc:
                log.info("email_idle_unsupported", error=str(exc), poll_s=self.settings.email_poll_s)
                return
            except Exception as exc:  # noqa: BLE001  (IDLE only hastens the poll, which goes on regardless)
                if not quiet or self.idle.idles > idles:
                    known = isinstance(exc, MailboxError | RedisError | OSError)
                    (log.warning if known else log.error)(
                        "email_idle_failed",
                        error=str(exc) if known else repr(exc),
                        poll_s=self.settings.email_poll_s,
                    )
                quiet = True
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await self.idle_lease.release()
            await asyncio.sleep(IDLE_RETRY_S)

    async def _idle_session(self, kick: Callable[[], None]) -> None:
        """The watcher in its thread while the lease holds; raises what the watcher raised."""
        assert self.idle is not None
        self.session_stop = stop = threading.Event()
        if self.stopping.is_set():
            return
        # a thread of its own: the session blocks for hours, and would hold one of the default
        # executor's few threads that every other blocking call shares
        session = asyncio.get_running_loop().run_in_executor(self.idle_thread, self.idle.watch, stop, kick)
        session.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved below or dropped
        try:
            while not session.done():
                await asyncio.wait({session}, timeout=IDLE_LEASE_MS / 3000)
                if not session.done() and not await self.idle_lease.renew():
                    stop.set()  # another process watches now
            session.result()
        finally:
            stop.set()
            with contextlib.suppress(Exception):  # only waiting for its end (not on a cancel)
                await asyncio.wait({session}, timeout=10)

    # --- one round ----------------------------------------------------------------------------
    async def poll_once(self) -> int:
        """Hand over the mail that arrived since the cursor; returns how many mails were handled
        (letters enqueued, duplicates, ignored ones). 0 also when another process holds the lease."""
        lease = Lease(self.ctx.redis, self.lock_key, LOCK_MS)
        self.busy = not await lease.acquire()
        if self.busy:
            return 0
        try:
            return await self._round(lease)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await lease.release()

    async def _round(self, lease: Lease) -> int:
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
            await self._advance(uidvalidity, uid, lease)
        if not uids or len(uids) < FETCH_BATCH:
            # all read: a folder read again (first start, new UIDVALIDITY) goes on from its end
            last = max([start_uid, *uids])
            await redis.hset(
                self.cursor_key, mapping={"uidvalidity": uidvalidity, "uid": last, "polled_at": time.time()}
            )
        else:
            self.kick.set()  # more waiting: the next round at once
        return handled

    async def _advance(self, uidvalidity: int, uid: int, lease: Lease) -> None:
        await self.ctx.redis.hset(self.cursor_key, mapping={"uidvalidity": uidvalidity, "uid": uid})
        if not await lease.renew():  # expired while this round stalled: another may be reading
            raise PollInterrupted("the mailbox lease was lost")

    async def _handle(self, uid: int, size: int) -> None:
        too_large = size > self.settings.email_max_bytes
        raw = await asyncio.to_thread(self.mailbox.fetch, uid, too_large)
        if raw is None:  # expunged between SEARCH and FETCH
            return
        try:
            mail = parse_mail(
                raw,
                self.settings.email_address,
                headers_only=too_large,
                authserv_id=self.settings.email_authserv_id,
            )
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
        # From is believed for a reply in our own thread, or where the city's mail server vouches
        in_thread, ticket_id = await self.threads.replying(mail.references, mail.sender)
        verified = mail.authenticated or in_thread
        meta = {
            "subject": mail.subject[:200],
            "sender_name": mail.sender_name[:100],
            "sender_verified": "yes" if verified else "no",
        }
        if ticket_id:  # a reply to our mail about this ticket: more words on it (docs/bot.md, 补充)
            meta["thread_ticket"] = ticket_id
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
        log.info(
            "email_received",
            uid=uid,
            sender=mask(mail.sender),
            attachments=len(attachments),
            sender_verified=verified,
        )

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
