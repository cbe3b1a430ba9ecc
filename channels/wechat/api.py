"""The WeChat server API over ``ctx.http``: access token, customer-service and subscribe messages,
code2Session, media, an official account's custom menu.

The access token is shared by every process through Redis: one refresher at a time holds a
``SET NX`` lock, the others poll for the new token. A token WeChat rejects (40001/42001/40014) is
invalidated only if it is still the current one (compare-and-delete), then fetched again once.
httpx errors and WeChat ``errcode``s are translated here into ``WechatApiError``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
from redis.exceptions import RedisError

from config.settings import WechatAccount

TOKEN_ERRORS = {40001, 40014, 42001}
WINDOW_CLOSED = {45015, 45047}  # out of response time limit / out of response count limit
NOT_REACHABLE = {43004, 40003, 43101}  # unsubscribed, invalid openid, subscribe consent refused/used
BUSY = {-1, 45009, 45011}  # system busy, API quota, frequency limit
LOCK_MS = 15_000
WAIT_S = 15.0

_DELETE_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class WechatApiError(Exception):
    """WeChat answered ``errcode`` != 0, or could not be reached (``errcode`` -2)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def transient(self) -> bool:
        return self.errcode in BUSY or self.errcode == -2 or self.errcode in TOKEN_ERRORS


class WechatApi:
    """One account's API client; cheap to build, all state lives in Redis."""

    def __init__(self, http: httpx.AsyncClient, redis: Any, base: str, account: WechatAccount) -> None:
        self.http = http
        self.redis = redis
        self.base = base.rstrip("/")
        self.account = account
        self.token_key = f"hl:wx:token:{account.appid}"
        self.lock_key = f"{self.token_key}:lock"

    # --- transport ------------------------------------------------------------------------
    async def _call(self, method: str, path: str, *, params: dict[str, str], json: Any = None) -> dict[str, Any]:
        try:
            resp = await self.http.request(method, self.base + path, params=params, json=json)
        except httpx.HTTPError as exc:
            raise WechatApiError(-2, f"WeChat API unreachable: {exc!r}") from exc
        if resp.status_code >= 500:
            raise WechatApiError(-2, f"WeChat API HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise WechatApiError(-2, f"WeChat API answered non-JSON (HTTP {resp.status_code})") from exc
        if not isinstance(data, dict):
            raise WechatApiError(-2, "WeChat API answered an unexpected shape")
        if int(data.get("errcode") or 0) != 0:
            raise WechatApiError(int(data["errcode"]), str(data.get("errmsg", "")))
        return data

    async def _with_token(self, path: str, payload: dict[str, Any] | None, method: str = "POST") -> dict[str, Any]:
        token = await self.access_token()
        try:
            return await self._call(method, path, params={"access_token": token}, json=payload)
        except WechatApiError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            await self.invalidate(token)
            token = await self.access_token()
            return await self._call(method, path, params={"access_token": token}, json=payload)

    # --- access token ---------------------------------------------------------------------
    async def access_token(self) -> str:
        """The account's current token: from Redis, or fetched by exactly one caller at a time."""
        deadline = time.monotonic() + WAIT_S
        try:
            while True:
                token = await self.redis.get(self.token_key)
                if token:
                    return str(token)
                owner = secrets.token_hex(8)
                if await self.redis.set(self.lock_key, owner, nx=True, px=LOCK_MS):
                    try:
                        # Another worker may have stored a token between our read and our lock.
                        token = await self.redis.get(self.token_key)
                        return str(token) if token else await self._refresh()
                    finally:
                        await self.redis.eval(_DELETE_IF, 1, self.lock_key, owner)
                if time.monotonic() > deadline:
                    raise WechatApiError(-2, "timed out waiting for another worker to refresh the access token")
                await asyncio.sleep(0.05)
        except (RedisError, OSError) as exc:
            raise WechatApiError(-2, f"Redis unavailable for the access token: {exc}") from exc

    async def _refresh(self) -> str:
        data = await self._call(
            "GET",
            "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.account.appid, "secret": self.account.secret},
        )
        token = str(data.get("access_token") or "")
        if not token:
            raise WechatApiError(-2, "token response without access_token")
        ttl = max(int(data.get("expires_in") or 7200) - 300, 60)  # renew five minutes early
        await self.redis.set(self.token_key, token, ex=ttl)
        return token

    async def invalidate(self, token: str) -> None:
        """Forget ``token`` unless another worker already replaced it."""
        try:
            await self.redis.eval(_DELETE_IF, 1, self.token_key, token)
        except (RedisError, OSError) as exc:
            raise WechatApiError(-2, f"Redis unavailable for the access token: {exc}") from exc

    # --- messages -------------------------------------------------------------------------
    async def send_custom(self, openid: str, payload: dict[str, Any]) -> None:
        """A customer-service message (``payload`` holds ``msgtype`` and its body)."""
        await self._with_token("/cgi-bin/message/custom/send", {"touser": openid, **payload})

    async def send_subscribe(self, openid: str, template_id: str, data: dict[str, str], page: str = "") -> None:
        """A subscribe message: the mini-program's, or the official account's 订阅通知 (bizsend)."""
        path = "/cgi-bin/message/subscribe/send" if self.account.kind == "mp" else "/cgi-bin/message/subscribe/bizsend"
        payload: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
        }
        if page:
            payload["page"] = page
        await self._with_token(path, payload)

    # --- custom menu (official accounts) ---------------------------------------------------
    async def create_menu(self, menu: dict[str, Any]) -> None:
        """Replace the official account's whole custom menu (``{"button": [...]}``; checked by
        ``channels.wechat.menu``, which names the wrong button where WeChat would not)."""
        await self._with_token("/cgi-bin/menu/create", menu)

    async def get_menu(self) -> dict[str, Any]:
        """The menu the account shows now, as WeChat describes it (``is_menu_open``,
        ``selfmenu_info.button``, a button's sub-buttons under ``sub_button.list``)."""
        return await self._with_token("/cgi-bin/get_current_selfmenu_info", None, method="GET")

    async def code2session(self, code: str) -> dict[str, Any]:
        """``wx.login`` code → ``{"openid", "session_key", "unionid"?}``."""
        return await self._call(
            "GET",
            "/sns/jscode2session",
            params={
                "appid": self.account.appid,
                "secret": self.account.secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
        )

    async def get_media(self, media_id: str) -> tuple[bytes, str]:
        """A temporary media file (kept three days by WeChat): its bytes and content type."""
        token = await self.access_token()
        for attempt in (1, 2):
            try:
                resp = await self.http.get(
                    self.base + "/cgi-bin/media/get", params={"access_token": token, "media_id": media_id}
                )
            except httpx.HTTPError as exc:
                raise WechatApiError(-2, f"WeChat API unreachable: {exc!r}") from exc
            kind = resp.headers.get("content-type", "")
            if resp.status_code == 200 and "json" not in kind and "text/plain" not in kind:
                return resp.content, kind or "application/octet-stream"
            try:
                data = resp.json()
            except ValueError as exc:
                raise WechatApiError(-2, f"media/get answered HTTP {resp.status_code}") from exc
            code = int(data.get("errcode") or -2)
            if code in TOKEN_ERRORS and attempt == 1:
                await self.invalidate(token)
                token = await self.access_token()
                continue
            raise WechatApiError(code, str(data.get("errmsg", "")))
        raise WechatApiError(-2, "unreachable")  # pragma: no cover
