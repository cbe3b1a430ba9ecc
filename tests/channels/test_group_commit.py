"""Group commit against a real Redis: a call whose arguments cannot be sent fails alone, and no
caller is ever left waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from channels.group_commit import GroupCommit

SET = "redis.call('SET', KEYS[1], ARGV[1]); return ARGV[1]"


@pytest.fixture
async def redis(clean_redis: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(clean_redis, decode_responses=True)
    yield client
    await client.aclose()


async def test_concurrent_calls_each_get_their_result(redis: aioredis.Redis) -> None:
    commit = GroupCommit(redis, SET)
    got = await asyncio.gather(*(commit.call([f"k{i}"], [f"v{i}"]) for i in range(50)))
    assert got == [f"v{i}" for i in range(50)]
    assert await redis.get("k49") == "v49"


async def test_an_unsendable_call_fails_alone(redis: aioredis.Redis) -> None:
    """Half an emoji (a lone surrogate) cannot be encoded as UTF-8: the pipeline cannot even be
    written. Before, that ended the flusher and left every caller of its batch waiting forever."""
    commit = GroupCommit(redis, SET)
    calls = [commit.call([f"k{i}"], ["bad\ud83d" if i == 3 else f"v{i}"]) for i in range(8)]
    async with asyncio.timeout(5):
        got = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(got[3], UnicodeEncodeError)
    assert [g for i, g in enumerate(got) if i != 3] == [f"v{i}" for i in range(8) if i != 3]
    assert await redis.get("k3") is None and await redis.get("k7") == "v7"
    async with asyncio.timeout(5):  # and the next call still goes through
        assert await commit.call(["k9"], ["v9"]) == "v9"
