"""Redis loses its data (a new volume, a failover to a stale replica, FLUSHALL): the status poller
goes on from its cursor kept with the tickets, and never tells every citizen every step again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import Settings
from gateway import keys
from gateway.runtime import Runtime
from gateway.workers import StatusPoller
from ticket_client import LocalLedger, TicketDraft


@pytest.fixture
async def rt(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings)
    await runtime.start(workers=False)
    try:
        yield runtime
    finally:
        await runtime.stop()


def draft(key: str) -> TicketDraft:
    return TicketDraft(channel="web", conversation_key=f"web:{key}", title="路灯不亮", description="小区门口路灯坏了")


async def test_the_status_poller_goes_on_from_the_ledgers_copy_of_its_cursor(rt: Runtime) -> None:
    assert rt.tickets is not None
    poller = StatusPoller(rt)
    ticket_id = (await rt.tickets.file(draft("a"), "a")).ticket_id
    await rt.tickets.set_status(ticket_id, "accepted")
    await rt.tickets.set_status(ticket_id, "resolved", "已修复")
    assert await poller.poll_once() == 3
    assert await rt.redis.xlen(keys.OUTBOUND) == 3  # 已接收, 已办结 and its 回访
    await rt.redis.flushdb()  # Redis loses everything, the told messages' ids with it
    assert await poller.poll_once() == 0 and await rt.redis.xlen(keys.OUTBOUND) == 0  # nothing told again
    await rt.tickets.set_status(ticket_id, "closed")
    assert await poller.poll_once() == 1 and await rt.redis.xlen(keys.OUTBOUND) == 1  # and it goes on


async def test_with_no_cursor_anywhere_the_poller_tells_the_last_minutes_only(rt: Runtime, settings: Settings) -> None:
    assert rt.tickets is not None
    then = datetime.now(UTC) - timedelta(hours=1)
    async with LocalLedger(settings.effective_database_url, clock=lambda: then) as earlier:  # an hour ago
        old = (await earlier.file(draft("old"), "old")).ticket_id
        await earlier.set_status(old, "accepted")
    recent = (await rt.tickets.file(draft("new"), "new")).ticket_id
    await rt.tickets.set_status(recent, "accepted")
    assert await rt.tickets.cursor("status") is None and await rt.redis.get(keys.STATUS_CURSOR) is None
    assert await StatusPoller(rt).poll_once() == 2  # the recent ticket's filing and 已接收, not the old's
    [(_, told)] = await rt.redis.xrange(keys.OUTBOUND)
    assert recent in told["data"] and old not in told["data"]
    assert await rt.tickets.cursor("status") == await rt.tickets.last_change()
