"""The workers' stream loop: stopping does not wait out a blocking read, and loses nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway import keys
from gateway.streams import Streams, consume


@pytest.fixture
async def streams(clean_redis: str) -> AsyncIterator[Streams]:
    client = aioredis.Redis.from_url(clean_redis, decode_responses=True)
    s = Streams(client)
    await s.ensure_groups()
    yield s
    await client.aclose()


async def test_a_worker_stops_at_once_and_a_later_entry_is_still_read(streams: Streams) -> None:
    seen: list[str] = []

    async def handler(entry_id: str, fields: dict[str, str]) -> None:
        seen.append(fields["n"])
        await streams.redis.xack(keys.OUTBOX, keys.GROUP[keys.OUTBOX], entry_id)

    stop = asyncio.Event()
    worker = asyncio.create_task(consume(streams, keys.OUTBOX, "c1", handler, stop, block_ms=10_000))
    await asyncio.sleep(0.3)  # blocked in XREADGROUP for up to ten seconds
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(worker, timeout=2)
    assert time.monotonic() - started < 1.0
    await streams.redis.xadd(keys.OUTBOX, {"n": "1"})  # arrives while no worker runs
    again = asyncio.Event()
    worker = asyncio.create_task(consume(streams, keys.OUTBOX, "c2", handler, again, block_ms=100))
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.02)
    again.set()
    await asyncio.wait_for(worker, timeout=2)
    assert seen == ["1"]
