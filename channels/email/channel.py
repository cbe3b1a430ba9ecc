"""The e-mail adapter: the mailbox poller in, SMTP replies out.

``channel`` is ``email`` and the sender is the writer's address, lower-cased, so the conversation
(``email:<address>``) gathers every mail of one writer. No webhooks: the mailbox is polled.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter
from redis.exceptions import RedisError

from channels.base import ChannelContext, DeliveryError, OutboundMessage, Webhook
from channels.email.mailbox import NAME, Poller
from channels.email.send import Threads, compose, deliver, mask
from config.settings import MailServer

log = structlog.get_logger(__name__)


class EmailChannel:
    name = NAME

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.smtp: MailServer = ctx.settings.email_smtp()
        self.threads: Threads | None = None
        self.poller: Poller | None = None

    def handles(self, channel: str) -> bool:
        return channel == NAME

    def router(self) -> APIRouter | None:
        return None

    def webhooks(self) -> list[Webhook]:
        return []

    async def start(self) -> None:
        self.threads = Threads(self.ctx.redis, self.settings.email_thread_days)
        self.poller = Poller(self.ctx, self.threads)
        self.poller.start()

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop()
            self.poller = None

    async def send(self, message: OutboundMessage) -> None:
        if not message.text.strip():
            return
        if self.threads is None:  # a process that sends without reading the mailbox
            self.threads = Threads(self.ctx.redis, self.settings.email_thread_days)
        threads = self.threads
        address = self.settings.email_address
        try:
            thread = await threads.find(message)
            message_id = await threads.message_id(message.id, address.rpartition("@")[2])
            mail = compose(message, thread, address, self.settings.email_display_name, message_id)
            await threads.sent(message_id, message.sender, message.ticket_id or "")  # its reply will name it
        except (RedisError, OSError) as exc:
            raise DeliveryError(f"redis unavailable: {exc}", retry_after=5.0) from exc
        try:
            await deliver(
                self.smtp, mail, self.settings.email_address, message.sender, self.settings.email_timeout_s
            )
        except DeliveryError as exc:
            log.warning(
                "email_delivery_failed",
                to=mask(message.sender),
                kind=message.kind,
                error=str(exc),
                retry_after=exc.retry_after,
                server=self.smtp.label,
            )
            raise
        log.info("email_sent", to=mask(message.sender), kind=message.kind, threaded=thread is not None)


def build(ctx: ChannelContext) -> list[Any]:
    return [EmailChannel(ctx)] if ctx.settings.email_enabled else []
