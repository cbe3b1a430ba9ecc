"""E-mail (市长信箱): an IMAP mailbox read by a poller, replies by SMTP in the writer's thread.

``parse`` turns a mail into a ``Mail`` (pure: charsets, quoted replies cut, attachments, what
must be ignored), ``text`` holds the charset, HTML and quoting rules, ``mailbox`` polls the folder
and enqueues letters, ``send`` composes and sends the replies, ``channel`` is the adapter.
"""

from __future__ import annotations

from channels.email.channel import EmailChannel, build

__all__ = ["EmailChannel", "build"]
