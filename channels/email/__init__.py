"""E-mail (市长信箱): an IMAP mailbox read by a poller, replies by SMTP in the writer's thread.

``parse`` turns a mail into a ``Mail`` (pure: charsets, quoted replies cut, attachments, what
must be ignored), ``text`` holds the charset, HTML and quoting rules, ``verify`` reads what the
city's own mail server says of the sender, ``imap`` holds the IMAP sessions (reading, IDLE),
``mailbox`` polls the folder and enqueues letters, ``send`` composes and sends the replies and
remembers the threads, ``channel`` is the adapter.
"""

from __future__ import annotations

from channels.email.channel import EmailChannel, build

__all__ = ["EmailChannel", "build"]
