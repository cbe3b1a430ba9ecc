"""IMAP sessions on the mailbox's folder, always read-only (blocking: call them from a thread).

``Mailbox`` is the poller's session: SELECT (read-only), SEARCH and ``BODY.PEEK`` fetches, so
nothing the gateway does shows in the mailbox. ``IdleWatcher`` keeps a second session in IDLE
(RFC 2177) on the same folder and calls ``kick`` when the server announces new mail (EXISTS,
RECENT), so the poller reads it at once instead of at its next round. It checks for news every
``check_s`` seconds (so that stopping is quick) and issues IDLE again every ``renew_s`` (servers
may drop a session idle for 30 minutes). imapclient's errors are translated once, here, into
``MailboxError``.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import structlog
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from config.settings import MailServer

log = structlog.get_logger(__name__)

IDLE_CHECK_S = 1.0  # how often the IDLE session looks for news (and for a stop)
IDLE_RENEW_S = 20 * 60.0  # IDLE is issued again this often (RFC 2177: at least every 29 minutes)
_NEW_MAIL = (b"EXISTS", b"RECENT")


class MailboxError(Exception):
    """The IMAP server could not be reached, refused the login or the folder, or broke off."""


class IdleUnsupported(Exception):
    """The server does not announce IDLE: the mailbox is polled only."""


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


class IdleWatcher:
    """A second session, in IDLE on the folder: ``watch`` calls ``kick`` when mail arrives."""

    def __init__(self, server: MailServer, timeout_s: float) -> None:
        self.mailbox = Mailbox(server, timeout_s)
        self.check_s, self.renew_s = IDLE_CHECK_S, IDLE_RENEW_S
        self.idling = threading.Event()  # in IDLE right now (the tests wait for it)
        self.finished = threading.Event()  # no session runs (nor will, until the next ``watch``)
        self.finished.set()
        self.idles = 0  # IDLE commands issued, over the watcher's life

    def watch(self, stop: threading.Event, kick: Callable[[], None]) -> None:
        """Blocking, in a thread of its own: IDLE until ``stop`` is set, and return. Raises
        ``IdleUnsupported`` when the server has no IDLE, ``MailboxError`` when it fails."""
        self.finished.clear()
        try:
            if stop.is_set():
                return
            if not self.mailbox._call("CAPABILITY", lambda c: c.has_capability("IDLE")):
                raise IdleUnsupported(f"{self.mailbox.server.label} does not announce IDLE")
            self.mailbox.open()  # read-only, like the poller's: nothing is marked
            log.info("email_idle_started", server=self.mailbox.server.label)
            kick()  # what arrived while the session was being opened
            while not stop.is_set():
                self._idle_once(stop, kick)
        finally:
            self.idling.clear()
            self.mailbox.close()
            self.finished.set()

    def _idle_once(self, stop: threading.Event, kick: Callable[[], None]) -> None:
        call = self.mailbox._call
        call("IDLE", lambda c: c.idle())
        self.idles += 1
        self.idling.set()
        renew_at = time.monotonic() + self.renew_s
        early = 0  # answers that came back at once and empty: the server closed the connection
        while not stop.is_set() and time.monotonic() < renew_at:
            started = time.monotonic()
            responses = call("IDLE", lambda c: c.idle_check(timeout=self.check_s))
            if any(r[0] == b"BYE" for r in responses if r):
                raise MailboxError(f"{self.mailbox.server.label} IDLE: the server said BYE")
            if any(len(r) > 1 and r[1] in _NEW_MAIL for r in responses):
                kick()
            early = early + 1 if not responses and time.monotonic() - started < self.check_s / 2 else 0
            if early >= 3:
                raise MailboxError(f"{self.mailbox.server.label} IDLE: connection closed")
        self.idling.clear()
        call("DONE", lambda c: c.idle_done())
