"""Console accounts in Redis: operators, supervisors and 承办单位 (a department's staff, who see
and work their unit's tickets only), passwords hashed with Argon2id.

One hash per user (``hl:console:user:{name}``) and a set of names. Nothing is stored in clear:
the first supervisor's generated password is printed once, by whoever creates it.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel

from gateway.console import keys as ck
from gateway.console import passwords
from ticket_client.base import MAX_UNIT

Role = Literal["operator", "supervisor", "department"]
ROLES: tuple[str, ...] = ("operator", "supervisor", "department")
NAME = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
FIRST_ADMIN = "admin"

_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so both answers take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class User(BaseModel):
    name: str
    role: Role
    display_name: str = ""
    disabled: bool = False
    created_at: float = 0.0
    unit: str = ""  # a department account's unit, as tickets name it in 承办部门
    # when its password was last set: a session begun before has ended (a changed or reset password
    # signs out every other browser)
    pw_changed_at: float = 0.0

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def is_department(self) -> bool:
        return self.role == "department"

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "display_name": self.display_name or self.name,
                "disabled": self.disabled, "unit": self.unit}


class UserError(ValueError):
    """A user cannot be created as asked (bad name, weak password, exists)."""


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def check_new(name: str, role: str, password: str, unit: str = "", display_name: str = "") -> None:
    if not NAME.match(name):
        raise UserError("用户名须为2–32位字母、数字、下划线、点或连字符")
    if role not in ROLES:
        raise UserError(f"角色须为 {'、'.join(ROLES)} 之一")
    check_password(password, name, display_name, unit)
    if role == "department" and not unit:
        raise UserError("承办单位账号须填写所属单位（与工单承办部门中的名称一致）")
    if role != "department" and unit:
        raise UserError("只有承办单位账号有所属单位")
    if len(unit) > MAX_UNIT:
        raise UserError(f"所属单位名称至多{MAX_UNIT}字")


def check_password(password: str, *context: str) -> None:
    """UserError saying why a new password is too weak (``gateway.console.passwords``); ``context``:
    the account's name, display name and unit."""
    try:
        passwords.check_password(password, context)
    except passwords.WeakPassword as exc:
        raise UserError(str(exc)) from exc


class UserStore:
    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def create(
        self, name: str, role: str, password: str, display_name: str = "", *, replace: bool = False, unit: str = ""
    ) -> User:
        """Create (or with ``replace`` reset) an account (``unit``: a department account's); raises UserError."""
        unit = " ".join(unit.split())
        check_new(name, role, password, unit, display_name)
        now = time.time()
        user = User(name=name, role=role, display_name=display_name or name, created_at=now,  # type: ignore[arg-type]
                    unit=unit, pw_changed_at=now)
        mapping = {
            "name": name,
            "role": role,
            "unit": unit,
            "display_name": user.display_name,
            "disabled": "0",
            "created_at": str(user.created_at),
            "pw": _hasher.hash(password),
            "pw_changed_at": str(now),
        }
        if replace:
            await self.redis.hset(ck.user(name), mapping=mapping)
        # HSETNX on the name field makes creation race-free between gateway replicas.
        elif not await self.redis.hsetnx(ck.user(name), "name", name):
            raise UserError(f"用户 {name} 已存在")
        else:
            await self.redis.hset(ck.user(name), mapping=mapping)
        await self.redis.sadd(ck.USERS, name)
        return user

    async def get(self, name: str) -> User | None:
        data = await self.redis.hgetall(ck.user(name)) if NAME.match(name or "") else {}
        if not data or "role" not in data:
            return None
        return _user_of(data)

    async def all(self) -> list[User]:
        names = sorted(await self.redis.smembers(ck.USERS))
        users = [await self.get(n) for n in names]
        return [u for u in users if u is not None]

    async def verify(self, name: str, password: str) -> User | None:
        """The user if the password is right (and the account enabled); None otherwise."""
        data = await self.redis.hgetall(ck.user(name)) if NAME.match(name or "") else {}
        stored = data.get("pw") or _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if not data or data.get("disabled") == "1":
            return None
        if _hasher.check_needs_rehash(stored):
            await self.redis.hset(ck.user(name), "pw", _hasher.hash(password))
        return _user_of(data)

    async def set_password(self, name: str, password: str) -> None:
        """A new password (UserError when too weak); the account's sessions begun before end."""
        user = await self.get(name)
        check_password(password, name, *((user.display_name, user.unit) if user else ()))
        await self.redis.hset(ck.user(name), mapping={"pw": _hasher.hash(password), "pw_changed_at": str(time.time())})

    async def set_disabled(self, name: str, disabled: bool) -> None:
        await self.redis.hset(ck.user(name), "disabled", "1" if disabled else "0")

    async def ensure_first_admin(self, password: str = "") -> str | None:
        """Create the first supervisor when no account exists; returns its password if generated here."""
        if await self.redis.scard(ck.USERS):
            return None
        if password:  # the deployment's choice: a weak one is said (UserError), not swallowed below
            check_password(password, FIRST_ADMIN, "管理员")
        chosen = password or generate_password()
        try:
            await self.create(FIRST_ADMIN, "supervisor", chosen, "管理员")
        except UserError:
            return None  # another replica created it first
        return chosen


def _user_of(data: dict[str, str]) -> User:
    return User(
        name=data["name"],
        role=data["role"],  # type: ignore[arg-type]
        display_name=data.get("display_name", ""),
        disabled=data.get("disabled") == "1",
        created_at=float(data.get("created_at") or 0),
        unit=data.get("unit", ""),
        pw_changed_at=float(data.get("pw_changed_at") or 0),
    )
