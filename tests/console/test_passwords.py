"""A new console password must be hard to guess: common passwords, keyboard rows, repeats, dates,
the account's own words and this system's are refused, each with its reason in Chinese."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.console.passwords import WeakPassword, check_password
from gateway.console.users import UserError, UserStore
from tests.console.conftest import PASSWORD


@pytest.mark.parametrize(("password", "why"), [
    ("short", "密码至少10位"),
    ("1234567890", "是最常见的密码之一"),
    ("qwertyuiop", "是最常见的密码之一"),
    ("1qaz2wsx3edc", "是常见密码"),
    ("password123", "是常见密码"),
    ("8888888888", "含有重复的字符"),
    ("abcabcabcabc", "含有重复的片段"),
    ("19900101zz", "含有日期"),
    ("woaini1314520", "含有“12345”“woaini”等常见词"),
    ("12345hotline", "含有“12345”“woaini”等常见词"),
])
def test_an_easy_password_is_refused_with_its_reason(password: str, why: str) -> None:
    with pytest.raises(WeakPassword, match=why):
        check_password(password)


def test_the_accounts_own_words_do_not_make_a_password() -> None:
    with pytest.raises(WeakPassword, match="含有账号名、姓名或单位名称"):
        check_password("cgj12345678", ("cgj", "城管局值班", "城市管理和综合执法局"))
    check_password("cgj12345678-Lq#x", ("cgj",))  # with enough besides, it may


@pytest.mark.parametrize("password", ["correct-horse-battery", "a-much-longer-secret", "我是济南市城管局的人",
                                      "zhangsan19900101", "kx7Qm2pV9z"])
def test_a_hard_password_is_taken(password: str) -> None:
    check_password(password)


async def test_the_store_refuses_a_weak_password_to_create_or_change(app: Any) -> None:
    users: UserStore = app.state.console.users
    with pytest.raises(UserError, match="是最常见的密码之一"):
        await users.create("wangwei", "operator", "1234567890", "王伟")
    assert await users.get("wangwei") is None
    await users.create("wangwei", "operator", "correct-horse-battery", "王伟")
    with pytest.raises(UserError, match="含有账号名"):
        await users.set_password("wangwei", "wangwei2026!")  # its own name
    assert await users.verify("wangwei", "correct-horse-battery") is not None  # unchanged


async def test_the_console_says_why_a_password_is_refused(app: Any, console_login: Any) -> None:
    """修改密码 and a new account's password: 400 with the reason; the account keeps its password."""
    li = await console_login("li")
    r = await li.post("/password", json={"current": PASSWORD, "new": "qwertyuiop"})
    assert (r.status_code, r.json()["detail"]) == (
        400, "密码太容易被猜到：是最常见的密码之一。请换一个更长、更不规则的密码，例如几个不相关的词加数字和符号")
    assert (await li.get("/me")).status_code == 200  # still signed in, the password unchanged
    boss = await console_login("boss", "supervisor")
    r = await boss.post("/users", json={"name": "zhao", "role": "operator", "password": "zhao123456789"})
    assert r.status_code == 400 and "含有账号名" in r.json()["detail"]
    r = await boss.post("/users", json={"name": "zhao", "role": "operator"})  # generated: strong
    assert r.status_code == 201 and len(r.json()["password"]) >= 16


async def test_a_weak_first_supervisor_password_stops_the_start(settings: Any) -> None:
    """HOTLINE_CONSOLE_ADMIN_PASSWORD too weak: the gateway does not start, naming the setting,
    rather than start with no account anybody can sign in with."""
    from gateway.app import create_app
    from gateway.errors import StartupError

    app = create_app(settings.model_copy(update={"console_admin_password": "admin12345"}), workers=False)
    with pytest.raises(StartupError, match="HOTLINE_CONSOLE_ADMIN_PASSWORD is refused: 密码太容易被猜到"):
        async with app.router.lifespan_context(app):
            pass
    strong = create_app(settings.model_copy(update={"console_admin_password": "correct-horse-battery"}), workers=False)
    async with strong.router.lifespan_context(strong):
        assert await strong.state.console.users.verify("admin", "correct-horse-battery") is not None
