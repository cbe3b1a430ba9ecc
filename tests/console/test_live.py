"""The console's WebSocket against a running gateway; the first supervisor; the create-user command."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis as sync_redis
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from config.settings import Settings
from gateway.console import keys as ck
from gateway.console.users import UserStore

PASSWORD = "correct-horse-battery"


def _run(coro: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _create(url: str, name: str, role: str, unit: str = "") -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, decode_responses=True)
    try:
        await UserStore(client).create(name, role, PASSWORD, unit=unit)
    finally:
        await client.aclose()


def test_websocket_needs_a_live_session_and_closes_when_it_ends(live_gateway: str, settings: Settings) -> None:
    _run(_create(settings.redis_url, "ws-op", "operator"))
    ws_url = live_gateway.replace("http://", "ws://") + "/api/console/ws"
    origin = live_gateway
    with pytest.raises(InvalidStatus):
        connect(ws_url, origin=origin, open_timeout=5).close()  # no cookie

    with httpx.Client(base_url=live_gateway) as http:
        r = http.post("/api/console/login", json={"username": "ws-op", "password": PASSWORD})
        assert r.status_code == 200
        token = http.cookies["hl_console"]
    cookie = {"Cookie": f"hl_console={token}"}
    with pytest.raises(InvalidStatus):  # a page on another site cannot use the operator's cookie
        connect(ws_url, origin="http://evil.example", additional_headers=cookie, open_timeout=5).close()

    with connect(ws_url, origin=origin, additional_headers=cookie, open_timeout=5) as ws:
        first = json.loads(ws.recv(timeout=5))
        assert first["type"] == "queue" and "counts" in first
        client = sync_redis.Redis.from_url(settings.redis_url)
        try:
            assert client.delete(*client.keys(ck.session("*"))) == 1  # the session expires
        finally:
            client.close()
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert time.monotonic() - started < 3

    _run(_create(settings.redis_url, "ws-unit", "department", "市城管局"))
    with httpx.Client(base_url=live_gateway) as http:
        assert http.post("/api/console/login", json={"username": "ws-unit", "password": PASSWORD}).status_code == 200
        unit_cookie = {"Cookie": f"hl_console={http.cookies['hl_console']}"}
    with pytest.raises(InvalidStatus):  # a unit's staff never see the live queue (citizens' words)
        connect(ws_url, origin=origin, additional_headers=unit_cookie, open_timeout=5).close()


async def test_first_supervisor_is_created_once_and_printed(app: Any, capsys: pytest.CaptureFixture[str]) -> None:
    console = app.state.console
    await console.on_start()
    printed = capsys.readouterr().err
    assert "user: admin" in printed
    password = printed.split("password: ")[1].split()[0]
    user = await console.users.verify("admin", password)
    assert user is not None and user.role == "supervisor"
    stored = await app.state.runtime.redis.hgetall(ck.user("admin"))
    assert password not in json.dumps(stored)
    await console.on_start()
    assert "password" not in capsys.readouterr().err  # shown once, never again


def test_admin_create_user_command(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from config.settings import get_settings
    from gateway.cli import app as cli

    monkeypatch.setenv("HOTLINE_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["admin", "create-user", "chen", "--role", "supervisor", "--generate"])
        assert result.exit_code == 0, result.output
        password = result.stdout.split("password: ")[1].split()[0]
        again = CliRunner().invoke(cli, ["admin", "create-user", "chen", "--generate"])
        assert again.exit_code == 1
        typed = CliRunner().invoke(cli, ["admin", "create-user", "zhang"], input="short\nshort\n")
        assert typed.exit_code == 1
        nameless = CliRunner().invoke(cli, ["admin", "create-user", "cgj", "--role", "department", "--generate"])
        assert nameless.exit_code == 1 and "所属单位" in nameless.output
        unit = CliRunner().invoke(cli, ["admin", "create-user", "cgj", "--role", "department", "--unit", "市城管局",
                                        "--generate"])
        assert unit.exit_code == 0, unit.output
        unit_password = unit.stdout.split("password: ")[1].split()[0]
    finally:
        get_settings.cache_clear()

    async def check(name: str, password: str) -> Any:
        import redis.asyncio as aioredis

        client = aioredis.from_url(settings.redis_url, decode_responses=True)
        try:
            return await UserStore(client).verify(name, password)
        finally:
            await client.aclose()

    user = _run(check("chen", password))
    assert user is not None and user.role == "supervisor"
    department = _run(check("cgj", unit_password))
    assert department is not None and (department.role, department.unit) == ("department", "市城管局")
