"""The shape every polling worker loop shares (the status poller, the units' mail): run a step until
the gateway stops, a step that failed on the ledger, Redis or the network logged and run again at
the next turn, a pause between turns that ``wake`` may cut short."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from redis.exceptions import RedisError

from gateway.runtime import Runtime
from ticket_client.base import PlatformUnavailable

log = structlog.get_logger(__name__)


async def repeat(rt: Runtime, step: Callable[[], Awaitable[object]], failed: str, pause: Callable[[], float],
                 wake: asyncio.Event | None = None) -> None:
    """``step`` again and again until ``rt`` stops, ``pause()`` seconds apart (or until ``wake`` is
    set); a failure of something it reaches is logged as ``failed``, and the next turn tries again."""
    while not rt.stop_event.is_set():
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError, PlatformUnavailable) as exc:
            log.warning(failed, error=str(exc))
        try:
            await asyncio.wait_for((wake or rt.stop_event).wait(), pause())
        except TimeoutError:
            pass
        if wake is not None:
            wake.clear()
