"""Real mail servers on loopback for the e-mail channel's tests.

``Dovecot``: Debian's IMAP server (``make mailserver`` installs it), started with its own minimal
configuration in a temporary folder (plaintext login on 127.0.0.1, users in a passwd file, maildirs
under the folder): no system service or file under /etc is touched. Test mail is delivered with
IMAP APPEND, as a mail server's delivery agent would put it in the folder.

``SmtpSink``: aiosmtpd's SMTP server collecting what the adapter sends; a recipient named
``refuse-*`` is answered 550 (no such user), ``defer-*`` 451 (try again later), and so is an
address a test puts in ``handler.deferring`` (a mailbox full for a while).
"""

from __future__ import annotations

import email
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

PASSWORD = "test-mail-pass-0123"
MAX_USERS = 500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)), None
    )


class Dovecot:
    """A private Dovecot on 127.0.0.1; each test gets its own user (``new_user``)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        # under /tmp with o+x: Dovecot's login process runs as dovenull and must reach base_dir
        self.root = Path(tempfile.mkdtemp(prefix="hotline-dovecot-", dir="/tmp"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.passwd = self.root / "passwd"
        self.users = 0
        self.process: subprocess.Popen[bytes] | None = None

    def _conf(self) -> str:
        root = self.root
        if os.geteuid() == 0:  # Dovecot will not run logins or mail as root: its own users
            login_user, internal_user, mail_user = "dovenull", "dovecot", "mail"
        else:  # an unprivileged Dovecot runs everything as whoever started it
            login_user = internal_user = mail_user = pwd.getpwuid(os.geteuid()).pw_name
        return f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = hotline-test-{self.port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/home/%u/Maildir
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_user}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={root}/home/%u
}}
"""

    def start(self) -> None:
        conf = self.root / "dovecot.conf"
        conf.write_text(self._conf())
        # every user the tests will need, now: Dovecot notices a changed passwd file by its mtime,
        # which a test adding a user within the same second would not move
        self.passwd.write_text(
            "".join(f"{self._name(i)}:{{PLAIN}}{PASSWORD}\n" for i in range(1, MAX_USERS + 1))
        )
        home = self.root / "home"
        home.mkdir()
        if os.geteuid() == 0:
            shutil.chown(home, "mail", "mail")
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited: {self.process.stderr.read().decode() if self.process.stderr else ''}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not answer within 15 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _name(i: int) -> str:
        return f"mayor{i}@city.gov.cn"

    def new_user(self) -> str:
        """A mailbox no other test used (its folders are created on first login)."""
        self.users += 1
        assert self.users <= MAX_USERS, "raise MAX_USERS"
        return self._name(self.users)

    def url(self, user: str, folder: str = "INBOX") -> str:
        return f"imap://{user.replace('@', '%40')}:{PASSWORD}@127.0.0.1:{self.port}/{folder}"

    def client(self, user: str) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(user, PASSWORD)
        return client

    def append(self, user: str, raw: bytes, folder: str = "INBOX", when: datetime | None = None) -> int:
        """Deliver ``raw`` into ``folder``; returns its UID."""
        with self.client(user) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            answer = c.append(folder, raw, msg_time=when)
        # "[APPENDUID <uidvalidity> <uid>] Append completed."
        return int(answer.split(b"]")[0].split()[-1])

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        with self.client(user) as c:
            c.select_folder(folder, readonly=True)
            return {uid: data[b"FLAGS"] for uid, data in c.fetch(c.search("ALL"), ["FLAGS"]).items()}

    def recreate(self, user: str, folder: str) -> None:
        """Delete and create ``folder`` again: a new UIDVALIDITY, as after a restore or a migration."""
        with self.client(user) as c:
            c.delete_folder(folder)
            c.create_folder(folder)


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.data, policy=default_policy)


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    deferring: set[str] = field(default_factory=set)  # answered 451 too, while they are in it

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("refuse-"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.startswith("defer-") or address in self.deferring:
            return f"451 4.7.1 <{address}>: Recipient address rejected: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 Message accepted for delivery"


class SmtpSink:
    """aiosmtpd on 127.0.0.1, in its own thread; ``received`` lists what arrived."""

    def __init__(self) -> None:
        self.handler = _Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
