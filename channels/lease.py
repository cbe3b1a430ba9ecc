"""A lease in Redis: one process at a time does a job that every process could start.

Reading a mailbox or pulling a portal source twice at once would only waste work (what is read is
de-duplicated anyway), but it doubles the load on the other side and muddles the cursor. Whoever
sets the key first holds the lease until it expires or is released; the holder renews it as the
work goes on, and only the holder (its random token) can renew or release it, so a process that
lost its lease while stalled cannot take it from the next one.
"""

from __future__ import annotations

import secrets
from typing import Any

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    """``async with``-free on purpose: the holder decides when a round of work starts and ends."""

    def __init__(self, redis: Any, key: str, ttl_ms: int) -> None:
        self.redis, self.key, self.ttl_ms = redis, key, ttl_ms
        self.token = ""

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; False when another process does."""
        self.token = secrets.token_hex(8)
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        """Push the expiry out again; False when the lease was lost (expired and maybe taken)."""
        return bool(await self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    async def release(self) -> None:
        """Give the lease up, if it is still ours."""
        await self.redis.eval(_RELEASE, 1, self.key, self.token)
