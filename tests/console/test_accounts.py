"""修改密码, 重置密码, 停用 and 启用: a changed or reset password signs the account's other browsers out."""

from __future__ import annotations

from typing import Any

import httpx

from tests.console.conftest import PASSWORD

NEW = "a-much-longer-secret"


async def test_an_account_changes_its_own_password_and_its_other_browsers_sign_in_again(
    app: Any, console_login: Any
) -> None:
    li = await console_login("li")
    elsewhere = await console_login("li")  # the same account in another browser
    for body, said in (({"current": "wrong-password", "new": NEW}, "当前密码不正确"),
                       ({"current": PASSWORD, "new": PASSWORD}, "新密码不能与当前密码相同"),
                       ({"current": PASSWORD, "new": "short"}, "密码至少10位")):
        r = await li.post("/password", json=body)
        assert (r.status_code, r.json()["detail"]) == (400, said)
    assert (await li.post("/password", json={"current": PASSWORD, "new": NEW}, headers={"X-CSRF-Token": "x"})
            ).status_code == 403  # CSRF as every change
    r = await li.post("/password", json={"current": PASSWORD, "new": NEW})
    assert r.status_code == 200 and r.json()["user"]["name"] == "li"
    li.csrf = r.json()["csrf"]  # this browser goes on, with the new session's token
    assert (await li.get("/me")).status_code == 200
    assert (await li.post("/note", json={"key": "web:x", "text": "内部备注"})).status_code != 403
    assert (await elsewhere.get("/me")).status_code == 401  # the other signs in again
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as fresh:
        old = await fresh.post("/api/console/login", json={"username": "li", "password": PASSWORD})
        assert old.status_code == 401
        assert (await fresh.post("/api/console/login", json={"username": "li", "password": NEW})).status_code == 200
    boss = await console_login("boss", "supervisor")
    actions = [e["action"] for e in (await boss.get("/audit?limit=50")).json()["entries"] if e["actor"] == "li"]
    assert actions.count("password.failed") == 1 and actions.count("password.change") == 1
    assert NEW not in str((await boss.get("/audit?limit=50")).json())


async def test_a_supervisor_resets_a_forgotten_password(app: Any, console_login: Any) -> None:
    li = await console_login("li")
    boss = await console_login("boss", "supervisor")
    assert (await li.post("/users/boss/password")).status_code == 403  # operators may not
    assert (await boss.post("/users/boss/password")).status_code == 400  # one's own: 修改密码
    assert (await boss.post("/users/nobody/password")).status_code == 404
    r = await boss.post("/users/li/password")
    assert r.status_code == 200 and len(r.json()["password"]) >= 10
    assert (await li.get("/me")).status_code == 401  # signed out
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as fresh:
        login = await fresh.post("/api/console/login", json={"username": "li", "password": r.json()["password"]})
        assert login.status_code == 200
    entries = (await boss.get("/audit?limit=50")).json()["entries"]
    assert [e["target"] for e in entries if e["action"] == "user.reset_password"] == ["li"]
    assert r.json()["password"] not in str(entries)
    # the CLI's --reset replaces the password the same way: the browsers signed in before sign in again
    again = await console_login("li", password=r.json()["password"])
    await app.state.console.users.create("li", "operator", NEW, replace=True)
    assert (await again.get("/me")).status_code == 401 and (await boss.get("/me")).status_code == 200


async def test_a_department_account_changes_its_password_too(app: Any, console_login: Any) -> None:
    await app.state.console.users.create("cgj", "department", PASSWORD, unit="城市管理和综合执法局")
    unit = await console_login("cgj")
    r = await unit.post("/password", json={"current": PASSWORD, "new": NEW})
    assert r.status_code == 200 and r.json()["user"]["unit"] == "城市管理和综合执法局"


async def test_a_supervisor_disables_an_account_and_enables_it_again(app: Any, console_login: Any) -> None:
    """停用 ends its sessions and refuses its sign-in; 启用 lets it sign in again with its password.
    Supervisors only, never one's own account; audited."""
    li = await console_login("li")
    boss = await console_login("boss", "supervisor")
    assert (await li.post("/users/boss/disable")).status_code == 403
    assert (await boss.post("/users/boss/disable")).status_code == 400
    assert (await boss.post("/users/boss/enable")).status_code == 400
    assert (await boss.post("/users/nobody/enable")).status_code == 404
    assert (await boss.post("/users/li/disable")).status_code == 200
    assert (await li.get("/me")).status_code == 401  # signed out
    [row] = [u for u in (await boss.get("/users")).json()["users"] if u["name"] == "li"]
    assert row["disabled"]  # listed for supervisors, to enable again

    async def sign_in() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as fresh:
            return (await fresh.post("/api/console/login", json={"username": "li", "password": PASSWORD})).status_code

    assert await sign_in() == 401
    assert (await boss.post("/users/li/enable")).status_code == 200
    assert await sign_in() == 200
    [row] = [u for u in (await boss.get("/users")).json()["users"] if u["name"] == "li"]
    assert not row["disabled"]
    entries = (await boss.get("/audit?limit=50")).json()["entries"]
    assert [(e["action"], e["target"]) for e in entries if e["action"].startswith("user.")] == [
        ("user.enable", "li"), ("user.disable", "li")]
