"""Helpers for the console tests: accounts, logged-in clients (one cookie jar each), citizens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

PASSWORD = "correct-horse-battery"


class Operator:
    """A logged-in console user: its own cookie jar and CSRF token."""

    def __init__(self, client: httpx.AsyncClient, name: str, csrf: str) -> None:
        self.client = client
        self.name = name
        self.csrf = csrf

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get("/api/console" + path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return await self.client.post("/api/console" + path, json=json, headers=headers, **kw)

    async def put(self, path: str, json: Any = None) -> httpx.Response:
        return await self.client.put("/api/console" + path, json=json, headers={"X-CSRF-Token": self.csrf})


@pytest.fixture
async def console_login(app: Any) -> AsyncIterator[Callable[..., Any]]:
    """``await console_login(name, role)`` creates the account and returns a logged-in Operator."""
    clients: list[httpx.AsyncClient] = []

    async def login(name: str, role: str = "operator", password: str = PASSWORD) -> Operator:
        if await app.state.console.users.get(name) is None:
            await app.state.console.users.create(name, role, password)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        clients.append(client)
        r = await client.post("/api/console/login", json={"username": name, "password": password})
        assert r.status_code == 200, r.text
        return Operator(client, name, r.json()["csrf"])

    yield login
    for c in clients:
        await c.aclose()
