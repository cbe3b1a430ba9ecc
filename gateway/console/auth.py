"""Console sessions: an HttpOnly SameSite cookie, a CSRF token per session, login throttling.

The cookie holds a random token; Redis holds only its SHA-256 with the user, the role at login,
the CSRF token and the expiry (idle TTL in Redis, absolute limit in the record). Every
state-changing request carries ``X-CSRF-Token`` equal to the session's token; a cross-site page
can neither read it nor (SameSite=Strict) send the cookie. Role rules are checked here and in the
routes, never only in the page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from gateway.console import keys as ck
from gateway.console.users import User, UserStore
from gateway.errors import AuthError, Forbidden, RateLimited

COOKIE = "hl_console"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
IP_FACTOR = 4


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Session:
    token_hash: str
    user: User
    csrf: str
    expires_at: float


class Sessions:
    def __init__(self, redis: Any, settings: Any) -> None:
        self.redis = redis
        self.idle_s = max(60, int(settings.console_session_idle_minutes) * 60)
        self.max_s = max(60, int(settings.console_session_max_hours) * 3600)

    async def create(self, user: User) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        expires = time.time() + self.max_s
        key = ck.session(_hash(token))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user": user.name, "csrf": csrf, "expires_at": str(expires),
                                    "created_at": str(time.time())})
            pipe.expire(key, self.idle_s)
            await pipe.execute()
        return token, Session(_hash(token), user, csrf, expires)

    async def load(self, token: str | None, users: UserStore, *, touch: bool = True) -> Session | None:
        """The live session of ``token`` with its user re-read (a disabled user is logged out)."""
        if not token or len(token) > 200:
            return None
        key = ck.session(_hash(token))
        data = await self.redis.hgetall(key)
        if not data or float(data.get("expires_at") or 0) < time.time():
            return None
        user = await users.get(data.get("user", ""))
        # begun before its password was changed or reset: that browser signs in again
        if user is None or user.disabled or float(data.get("created_at") or 0) < user.pw_changed_at:
            await self.redis.delete(key)
            return None
        if touch:
            await self.redis.expire(key, self.idle_s)
        return Session(_hash(token), user, data["csrf"], float(data["expires_at"]))

    async def alive(self, token_hash: str) -> bool:
        data = await self.redis.hmget(ck.session(token_hash), "expires_at")
        return bool(data[0]) and float(data[0]) >= time.time()

    async def drop(self, token_hash: str) -> None:
        await self.redis.delete(ck.session(token_hash))


class LoginThrottle:
    """At most N wrong passwords per account (4N per client address) in a sliding window."""

    def __init__(self, redis: Any, settings: Any) -> None:
        self.redis = redis
        self.max = max(1, int(settings.console_login_max_failures))
        self.window = max(1, int(settings.console_login_window_s))

    def _scopes(self, name: str, address: str) -> list[str]:
        return [ck.login_failures(f"user:{name.lower()[:64]}"), ck.login_failures(f"ip:{address}")]

    async def check(self, name: str, address: str) -> None:
        # An office behind one address has many operators: its limit is wider than an account's.
        for key, limit in zip(self._scopes(name, address), (self.max, self.max * IP_FACTOR), strict=True):
            await self.redis.zremrangebyscore(key, "-inf", time.time() - self.window)
            if await self.redis.zcard(key) >= limit:
                raise RateLimited(f"密码错误次数过多，请{self.window // 60}分钟后再试")

    async def failed(self, name: str, address: str) -> None:
        now = time.time()
        for key in self._scopes(name, address):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {secrets.token_hex(8): now})
                pipe.expire(key, self.window)
                await pipe.execute()

    async def succeeded(self, name: str) -> None:
        await self.redis.delete(self._scopes(name, "")[0])


def console_state(conn: HTTPConnection) -> Any:
    return conn.app.state.console


def same_origin(conn: HTTPConnection) -> bool:
    """A browser's Origin (when sent) names this host: no cross-site form or WebSocket."""
    origin = conn.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = conn.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def current_session(request: Request) -> Session:
    """The caller's session or 401; for a state-changing method also a matching CSRF token (403)."""
    console = console_state(request)
    session = await console.sessions.load(request.cookies.get(COOKIE), console.users)
    if session is None:
        raise AuthError("未登录或登录已过期，请重新登录")
    if request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER, "")
        if not given or not hmac.compare_digest(given, session.csrf) or not same_origin(request):
            raise Forbidden("请求校验失败（CSRF），请刷新页面后重试")
    request.state.console_session = session
    return session


SessionDep = Annotated[Session, Depends(current_session)]


async def current_user(session: SessionDep) -> User:
    """An operator or supervisor: a department account reaches its unit's tickets only (DepartmentDep),
    never the conversations, the citizens' words or the centre's figures."""
    if session.user.is_department:
        raise Forbidden("承办单位账号只能办理本单位的工单")
    return session.user


async def supervisor(session: SessionDep) -> User:
    if not session.user.is_supervisor:
        raise Forbidden("该操作仅限班长（supervisor）")
    return session.user


async def department(session: SessionDep) -> User:
    if not session.user.is_department:
        raise Forbidden("该页面仅限承办单位账号")
    return session.user


UserDep = Annotated[User, Depends(current_user)]
SupervisorDep = Annotated[User, Depends(supervisor)]
DepartmentDep = Annotated[User, Depends(department)]
