"""A local stand-in for the WeChat server API (``HOTLINE_WECHAT_API_BASE=http://127.0.0.1:<port>``).

It answers with the official response shapes (overridable from ``api__*.json`` files, as the tests'
fixtures do), keeps one valid access token at a time, and records every customer-service and
subscribe message and every custom menu it receives. Tests drive it (``fail_next``,
``revoke_tokens``); it is also handy to try the channel locally: ``python -m channels.wechat.fakeapi 8900``.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

DEFAULTS: dict[str, dict[str, Any]] = {
    "token": {"access_token": "ACCESS_TOKEN", "expires_in": 7200},
    "ok": {"errcode": 0, "errmsg": "ok"},
    "jscode2session": {"openid": "OPENID", "session_key": "SESSIONKEY", "unionid": "UNIONID"},
    "error_40001": {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"},
    "error_42001": {"errcode": 42001, "errmsg": "access_token expired"},
    "error_40029": {"errcode": 40029, "errmsg": "invalid code"},
    "error_40125": {"errcode": 40125, "errmsg": "invalid appsecret"},
    "error_40007": {"errcode": 40007, "errmsg": "invalid media_id"},
    "error_45015": {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"},
    "error_45047": {"errcode": 45047, "errmsg": "out of response count limit"},
    "error_43101": {"errcode": 43101, "errmsg": "user refuse to accept the msg"},
    "error_-1": {"errcode": -1, "errmsg": "system error"},
    "error_40033": {"errcode": 40033, "errmsg": "invalid charset. please check your request, if include \\uxxxx will create fail!"},
    "error_48001": {"errcode": 48001, "errmsg": "api unauthorized"},
}
_ESCAPED = re.compile(r"\\u[0-9a-fA-F]{4}")  # menu/create refuses JSON with \uXXXX escapes (40033)


@dataclass
class FakeWechatApi:
    fixtures: Path | None = None
    secrets: dict[str, str] = field(default_factory=dict)  # appid -> secret (empty: accept any)
    token_delay_s: float = 0.0
    stale_errcode: int = 40001  # what a revoked token gets: 40001 (invalid) or 42001 (expired)
    custom: list[dict[str, Any]] = field(default_factory=list)  # customer-service messages received
    subscribe: list[dict[str, Any]] = field(default_factory=list)
    menus: list[dict[str, Any]] = field(default_factory=list)  # custom menus published, the last one current
    token_calls: int = 0
    failures: list[int] = field(default_factory=list)  # errcodes to answer to the next sends and media fetches
    media: dict[str, bytes] = field(default_factory=dict)
    _valid: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None
    url: str = ""

    def response(self, name: str) -> dict[str, Any]:
        if self.fixtures is not None and (path := self.fixtures / f"api__{name}.json").exists():
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return data
        return dict(DEFAULTS[name])

    def fail_next(self, *errcodes: int) -> None:
        self.failures.extend(errcodes)

    def revoke_tokens(self) -> None:
        """Every token issued so far becomes invalid (as when another party fetched a new one)."""
        self._valid.clear()

    def texts(self, openid: str | None = None) -> list[str]:
        out = []
        for msg in self.custom:
            if openid and msg.get("touser") != openid:
                continue
            if msg.get("msgtype") == "text":
                out.append(msg["text"]["content"])
            elif msg.get("msgtype") == "msgmenu":
                out.append(msg["msgmenu"]["head_content"])
        return out

    # --- handlers -------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        if self.token_delay_s:
            await asyncio.sleep(self.token_delay_s)
        appid, secret = request.query.get("appid", ""), request.query.get("secret", "")
        if request.query.get("grant_type") != "client_credential" or (
            self.secrets and self.secrets.get(appid) != secret
        ):
            return web.json_response(self.response("error_40125"))
        body = self.response("token")
        body["access_token"] = f"{body['access_token']}-{self.token_calls}"
        self._valid.add(body["access_token"])
        return web.json_response(body)

    def _check_token(self, request: web.Request) -> web.Response | None:
        if request.query.get("access_token") not in self._valid:
            return web.json_response(self.response(f"error_{self.stale_errcode}"))
        return None

    async def _send(self, request: web.Request, into: list[dict[str, Any]]) -> web.Response:
        if (refused := self._check_token(request)) is not None:
            return refused
        payload = await request.json()
        if self.failures:
            code = self.failures.pop(0)
            return web.json_response(self.response(f"error_{code}"))
        into.append(payload)
        return web.json_response(self.response("ok"))

    async def _custom(self, request: web.Request) -> web.Response:
        return await self._send(request, self.custom)

    async def _subscribe(self, request: web.Request) -> web.Response:
        return await self._send(request, self.subscribe)

    async def _menu_create(self, request: web.Request) -> web.Response:
        if self._check_token(request) is None and _ESCAPED.search(await request.text()):
            return web.json_response(self.response("error_40033"))
        return await self._send(request, self.menus)

    async def _menu_get(self, request: web.Request) -> web.Response:
        if (refused := self._check_token(request)) is not None:
            return refused
        buttons = [
            {**b, "sub_button": {"list": b["sub_button"]}} if "sub_button" in b else b
            for b in (self.menus[-1]["button"] if self.menus else [])
        ]
        return web.json_response({"is_menu_open": 1 if buttons else 0, "selfmenu_info": {"button": buttons}})

    async def _code2session(self, request: web.Request) -> web.Response:
        code = request.query.get("js_code", "")
        if not code.startswith("code-"):
            return web.json_response(self.response("error_40029"))
        body = self.response("jscode2session")
        body["openid"] = code[len("code-"):]
        return web.json_response(body)

    async def _media(self, request: web.Request) -> web.Response:
        if (refused := self._check_token(request)) is not None:
            return refused
        if self.failures:
            return web.json_response(self.response(f"error_{self.failures.pop(0)}"))
        content = self.media.get(request.query.get("media_id", ""))
        if content is None:
            return web.json_response(self.response("error_40007"))
        return web.Response(body=content, content_type="image/jpeg")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom)
        app.router.add_post("/cgi-bin/message/subscribe/send", self._subscribe)
        app.router.add_post("/cgi-bin/message/subscribe/bizsend", self._subscribe)
        app.router.add_get("/sns/jscode2session", self._code2session)
        app.router.add_get("/cgi-bin/media/get", self._media)
        app.router.add_post("/cgi-bin/menu/create", self._menu_create)
        app.router.add_get("/cgi-bin/get_current_selfmenu_info", self._menu_get)
        return app

    async def start(self, port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", port))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _main(port: int) -> None:  # pragma: no cover - manual use
    fake = FakeWechatApi()
    print("fake WeChat API on", await fake.start(port))
    await asyncio.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 8900))
