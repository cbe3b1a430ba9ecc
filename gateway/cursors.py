"""The cursors of the readers of the ticket ledger's changes (the status poller, the units' mail),
kept in two places: in Redis, moved with each change told (atomic with what it tells), and with
the tickets, moved after each batch, so that Redis losing its data (a new volume, a failover to a
stale replica, a FLUSHALL) never makes a reader start again from the first change ever: every
citizen told every step of every ticket once more. From the ledger's copy at most one batch is
told again; with no copy anywhere, a reader starts where its ``start`` says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from gateway.runtime import Runtime

log = structlog.get_logger(__name__)

RESUME_S = 600.0  # the status poller with no cursor anywhere tells the changes of the last ten minutes


async def resume(rt: Runtime, redis_key: str, reader: str, start: Callable[[], Awaitable[int]]) -> tuple[int, bool]:
    """``reader``'s cursor: Redis's, else the ledger's copy, else ``start()`` (both then set): the
    cursor, and whether it was found (False: it starts at ``start``, nothing to read before)."""
    assert rt.tickets is not None
    found = await rt.redis.get(redis_key)
    if found is not None:
        return int(found), True
    kept = await rt.tickets.cursor(reader)
    seq = kept if kept is not None else await start()
    lost = kept is not None or seq > 0  # else a first start: nothing was ever read
    (log.warning if lost else log.info)("cursor_resumed", reader=reader, seq=seq,
                                        source="ledger" if kept is not None else "start")
    await rt.redis.set(redis_key, seq)
    if kept is None:
        await rt.tickets.keep_cursor(reader, seq)
    return seq, kept is not None

