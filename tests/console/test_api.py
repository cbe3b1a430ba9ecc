"""The console's JSON API over HTTP: sessions, CSRF, roles, the takeover race, silence, audit."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from channels.base import OutboundMessage
from config.settings import Settings
from gateway import keys
from gateway.streams import Streams
from tests.conftest import photo, wait_for_events
from tests.console.conftest import PASSWORD
from tests.gateway.test_web_e2e import new_session, say
from tests.ticket_client import conftest as ledger_conftest
from ticket_client.deadlines import said

XSS = "<img src=x onerror=alert(1)>"
database_url = ledger_conftest.database_url  # the fixture: an empty ledger on SQLite and on PostgreSQL


async def waiting_conversation(client: httpx.AsyncClient) -> tuple[dict[str, str], str, str]:
    """A web citizen who asked for a person; returns (session, conversation key, events cursor)."""
    session = await new_session(client)
    await say(client, session, "转人工")
    _, cursor = await wait_for_events(client, session, lambda e: e["type"] == "reply" and "人工" in e["text"])
    return session, f"web:{session['session_id']}", cursor


async def test_without_a_session_everything_is_refused(client: httpx.AsyncClient) -> None:
    for path in ("/me", "/queue", "/conversation?key=web:x", "/stats", "/audit", "/canned", "/users", "/report"):
        r = await client.get("/api/console" + path)
        assert r.status_code == 401, (path, r.status_code)
    for path in ("/takeover", "/reply", "/handback", "/close", "/note", "/logout", "/users",
                 "/tickets/12345-20261127-000001/withdraw"):
        r = await client.post("/api/console" + path, json={"key": "web:x", "text": "hi"})
        assert r.status_code in (401, 403), (path, r.status_code)
    r = await client.put("/api/console/canned", json={"items": ["x"]})
    assert r.status_code == 401
    page = await client.get("/console/")
    assert page.status_code == 200 and "登录" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_login_cookie_is_httponly_and_samesite(app: Any, client: httpx.AsyncClient) -> None:
    await app.state.console.users.create("wang", "operator", PASSWORD, "王坐席")
    r = await client.post("/api/console/login", json={"username": "wang", "password": PASSWORD})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert r.json()["user"] == {"name": "wang", "role": "operator", "display_name": "王坐席", "disabled": False,
                                "unit": ""}
    stored = await app.state.runtime.redis.hget("hl:console:user:wang", "pw")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    page = await client.get("/console/")
    assert "坐席工作台" in page.text and "login-form" not in page.text
    assert (await client.get("/api/console/me")).status_code == 200
    me = r.json()
    r = await client.post("/api/console/logout", headers={"X-CSRF-Token": me["csrf"]})
    assert r.status_code == 200
    assert (await client.get("/api/console/me")).status_code == 401


async def test_wrong_passwords_are_rate_limited(app: Any, client: httpx.AsyncClient, console_login: Any) -> None:
    await app.state.console.users.create("li", "operator", PASSWORD)
    for _ in range(5):
        r = await client.post("/api/console/login", json={"username": "li", "password": "wrong-password"})
        assert r.status_code == 401
    r = await client.post("/api/console/login", json={"username": "li", "password": PASSWORD})
    assert r.status_code == 429
    for i in range(15):  # the address's own (wider) limit: 20 wrong passwords on any accounts
        r = await client.post("/api/console/login", json={"username": f"guess{i}", "password": "whatever-it-is"})
        assert r.status_code == 401
    r = await client.post("/api/console/login", json={"username": "nobody", "password": "whatever-it-is"})
    assert r.status_code == 429
    await app.state.runtime.redis.delete("hl:console:fail:ip:127.0.0.1")
    boss = await console_login("boss", "supervisor")
    entries = (await boss.get("/audit", params={"action": "login.failed"})).json()["entries"]
    assert len(entries) == 20 and sum(e["actor"] == "li" for e in entries) == 5
    throttled = (await boss.get("/audit", params={"action": "login.throttled"})).json()["entries"]
    assert [e["actor"] for e in throttled] == ["nobody", "li"]


async def test_state_changes_need_the_csrf_token(client: httpx.AsyncClient, console_login: Any) -> None:
    _, key, _ = await waiting_conversation(client)
    op = await console_login("zhao")
    r = await op.client.post("/api/console/takeover", json={"key": key})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = await op.client.post("/api/console/takeover", json={"key": key}, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    r = await op.post("/takeover", {"key": key}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = await op.post("/takeover", {"key": key}, headers={"Origin": "http://test"})
    assert r.status_code == 200, r.text


async def test_roles_are_enforced_on_the_server(client: httpx.AsyncClient, console_login: Any) -> None:
    _, key, _ = await waiting_conversation(client)
    alice = await console_login("alice")
    bob = await console_login("bob")
    boss = await console_login("boss", "supervisor")
    for path in ("/stats", "/audit"):
        assert (await alice.get(path)).status_code == 403
        assert (await boss.get(path)).status_code == 200
    assert (await alice.put("/canned", {"items": ["您好"]})).status_code == 403
    assert (await alice.post("/users", {"name": "eve", "role": "supervisor"})).status_code == 403
    r = await boss.put("/canned", {"items": ["您好，请讲", "请稍等"]})
    assert r.status_code == 200
    assert (await alice.get("/canned")).json() == {"items": ["您好，请讲", "请稍等"], "editable": False}
    r = await boss.post("/users", {"name": "carol", "role": "operator"})
    assert r.status_code == 201 and len(r.json()["password"]) >= 10

    assert (await bob.post("/reply", {"key": key, "text": "抢答"})).status_code == 403  # not taken yet
    assert (await alice.post("/takeover", {"key": key})).status_code == 200
    assert (await bob.post("/reply", {"key": key, "text": "抢答"})).status_code == 403
    assert (await bob.post("/handback", {"key": key})).status_code == 403
    assert (await bob.post("/close", {"key": key})).status_code == 403
    assert (await bob.post("/transfer", {"key": key, "to": "bob"})).status_code == 403
    assert (await alice.post("/transfer", {"key": key, "to": "bob"})).status_code == 200
    assert (await bob.post("/reply", {"key": key, "text": "您好，我来跟进"})).status_code == 200
    assert (await alice.post("/reply", {"key": key, "text": "还是我"})).status_code == 403
    assert (await boss.post("/handback", {"key": key})).status_code == 200  # supervisors may
    stats = (await boss.get("/stats")).json()
    assert stats["first_reply_s"]["count"] == 1 and stats["first_reply_s"]["median"] >= 0


async def test_takeover_race_has_exactly_one_winner(client: httpx.AsyncClient, console_login: Any) -> None:
    _, key, _ = await waiting_conversation(client)
    operators = [await console_login(f"op{i}") for i in range(6)]
    results = await asyncio.gather(*(op.post("/takeover", {"key": key}) for op in operators))
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [409] * 5, codes
    winner = operators[[r.status_code for r in results].index(200)].name
    for r in results:
        if r.status_code == 409:
            assert winner in r.json()["detail"]
    row = next(c for c in (await operators[0].get("/queue")).json()["conversations"] if c["key"] == key)
    assert row["mode"] == "operator" and row["assignee"] == winner and row["reason"] == "citizen_asked"
    boss = await console_login("boss", "supervisor")
    audit = (await boss.get("/audit", params={"limit": 50})).json()["entries"]
    assert sum(e["action"] == "takeover" for e in audit) == 1
    assert sum(e["action"] == "takeover.refused" for e in audit) == 5


async def test_takeover_silences_the_bot_until_handed_back(client: httpx.AsyncClient, console_login: Any) -> None:
    session, key, cursor = await waiting_conversation(client)
    op = await console_login("wu")
    assert (await op.post("/takeover", {"key": key})).status_code == 200
    _, cursor = await wait_for_events(client, session, lambda e: e["type"] == "operator", after=cursor)
    r = await op.post("/reply", {"key": key, "text": "您好，我是人工客服，请讲"})
    assert r.status_code == 200
    events, cursor = await wait_for_events(client, session, lambda e: "请讲" in e["text"], after=cursor)
    assert next(e for e in events if "请讲" in e["text"])["type"] == "operator"

    for text in ("你好", "小区门口的路灯坏了一个星期了", "在吗？", XSS):
        assert (await say(client, session, text)).status_code == 202
    await asyncio.sleep(1.5)
    r = await client.get(f"/channels/web/sessions/{session['session_id']}/events",
                         params={"after": cursor}, headers={"Authorization": f"Bearer {session['token']}"})
    later = r.json()["events"]
    assert [e["type"] for e in later] == ["echo"] * 4, later  # the bot said nothing
    conv = (await op.get("/conversation", params={"key": key})).json()
    citizen = [m["text"] for m in conv["history"] if m["from"] == "citizen"]
    assert citizen[-4:] == ["你好", "小区门口的路灯坏了一个星期了", "在吗？", XSS]
    assert conv["can_reply"] is True

    assert (await op.post("/handback", {"key": key})).status_code == 200
    cursor = r.json()["cursor"]
    await say(client, session, "A3区联丰路米兰春天小区门口的路灯坏了，晚上很黑")
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "reply" and "确认" in e["text"],
                                      after=cursor)
    kinds = [m["kind"] for m in (await op.get("/conversation", params={"key": key})).json()["history"]]
    assert "takeover" in kinds and "handback" in kinds


async def test_bot_reply_already_queued_is_dropped_after_takeover(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    session, key, cursor = await waiting_conversation(client)
    op = await console_login("qian")
    before = time.time() - 2
    assert (await op.post("/takeover", {"key": key})).status_code == 200
    streams = app.state.runtime.streams
    stale = OutboundMessage(id="stale-bot", conversation_key=key, channel="web", kind="reply",
                            text="机器人迟到的回复", created_at=datetime.fromtimestamp(before, UTC))
    fresh = OutboundMessage(id="late-op", conversation_key=key, channel="web", kind="operator",
                            text="人工的旧消息照常送达", created_at=stale.created_at)
    await streams.publish(stale)
    await streams.publish(fresh)
    events, _ = await wait_for_events(client, session, lambda e: e["id"] == "late-op", after=cursor)
    await asyncio.sleep(0.5)
    r = await client.get(f"/channels/web/sessions/{session['session_id']}/events",
                         headers={"Authorization": f"Bearer {session['token']}"})
    assert "机器人迟到的回复" not in [e["text"] for e in r.json()["events"]]
    history = (await op.get("/conversation", params={"key": key})).json()["history"]
    assert any(m["kind"] == "bot_suppressed" and m["text"] == "机器人迟到的回复" for m in history)
    assert await app.state.runtime.redis.get(keys.sent("stale-bot")) == "dropped"


async def test_queue_lists_waiting_first_with_filters_and_counts(client: httpx.AsyncClient, console_login: Any) -> None:
    bot_session = await new_session(client)
    await say(client, bot_session, "你好")
    await wait_for_events(client, bot_session, lambda e: e["type"] == "reply")
    _, waiting_key, _ = await waiting_conversation(client)
    op = await console_login("sun")
    body = (await op.get("/queue")).json()
    rows = body["conversations"]
    assert rows[0]["key"] == waiting_key and rows[0]["mode"] == "waiting"
    assert rows[0]["reason"] == "citizen_asked" and rows[0]["channel"] == "web"
    assert rows[0]["last_text"] == "转人工" and rows[0]["waiting_since"] > 0
    assert body["counts"]["waiting"] == 1 and body["counts"]["bot"] == 1 and body["counts"]["all"] == 2
    assert [r["key"] for r in (await op.get("/queue", params={"status": "bot"})).json()["conversations"]] == [
        f"web:{bot_session['session_id']}"
    ]
    assert (await op.get("/queue", params={"channel": "telegram"})).json()["conversations"] == []
    await op.post("/takeover", {"key": waiting_key})
    mine = (await op.get("/queue", params={"assignee": "me"})).json()
    assert [r["key"] for r in mine["conversations"]] == [waiting_key] and mine["counts"]["mine"] == 1


async def test_notes_tickets_and_audit(app: Any, client: httpx.AsyncClient, console_login: Any) -> None:
    session, key, cursor = await waiting_conversation(client)
    op = await console_login("zhou")
    await op.post("/takeover", {"key": key})
    assert (await op.post("/note", {"key": key, "text": "市民来电多次，注意安抚"})).status_code == 200
    form = {"title": "路灯不亮", "description": "小区门口路灯坏了一周", "category": ["城乡建设", "市政设施"],
            "request_type": "投诉", "urgent": False, "location_text": "A3区联丰路米兰春天小区",
            "contact": "", "departments": ["A3区城管局"]}
    assert (await op.put("/form", {"key": key, "form": form})).status_code == 200
    assert (await op.get("/conversation", params={"key": key})).json()["form"]["title"] == "路灯不亮"
    r = await op.post("/ticket", {"key": key, "form": form, "request_id": "req1"})
    assert r.status_code == 200, r.text
    ticket_id = r.json()["ticket_id"]
    again = await op.post("/ticket", {"key": key, "form": form, "request_id": "req1"})
    assert again.json()["ticket_id"] == ticket_id  # a retried click files one ticket
    events, cursor = await wait_for_events(client, session, lambda e: e["type"] == "ticket_filed", after=cursor)
    assert [e["ticket_id"] for e in events if e["type"] == "ticket_filed"] == [ticket_id]
    assert not any("安抚" in e["text"] for e in events)  # the note stayed inside
    filed = next(e for e in events if e["type"] == "ticket_filed")
    due = (await op.get(f"/tickets/{ticket_id}")).json()["ticket"]["due_at"]
    assert f"办理时限：{said(datetime.fromtimestamp(due, UTC))}前。" in filed["text"]  # the ticket's own
    r = await op.post(f"/tickets/{ticket_id}/status", {"status": "accepted", "note": "已派至A3区城管局"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    await wait_for_events(client, session, lambda e: e["type"] == "status_update", after=cursor)
    conv = (await op.get("/conversation", params={"key": key})).json()
    assert [t["ticket_id"] for t in conv["tickets"]] == [ticket_id]
    assert any(m["from"] == "note" and m["author"] == "zhou" for m in conv["history"])
    assert any(m["from"] == "system" and m["ticket_id"] == ticket_id for m in conv["history"])
    assert (await op.post("/close", {"key": key})).status_code == 200
    assert (await op.post("/close", {"key": key})).status_code == 409

    boss = await console_login("boss", "supervisor")
    entries = (await boss.get("/audit", params={"actor": "zhou"})).json()["entries"]
    actions = [e["action"] for e in reversed(entries)]
    assert actions == ["login", "takeover", "note", "form.save", "ticket.file", "ticket.file", "ticket.status", "close"]
    assert all(e["target"] == key for e in entries if e["action"] != "login")
    stats = (await boss.get("/stats")).json()
    assert stats["queue_length"] == 0 and stats["counts"]["closed"] == 1


async def test_a_ticket_an_operator_filed_offers_its_place_to_the_next_matter(
    client: httpx.AsyncClient, console_login: Any
) -> None:
    """After the operator files and hands back, the citizen's next matter without a place is
    asked "还是在…吗？", as after a ticket the bot filed."""
    session, key, cursor = await waiting_conversation(client)
    op = await console_login("qian")
    await op.post("/takeover", {"key": key})
    form = {"title": "路灯不亮", "description": "小区门口路灯坏了一周", "category": ["城乡建设"],
            "request_type": "投诉", "urgent": False, "location_text": "A3区联丰路米兰春天小区",
            "contact": "", "departments": ["A3区城管局"]}
    assert (await op.post("/ticket", {"key": key, "form": form, "request_id": "r1"})).status_code == 200
    _, cursor = await wait_for_events(client, session, lambda e: e["type"] == "ticket_filed", after=cursor)
    assert (await op.post("/handback", {"key": key})).status_code == 200
    await say(client, session, "还有楼道里的声控灯也坏了，晚上上楼黑乎乎的")
    events, _ = await wait_for_events(
        client, session, lambda e: e["type"] == "reply" and "米兰春天" in e["text"], after=cursor
    )
    offer = next(e for e in events if e["type"] == "reply" and "米兰春天" in e["text"])
    assert "上一件" in offer["text"]


async def test_a_local_unit_on_the_form_is_filed_as_the_office_of_its_place(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    """属地派单 from the console: 属地街道办事处 left on the form goes to the street office of the
    place the form names; 属地政府 to the district's government."""
    _, key, _ = await waiting_conversation(client)
    op = await console_login("wei")
    await op.post("/takeover", {"key": key})
    form = {"title": "路灯不亮", "description": "小区门口路灯坏了一周", "category": ["城乡建设"],
            "location_text": "雨花区洞井街道桂花坪社区", "departments": ["城市管理和综合执法局", "属地街道办事处", "属地政府"]}
    r = await op.post("/ticket", {"key": key, "form": form, "request_id": "l1"})
    assert r.status_code == 200, r.text
    ticket = await app.state.runtime.tickets.get(r.json()["ticket_id"])
    assert ticket.departments == ["城市管理和综合执法局", "洞井街道办事处", "雨花区人民政府"]


async def test_the_form_of_a_bots_draft_shows_the_office_of_its_place(client: httpx.AsyncClient, console_login: Any) -> None:
    """An operator taking over a draft sees where it would go: the street office, not 属地街道办事处."""
    session = await new_session(client)
    await say(client, session, "雨花区洞井街道桂花坪社区门口的路灯坏了一个星期了")
    _, cursor = await wait_for_events(client, session, lambda e: e["type"] == "reply" and "确认" in e["text"])
    await say(client, session, "转人工")
    await wait_for_events(client, session, lambda e: e["type"] == "reply" and "人工" in e["text"], after=cursor)
    op = await console_login("jiang")
    conv = (await op.get("/conversation", params={"key": f"web:{session['session_id']}"})).json()
    assert "洞井街道办事处" in conv["form"]["departments"] and "属地街道办事处" not in conv["form"]["departments"]


async def test_half_an_emoji_typed_by_an_operator_is_kept_as_a_replacement_character(
    client: httpx.AsyncClient, console_login: Any
) -> None:
    """A browser that cuts text by UTF-16 units can send half an emoji (JSON ``\\ud83d``); a
    length-limited field used to refuse the whole request (422), so the operator had to retype."""
    session, key, cursor = await waiting_conversation(client)
    op = await console_login("feng")
    await op.post("/takeover", {"key": key})
    raw = {"Content-Type": "application/json"}
    r = await op.post("/reply", content=('{"key": "' + key + '", "text": "您好，已收到\\ud83d"}').encode(), headers=raw)
    assert r.status_code == 200, r.text
    events, cursor = await wait_for_events(client, session, lambda e: "已收到" in e.get("text", ""), after=cursor)
    assert any(e["text"] == "您好，已收到\ufffd" for e in events)
    r = await op.post("/note", content=('{"key": "' + key + '", "text": "市民很着急\\udc00"}').encode(), headers=raw)
    assert r.status_code == 200, r.text
    form = ('{"key": "' + key + '", "form": {"title": "路灯不亮\\ud83d", "category": ["城乡建设\\ud83d"], '
            '"location_text": "A3区联丰路\\ud83d"}}')
    r = await op.client.put("/api/console/form", content=form.encode(), headers={**raw, "X-CSRF-Token": op.csrf})
    assert r.status_code == 200, r.text
    conv = (await op.get("/conversation", params={"key": key})).json()
    assert conv["form"]["title"] == "路灯不亮\ufffd" and conv["form"]["category"] == ["城乡建设\ufffd"]
    assert any(m["from"] == "note" and m["text"] == "市民很着急\ufffd" for m in conv["history"])


async def test_a_photo_sent_while_waiting_goes_with_the_ticket_the_operator_files(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    session, key, cursor = await waiting_conversation(client)
    r = await client.post(f"/channels/web/sessions/{session['session_id']}/media", content=photo(),
                          headers={"Authorization": f"Bearer {session['token']}", "Content-Type": "image/jpeg"})
    ref = r.json()["attachment"]["ref"]
    assert (await say(client, session, "", attachments=[{"ref": ref}])).status_code == 202
    redis = app.state.runtime.redis
    for _ in range(200):  # the worker keeps it in the conversation's state (the bot stays silent)
        if ref in (await redis.hget(keys.conversation(key), "state") or ""):
            break
        await asyncio.sleep(0.05)
    op = await console_login("chu")
    await op.post("/takeover", {"key": key})
    assert (await op.get("/conversation", params={"key": key})).json()["attachments"] == 1  # the panel says so
    form = {"title": "路灯不亮", "description": "小区门口路灯坏了一周", "location_text": "A3区联丰路米兰春天小区"}
    r = await op.post("/ticket", {"key": key, "form": form, "request_id": "p1"})
    assert r.status_code == 200, r.text
    ticket = await app.state.runtime.tickets.get(r.json()["ticket_id"])
    assert ticket.attachments == [ref]
    conv = (await op.get("/conversation", params={"key": key})).json()
    shown = [m for m in conv["history"] if m["from"] == "citizen" and m.get("media")]
    assert [(m["media"], m["refs"]) for m in shown] == [(["图片"], [ref])]  # the operator sees it came…
    r = await op.get("/media", params={"ref": ref})  # …and the photo itself
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    small = await op.get("/media", params={"ref": ref, "thumb": "1"})  # as the history shows it
    assert small.status_code == 200 and small.content[:2] == b"\xff\xd8" and len(small.content) < len(r.content)
    assert (await op.get("/media", params={"ref": "upload:" + "0" * 32})).status_code == 404
    assert (await client.get("/api/console/media", params={"ref": ref})).status_code == 401  # operators only
    assert ref not in (await redis.hget(keys.conversation(key), "state") or "")  # not for the next one


async def test_a_shared_location_links_to_the_map_the_centre_uses(
    app: Any, client: httpx.AsyncClient, console_login: Any, settings: Any
) -> None:
    session, key, _ = await waiting_conversation(client)
    gps = {"lat": 39.915, "lng": 116.404, "label": ""}  # a browser's WGS-84 position
    assert (await say(client, session, "", location=gps)).status_code == 202
    op = await console_login("chu")
    for _ in range(100):
        conv = (await op.get("/conversation", params={"key": key})).json()
        shared = [m for m in conv["history"] if m.get("geo")]
        if shared:
            break
        await asyncio.sleep(0.05)
    lat, lng = shared[0]["geo"]
    assert abs(lat - 39.916404) < 1e-5 and abs(lng - 116.410244) < 1e-5  # in the map's GCJ-02
    assert conv["map_url"] == "https://uri.amap.com/marker?position={lng},{lat}&coordinate=gaode"
    settings.console_map_url = "https://gis.example.gov.cn/map?x={lng}&y={lat}"  # the city's own GIS
    conv = (await op.get("/conversation", params={"key": key})).json()
    assert conv["map_url"] == "https://gis.example.gov.cn/map?x={lng}&y={lat}"


async def test_a_tap_on_the_menu_shows_which_button(app: Any, client: httpx.AsyncClient, console_login: Any) -> None:
    """A menu click has no words: the operator reads ［点击菜单：进度查询］, not an empty line."""
    from channels.base import InboundMessage

    tap = InboundMessage(channel="telegram", channel_message_id="city:1", sender="city/42", event="click",
                         meta={"event_key": "hotline:progress"})
    assert await app.state.runtime.streams.enqueue(tap)
    op = await console_login("chu")
    conv = (await op.get("/conversation", params={"key": tap.conversation_key})).json()
    first = conv["history"][0]
    assert (first["from"], first["kind"], first["text"], first["menu"]) == ("citizen", "click", "", "进度查询")


async def test_the_queue_marks_a_citizen_pressing_for_their_ticket(client: httpx.AsyncClient, console_login: Any) -> None:
    """催办 in a chat is answered by the bot and stays in the bot's hands, but the live queue says
    so on the row (for 24 hours), so an operator on shift sees who is pressing."""
    from tests.gateway.test_web_e2e import file_ticket

    session = await new_session(client)
    await file_ticket(client, session)
    op = await console_login("chu")
    key = f"web:{session['session_id']}"

    async def row() -> dict[str, Any]:
        rows = (await op.get("/queue")).json()["conversations"]
        return next(r for r in rows if r["key"] == key)

    assert (await row())["urged"] is False
    assert (await say(client, session, "怎么还没人来修啊，催一下")).status_code == 202
    await wait_for_events(client, session, lambda e: e["type"] == "reply" and "催办" in e["text"])
    pressed = await row()
    assert pressed["urged"] is True and pressed["mode"] == "bot"


async def test_supervisors_see_dead_letters_and_retry_or_discard_them(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    """What kept failing is shown readably to supervisors only; a retry puts it back on its stream
    (the citizen gets the message after all), a discard drops it; each once, and audited."""
    streams = app.state.runtime.streams
    session = await new_session(client)
    key = f"web:{session['session_id']}"
    lost = OutboundMessage(conversation_key=key, channel="web", kind="operator", text="您好，已转交街道办处理")
    await streams.dead_letter(keys.OUTBOUND, "1-1", lost.model_dump_json(), "web: session closed")
    draft = {"channel": "web", "conversation_key": key, "title": XSS, "description": "路灯坏了"}
    filing = json.dumps({"key": "file:web:x", "draft": draft, "attempt": 8})
    await streams.dead_letter(keys.OUTBOX, "1-2", filing, "platform answered 502")

    op = await console_login("wang")
    assert (await op.get("/dead-letters")).status_code == 403
    assert (await op.post("/dead-letters/settle", json={"ref": f"{keys.OUTBOUND}/1-1", "retry": True})).status_code == 403
    boss = await console_login("boss", "supervisor")
    listed = (await boss.get("/dead-letters")).json()
    assert listed["count"] == 2
    delivery, filed = listed["items"]
    assert delivery == {
        "ref": f"{keys.OUTBOUND}/1-1", "kind": "delivery", "message_kind": "operator", "at": delivery["at"],
        "reason": "web: session closed", "key": key, "channel": "web", "text": "您好，已转交街道办处理", "ticket_id": "",
    }
    assert filed["kind"] == "filing" and filed["text"] == XSS and filed["key"] == key

    r = await boss.post("/dead-letters/settle", json={"ref": delivery["ref"], "retry": True})
    assert r.status_code == 200 and r.json()["item"]["kind"] == "delivery"
    await wait_for_events(client, session, lambda e: e["type"] == "operator" and "街道办" in e["text"])
    again = await boss.post("/dead-letters/settle", json={"ref": delivery["ref"], "retry": True})
    assert again.status_code == 404 and "已被处理" in again.json()["detail"]

    assert (await boss.post("/dead-letters/settle", json={"ref": filed["ref"], "retry": False})).status_code == 200
    assert (await boss.get("/dead-letters")).json() == {"items": [], "count": 0}
    assert await app.state.runtime.redis.xlen(keys.OUTBOX) == 0  # discarded, not filed
    done = (await boss.get("/audit")).json()["entries"]
    assert [(e["action"], e["target"]) for e in done[:2]] == [("dead.discard", key), ("dead.retry", key)]


async def test_a_dead_filing_retried_starts_its_attempts_again(settings: Settings) -> None:
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    streams = Streams(redis)  # no workers here: the entry stays on the stream to be looked at
    filing = json.dumps({"key": "file:web:y", "draft": {"channel": "web", "conversation_key": "web:y",
                                                        "description": "路灯坏了"}, "attempt": 8})
    await streams.dead_letter(keys.OUTBOX, "2-1", filing, "platform answered 502")
    assert await streams.settle_dead_letter(f"{keys.OUTBOX}/2-1", retry=True) is not None
    [(_, fields)] = await redis.xrange(keys.OUTBOX)
    assert json.loads(fields["data"])["attempt"] == 0 and json.loads(fields["data"])["key"] == "file:web:y"
    assert await streams.settle_dead_letter(f"{keys.OUTBOX}/2-1", retry=True) is None
    assert await streams.settle_dead_letter("hl:elsewhere/2-1", retry=True) is None
    await redis.aclose()


async def test_supervisors_see_intake_and_satisfaction(app: Any, client: httpx.AsyncClient, console_login: Any) -> None:
    from tests.gateway.test_web_e2e import file_ticket

    rt = app.state.runtime
    ticket_id, _ = await file_ticket(client, await new_session(client))
    second, _ = await file_ticket(client, await new_session(client))
    await rt.tickets.urge(second, "怎么还没人来修")  # 催办, before it was done
    for status in ("accepted", "resolved"):
        await rt.tickets.set_status(ticket_id, status)
        await rt.tickets.set_status(second, status)
    await rt.tickets.rate(ticket_id, "基本满意")
    boss = await console_login("boss", "supervisor")
    service = (await boss.get("/stats")).json()["service"]
    assert [r["label"] for r in service] == ["今日", "近7天", "近30天"]
    today = service[0]
    assert today["filed"] == 2 and today["by_channel"] == {"web": 2} and today["resolved"] == 2
    assert today["ratings"] == {"基本满意": 1} and today["satisfaction"] == 1.0 and today["response_rate"] == 0.5
    assert today["urged"] == 1
    assert service[2]["filed"] >= today["filed"]


async def test_operators_look_tickets_up_by_number_phone_or_words(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    from tests.gateway.test_web_e2e import file_ticket
    from ticket_client import TicketDraft

    rt = app.state.runtime
    session = await new_session(client)
    lamp, _ = await file_ticket(client, session)
    phoned = await rt.tickets.file(
        TicketDraft(channel="wechat_oa", conversation_key="wechat_oa:o-gone", contact="13912345678",
                    title="楼道燃气味", description="米兰春天G2栋楼道有燃气味", urgent=True),
        "phoned-1",
    )
    await rt.tickets.set_status(phoned.ticket_id, "accepted", "已派至A3区燃气公司")
    op = await console_login("li")

    async def found(query: str) -> list[str]:
        r = await op.get("/tickets" + query)
        assert r.status_code == 200, r.text
        return [t["ticket_id"] for t in r.json()["tickets"]]

    assert await found("") == [phoned.ticket_id, lamp]
    assert await found("?q=" + lamp[-6:]) == [lamp]
    assert await found("?q=13912345678") == [phoned.ticket_id]
    assert await found("?q=路灯") == [lamp]
    assert await found("?status=accepted") == [phoned.ticket_id]
    assert await found("?urgent=true") == [phoned.ticket_id]
    assert await found("?channel=web&days=1") == [lamp]
    assert (await op.get("/tickets?status=nonsense")).status_code == 400
    assert (await client.get("/api/console/tickets")).status_code == 401  # no session

    detail = (await op.get(f"/tickets/{phoned.ticket_id}")).json()
    ticket = detail["ticket"]
    assert ticket["contact"] == "13912345678" and ticket["urgent"] is True
    assert [(h["status"], h["note"]) for h in ticket["history"]] == [("received", ""), ("accepted", "已派至A3区燃气公司")]
    assert detail["conversation"] is False  # nobody holds that conversation any more
    assert detail["status_by_platform"] is False
    assert (await op.get(f"/tickets/{lamp}")).json()["conversation"] is True
    assert (await op.get("/tickets/12345-20000101-000001")).status_code == 404

    r = await op.post(f"/tickets/{lamp}/notes", {"note": "  已联系物业，预计周五前修复 "})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "received"  # a note moves nothing
    assert r.json()["history"][-1] == {**r.json()["history"][-1], "kind": "note", "note": "已联系物业，预计周五前修复"}
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "status_update")
    update = next(e for e in events if e["type"] == "status_update")
    assert "办理进展" in update["text"] and "已联系物业" in update["text"]
    assert (await op.post(f"/tickets/{lamp}/notes", {"note": "   "})).status_code == 400
    await rt.tickets.set_status(phoned.ticket_id, "returned")
    await rt.tickets.set_status(phoned.ticket_id, "closed")
    refused = await op.post(f"/tickets/{phoned.ticket_id}/notes", {"note": "补充说明"})
    assert refused.status_code == 409 and "已归档" in refused.json()["detail"]

    boss = await console_login("boss", "supervisor")
    entries = (await boss.get("/audit?limit=50")).json()["entries"]
    assert [e["detail"]["ticket_id"] for e in entries if e["action"] == "ticket.note"] == [lamp]
    searches = [e for e in entries if e["action"] == "ticket.search"]
    assert [e["actor"] for e in searches] == ["li"] * 3  # lookups by words only, not the bare filters
    assert {e["detail"]["q"] for e in searches} >= {"路灯", lamp[-6:]}
    assert not any("13912345678" in json.dumps(e, ensure_ascii=False) for e in searches)  # masked


async def test_supervisors_see_the_tickets_past_their_time_limit(
    app: Any, client: httpx.AsyncClient, console_login: Any, settings: Settings
) -> None:
    """超期未办结, by 办理时限 (HOTLINE_RESOLVE_DAYS 15 working days, HOTLINE_RESOLVE_URGENT_HOURS
    24), and 即将超期 (HOTLINE_DUE_SOON_HOURS 24), today, whatever today is."""
    from datetime import timedelta

    from config.workdays import BEIJING, WorkCalendar
    from ticket_client import LocalLedger, TicketDraft

    def filed_ago(**ago: float) -> Any:
        return lambda: datetime.now(UTC) - timedelta(**ago)

    async def file(ago: dict[str, float], key: str, urgent: bool = False) -> str:
        async with LocalLedger(settings.effective_database_url, clock=filed_ago(**ago)) as ledger:
            ref = await ledger.file(TicketDraft(channel="web", conversation_key=f"web:{key}", urgent=urgent,
                                                description="小区门口路灯坏了"), key)
            return ref.ticket_id

    late = await file({"days": 45}, "late")  # 15 working days even across the Spring Festival
    late_urgent = await file({"hours": 30}, "late-urgent", urgent=True)
    await file({"days": 3}, "in-time")
    soon_urgent = await file({"hours": 2}, "in-time-urgent", urgent=True)  # due in 22 hours
    done = await file({"days": 45}, "done")
    await app.state.runtime.tickets.set_status(done, "accepted")
    await app.state.runtime.tickets.set_status(done, "resolved")

    boss = await console_login("boss", "supervisor")
    assert (await boss.get("/me")).json()["due_soon_hours"] == 24
    summary = (await boss.get("/stats")).json()
    assert (summary["overdue"], summary["due_soon"], summary["due_soon_hours"]) == (2, 1, 24)
    rows = (await boss.get("/tickets?overdue=true")).json()["tickets"]
    assert [r["ticket_id"] for r in rows] == [late_urgent, late]
    assert all(r["overdue"] and not r["due_soon"] for r in rows)
    soon = (await boss.get("/tickets?due_soon=true")).json()["tickets"]
    assert [(r["ticket_id"], r["due_soon"], r["overdue"]) for r in soon] == [(soon_urgent, True, False)]
    either = (await boss.get("/tickets?overdue=true&due_soon=true")).json()["tickets"]
    assert [r["ticket_id"] for r in either] == [soon_urgent, late_urgent, late]
    everything = {r["ticket_id"]: r for r in (await boss.get("/tickets")).json()["tickets"]}
    assert not everything[done]["overdue"] and everything[done]["due_at"]  # resolved in the end
    await app.state.runtime.tickets.rate(done, "不满意")
    assert [r["ticket_id"] for r in (await boss.get("/tickets?rating=不满意")).json()["tickets"]] == [done]
    assert (await boss.get("/tickets?rating=差评")).status_code == 400
    detail = (await boss.get(f"/tickets/{late}")).json()["ticket"]
    filed = datetime.fromtimestamp(detail["created_at"], UTC)
    due = datetime.fromtimestamp(detail["due_at"], UTC)
    assert detail["overdue"] and due == WorkCalendar().deadline(filed, 15)
    assert due.astimezone(BEIJING).strftime("%H:%M") == "00:00"  # the end of a Beijing day
    settings.resolve_workdays = False  # calendar time, as before working days
    detail = (await boss.get(f"/tickets/{late}")).json()["ticket"]
    assert detail["overdue"] and detail["due_at"] - detail["created_at"] == 15 * 24 * 3600
    settings.due_soon_hours = 0  # 即将超期 off: no card, no rows
    assert (await boss.get("/stats")).json()["due_soon"] == 0 and (await boss.get("/me")).json()["due_soon_hours"] == 0
    assert (await boss.get("/tickets?due_soon=true")).json()["tickets"] == []
    assert not any(r["due_soon"] for r in (await boss.get("/tickets")).json()["tickets"])


@pytest.fixture
def ledger_url(settings: Settings, database_url: str) -> str:
    """The app's ledger on SQLite and (HOTLINE_TEST_DATABASE_URL) PostgreSQL: ask for it before ``app``."""
    settings.database_url = database_url
    return database_url


async def file_at(settings: Settings, at: str, key: str, urgent: bool = False, status: str = "",
                  request_type: str = "") -> str:
    """A ticket filed at ``at`` (Beijing time), moved on to ``status`` if given."""
    from config.workdays import BEIJING
    from ticket_client import LocalLedger, TicketDraft

    filed = datetime.fromisoformat(at).replace(tzinfo=BEIJING)
    async with LocalLedger(settings.effective_database_url, clock=lambda: filed) as ledger:
        ref = await ledger.file(TicketDraft(channel="web", conversation_key=f"web:{key}", urgent=urgent,
                                            request_type=request_type, description="小区门口路灯坏了"), key)
        for step in ("accepted", status) if status else ():
            await ledger.set_status(ref.ticket_id, step)
        return ref.ticket_id


async def agreed(boss: Any, t: dict[str, str]) -> tuple[set[str], set[str]]:
    """超期 and 即将超期 (names of ``t``) as the 班长视图 cards, 工单查询's filters, each row's flags,
    the ticket's own view and the CSV export (all rows, and filtered) find them: all the same."""
    import csv
    import io

    name = {v: k for k, v in t.items()}
    summary = (await boss.get("/stats")).json()
    listed = (await boss.get("/tickets")).json()["tickets"]
    assert len(listed) == len(t)
    flagged = ({name[r["ticket_id"]] for r in listed if r["overdue"]},
               {name[r["ticket_id"]] for r in listed if r["due_soon"]})
    filtered = ({name[r["ticket_id"]] for r in (await boss.get("/tickets?overdue=true")).json()["tickets"]},
                {name[r["ticket_id"]] for r in (await boss.get("/tickets?due_soon=true")).json()["tickets"]})
    exported = list(csv.DictReader(io.StringIO((await boss.get("/tickets.csv")).text.lstrip("\ufeff"))))
    in_csv = ({name[r["工单编号"]] for r in exported if r["超期"] == "是"},
              {name[r["工单编号"]] for r in exported if r["即将超期"] == "是"})
    csv_filtered: tuple[set[str], ...] = ()
    for only in ("overdue", "due_soon"):
        found = csv.DictReader(io.StringIO((await boss.get(f"/tickets.csv?{only}=true")).text.lstrip("\ufeff")))
        csv_filtered += ({name[r["工单编号"]] for r in found},)
    views = {k: (await boss.get(f"/tickets/{v}")).json()["ticket"] for k, v in t.items()}
    shown = ({k for k, v in views.items() if v["overdue"]}, {k for k, v in views.items() if v["due_soon"]})
    assert flagged == filtered == in_csv == csv_filtered == shown
    assert (summary["overdue"], summary["due_soon"]) == (len(flagged[0]), len(flagged[1]))
    return flagged


async def test_card_lookup_rows_and_export_agree_on_the_time_limit_around_national_day(
    ledger_url: str, app: Any, client: httpx.AsyncClient, console_login: Any, settings: Settings
) -> None:
    """Now pinned at Tuesday 2026-10-20 10:00 in Beijing, 15 working days. Mid-Autumn (09-25..27)
    and National Day (10-01..07, 调休 09-20 and 10-10) are no working days: a ticket filed on
    09-21 was due at 24:00 on 10-19, one filed on 09-22 is due at 24:00 on 10-20 (即将超期), one
    filed during the holiday on 10-28. Counted in calendar days, every one filed before 10-05 10:00
    would be late. The 班长视图 cards, 工单查询's filters, each row's flags, the ticket's own view and
    the CSV export agree, both ways of counting."""
    import csv
    import io

    from config.workdays import BEIJING

    now = datetime(2026, 10, 20, 10, 0, tzinfo=BEIJING)
    app.state.console.clock = lambda: now

    async def file(at: str, key: str, urgent: bool = False, status: str = "") -> str:
        return await file_at(settings, at, key, urgent, status)

    t = {
        "resolved": await file("2026-09-15T09:00", "resolved", status="resolved"),
        "returned": await file("2026-09-18T15:00", "returned", status="returned"),  # still open
        "monday": await file("2026-09-21T18:00", "monday"),
        "monday_urgent": await file("2026-09-21T18:00", "monday-urgent", urgent=True),
        "tuesday": await file("2026-09-22T09:00", "tuesday"),
        "wednesday": await file("2026-09-23T09:00", "wednesday"),
        "before_holiday": await file("2026-09-30T16:00", "before-holiday"),
        "in_holiday": await file("2026-10-03T11:00", "in-holiday"),
        "urgent_today": await file("2026-10-19T12:00", "urgent-today", urgent=True),  # due 12:00 today
        "fresh": await file("2026-10-20T09:30", "fresh"),
    }
    boss = await console_login("boss", "supervisor")

    assert await agreed(boss, t) == ({"returned", "monday", "monday_urgent"}, {"tuesday", "urgent_today"})
    detail = (await boss.get(f"/tickets/{t['in_holiday']}")).json()["ticket"]
    assert detail["due_at"] == datetime(2026, 10, 28, tzinfo=BEIJING).timestamp()  # 24:00 on 10-27
    exported = list(csv.DictReader(io.StringIO((await boss.get("/tickets.csv")).text.lstrip("\ufeff"))))
    assert {r["办理时限"] for r in exported if r["工单编号"] == t["in_holiday"]} == {"2026-10-28 00:00"}

    settings.resolve_workdays = False  # calendar days: the holidays count
    assert await agreed(boss, t) == (
        {"returned", "monday", "monday_urgent", "tuesday", "wednesday", "before_holiday", "in_holiday"},
        {"urgent_today"},
    )


async def test_a_redispatch_can_restart_the_time_limit_and_all_views_agree(
    ledger_url: str, app: Any, client: httpx.AsyncClient, console_login: Any, settings: Settings
) -> None:
    """HOTLINE_RESOLVE_RESTART_ON_REDISPATCH: a ticket filed on 09-18 that its department returned
    and the centre sent out again at 15:00 on Friday 10-09 is due 15 working days after that 派单
    (24:00 on 10-29; the 调休 Saturday 10-10 counts), not after its filing (24:00 on 10-15); one
    corrected while open (nothing sent out) keeps its filing's. Now pinned at Monday 10-19 10:00:
    the cards, filters, rows, the ticket's view and the export agree both ways."""
    from config.workdays import BEIJING
    from ticket_client import Correction, LocalLedger

    now = datetime(2026, 10, 19, 10, 0, tzinfo=BEIJING)
    app.state.console.clock = lambda: now
    t = {
        "redispatched": await file_at(settings, "2026-09-18T15:00", "redispatched", status="returned"),
        "corrected": await file_at(settings, "2026-09-18T15:00", "corrected"),
        "fresh": await file_at(settings, "2026-10-16T09:00", "fresh"),
    }
    sent = datetime(2026, 10, 9, 15, 0, tzinfo=BEIJING)
    async with LocalLedger(settings.effective_database_url, clock=lambda: sent) as ledger:
        await ledger.correct(t["redispatched"], Correction(by="op1", reason="非本单位职责", departments=["供电公司"]))
        await ledger.correct(t["corrected"], Correction(by="op1", departments=["城管局"]))
    boss = await console_login("boss", "supervisor")

    assert await agreed(boss, t) == ({"redispatched", "corrected"}, set())
    detail = (await boss.get(f"/tickets/{t['redispatched']}")).json()["ticket"]
    assert detail["due_at"] == datetime(2026, 10, 16, tzinfo=BEIJING).timestamp()

    settings.resolve_restart_on_redispatch = True
    assert await agreed(boss, t) == ({"corrected"}, set())
    detail = (await boss.get(f"/tickets/{t['redispatched']}")).json()["ticket"]
    assert detail["due_at"] == datetime(2026, 10, 30, tzinfo=BEIJING).timestamp()
    app.state.console.clock = lambda: datetime(2026, 10, 29, 9, 0, tzinfo=BEIJING)  # the new last day
    assert await agreed(boss, t) == ({"corrected"}, {"redispatched"})


async def test_each_request_type_has_its_own_time_limit_and_all_views_agree(
    ledger_url: str, app: Any, client: httpx.AsyncClient, console_login: Any, settings: Settings
) -> None:
    """HOTLINE_RESOLVE_DAYS_BY_TYPE 咨询=3,求助=5,建议=15,表扬=0, the rest 15 working days. Now pinned
    at Friday 2026-10-09 10:00, the second working day after National Day (10-01..07, no working
    days): a 咨询 filed on Monday 09-28 was due at 24:00 on 10-08 (09-29, 09-30, 10-08) and is 超期,
    a 投诉 filed the same moment is due on 10-23 and is not; a 咨询 filed on 09-29 is due at 24:00
    today (即将超期), late tomorrow, the 调休 Saturday 10-10. An urgent 咨询 keeps its 24 clock hours;
    a 表扬 is never late; a ticket without a type, or of a type not named, takes the 15 days."""
    import csv
    import io

    from config.workdays import BEIJING

    settings.resolve_days_by_type = {"咨询": 3, "求助": 5, "建议": 15, "表扬": 0}
    now = datetime(2026, 10, 9, 10, 0, tzinfo=BEIJING)
    app.state.console.clock = lambda: now

    async def file(at: str, key: str, request_type: str, urgent: bool = False, status: str = "") -> str:
        return await file_at(settings, at, key, urgent, status, request_type)

    t = {
        "consult_monday": await file("2026-09-28T15:00", "consult-monday", "咨询"),
        "complaint_monday": await file("2026-09-28T15:00", "complaint-monday", "投诉"),
        "report_monday": await file("2026-09-28T15:00", "report-monday", "举报"),  # not named: 15 days
        "consult_done": await file("2026-09-28T15:00", "consult-done", "咨询", status="resolved"),
        "consult_tuesday": await file("2026-09-29T09:00", "consult-tuesday", "咨询"),
        "help_thursday": await file("2026-09-24T15:00", "help-thursday", "求助"),  # due 24:00 today
        "consult_urgent": await file("2026-10-08T09:00", "consult-urgent", "咨询", urgent=True),  # due 09:00 today
        "praise_old": await file("2026-09-01T09:00", "praise-old", "表扬"),
        "suggestion_old": await file("2026-09-01T09:00", "suggestion-old", "建议"),  # due 09-22
        "untyped_old": await file("2026-09-10T09:00", "untyped-old", ""),  # due 24:00 on 10-08
        "untyped_next": await file("2026-09-11T09:00", "untyped-next", ""),  # due 24:00 today
    }
    boss = await console_login("boss", "supervisor")

    assert await agreed(boss, t) == ({"consult_monday", "consult_urgent", "suggestion_old", "untyped_old"},
                                     {"consult_tuesday", "help_thursday", "untyped_next"})
    views = {k: (await boss.get(f"/tickets/{v}")).json()["ticket"] for k, v in t.items()}
    assert views["consult_monday"]["due_at"] == datetime(2026, 10, 9, tzinfo=BEIJING).timestamp()
    assert views["complaint_monday"]["due_at"] == datetime(2026, 10, 24, tzinfo=BEIJING).timestamp()
    assert views["praise_old"]["due_at"] is None  # 表扬=0: no 办理时限
    exported = {r["工单编号"]: r for r in csv.DictReader(
        io.StringIO((await boss.get("/tickets.csv")).text.lstrip("\ufeff")))}
    assert [exported[t[k]]["办理时限"] for k in ("consult_monday", "complaint_monday", "praise_old")] == [
        "2026-10-09 00:00", "2026-10-24 00:00", ""]

    now = datetime(2026, 10, 10, 10, 0, tzinfo=BEIJING)  # the 调休 Saturday: a working day
    assert await agreed(boss, t) == (
        {"consult_monday", "consult_urgent", "suggestion_old", "untyped_old", "consult_tuesday", "help_thursday",
         "untyped_next"},
        set(),
    )

    now = datetime(2026, 10, 9, 10, 0, tzinfo=BEIJING)
    settings.resolve_workdays = False  # calendar days: 3 of them since 09-28 ran out on 10-01
    assert await agreed(boss, t) == (
        {"consult_monday", "consult_urgent", "suggestion_old", "untyped_old", "consult_tuesday", "help_thursday",
         "untyped_next"},
        set(),
    )


async def test_supervisors_export_the_lookup_without_who_asked(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    import csv
    import io

    from ticket_client import LocationInfo, TicketDraft

    rt = app.state.runtime
    refs = [
        await rt.tickets.file(TicketDraft(channel="web", conversation_key=f"web:x{i}", contact="13912345678",
                                          title=f"路灯不亮{i}", description="我叫王小明，电话13912345678",
                                          category=["城乡建设"], location=LocationInfo(text="A3区联丰路")), f"x{i}")
        for i in range(3)
    ]
    await rt.tickets.set_status(refs[0].ticket_id, "accepted")
    boss = await console_login("boss", "supervisor")
    r = await boss.get("/tickets.csv?days=30")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="tickets-' in r.headers["content-disposition"]
    assert r.text.startswith("\ufeff")  # Excel's mark
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][:5] == ["工单编号", "平台编号", "受理时间", "渠道", "标题"]
    assert [row[0] for row in rows[1:]] == [ref.ticket_id for ref in reversed(refs)]
    assert rows[-1][4:6] == ["路灯不亮0", "城乡建设"] and rows[-1][10] == "已派单" and rows[-1][8] == "A3区联丰路"
    assert "13912345678" not in r.text and "王小明" not in r.text  # no phone, no citizen's words
    only = await boss.get("/tickets.csv?status=accepted")
    assert len(list(csv.reader(io.StringIO(only.text)))) == 2
    op = await console_login("li")
    assert (await op.get("/tickets.csv")).status_code == 403  # supervisors only
    entries = (await boss.get("/audit?limit=20")).json()["entries"]
    assert [e["detail"]["rows"] for e in entries if e["action"] == "ticket.export"] == [1, 3]


async def test_a_long_export_streams_every_page_and_says_where_it_stopped(
    app: Any, client: httpx.AsyncClient, console_login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of the ledger one after another, newest first; past export.LIMIT a last line says
    the file was cut, and a ledger that fails part-way ends it with a line saying how far it got
    (the audit entry tells both). A ledger down before the first page is a 503, not a file."""
    import csv
    import io

    from gateway.console import export
    from ticket_client import TicketDraft
    from ticket_client.base import PlatformUnavailable

    rt = app.state.runtime
    refs = [await rt.tickets.file(TicketDraft(channel="web", conversation_key=f"web:p{i}", title=f"井盖缺失{i}",
                                          description="井盖没了"), f"p{i}")
            for i in range(5)]
    newest_first = [ref.ticket_id for ref in reversed(refs)]
    monkeypatch.setattr(export, "PAGE", 2)
    boss = await console_login("boss", "supervisor")

    def numbers(r: httpx.Response) -> list[str]:
        return [row[0] for row in csv.reader(io.StringIO(r.text.lstrip("\ufeff")))][1:]

    assert numbers(await boss.get("/tickets.csv")) == newest_first  # three pages, none twice
    monkeypatch.setattr(export, "LIMIT", 4)
    assert numbers(await boss.get("/tickets.csv")) == [*newest_first[:4], export.CUT.format(n=4)]
    monkeypatch.setattr(export, "LIMIT", 5)
    assert numbers(await boss.get("/tickets.csv")) == newest_first  # exactly LIMIT: nothing was left out

    scan = rt.tickets.scan

    async def failing(query: Any, size: int = 500) -> Any:
        async for page in scan(query, size):
            yield page
            raise PlatformUnavailable("the database went away")

    monkeypatch.setattr(rt.tickets, "scan", failing)
    assert numbers(await boss.get("/tickets.csv")) == [*newest_first[:2], export.BROKEN.format(n=2)]

    async def down(query: Any, size: int = 500) -> Any:
        raise PlatformUnavailable("the database is down")
        yield []

    monkeypatch.setattr(rt.tickets, "scan", down)
    r = await boss.get("/tickets.csv")
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    entries = (await boss.get("/audit?limit=20")).json()["entries"]
    assert [(e["detail"]["rows"], e["detail"]["cut"], e["detail"]["broken"])
            for e in entries if e["action"] == "ticket.export"] == [(2, False, True), (5, False, False),
                                                                  (4, True, False), (5, False, False)]


async def test_supervisors_see_the_open_tickets_citizens_pressed_for(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    """催办未办结: the card, the 工单查询 filter, the row's count, the ticket's 办理记录 and the
    export agree; a pressed ticket that is done since drops out of the card."""
    import csv
    import io

    from ticket_client import TicketDraft

    rt = app.state.runtime
    pressed, done, calm = [
        (await rt.tickets.file(TicketDraft(channel="web", conversation_key=f"web:{k}", description="小区门口路灯坏了"),
                               k)).ticket_id
        for k in ("pressed", "done", "calm")
    ]
    await rt.tickets.urge(pressed, "怎么还没人来修")
    await rt.tickets.urge(done, "催一下")
    for status in ("accepted", "resolved"):
        await rt.tickets.set_status(done, status)
    boss = await console_login("boss", "supervisor")
    assert (await boss.get("/stats")).json()["urged"] == 1
    rows = (await boss.get("/tickets?urged=true")).json()["tickets"]
    assert [(r["ticket_id"], r["urges"]) for r in rows] == [(pressed, 1)]
    everything = {r["ticket_id"]: r for r in (await boss.get("/tickets")).json()["tickets"]}
    assert everything[done]["urges"] == 1 and everything[calm]["urges"] == 0 and everything[calm]["urged_at"] is None
    detail = (await boss.get(f"/tickets/{pressed}")).json()["ticket"]
    assert [(f["kind"], f["note"]) for f in detail["followups"]] == [("urge", "怎么还没人来修")]
    assert detail["history"][-1]["kind"] == "status"  # an urge is no step of the work
    exported = {row["工单编号"]: row for row in csv.DictReader(
        io.StringIO((await boss.get("/tickets.csv")).text.lstrip("\ufeff")))}
    assert (exported[pressed]["催办次数"], exported[done]["催办次数"], exported[calm]["催办次数"]) == ("1", "1", "")
    assert "怎么还没人来修" not in (await boss.get("/tickets.csv")).text  # no citizen's words in a report


async def test_an_operator_records_a_callers_urge_once_a_day(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    """来电催办: recorded on the ticket (told apart from the bot's), audited; a second within the
    day says when the first was; a done ticket takes none."""
    from ticket_client import TicketDraft

    rt = app.state.runtime
    ticket_id = (await rt.tickets.file(TicketDraft(channel="web", conversation_key="web:caller",
                                                   description="小区门口路灯坏了"), "caller")).ticket_id
    li = await console_login("li")
    r = await li.post(f"/tickets/{ticket_id}/urge", json={"note": "市民来电，路灯仍未修复"})
    assert r.status_code == 200 and r.json()["recorded"] and r.json()["ticket"]["urges"] == 1
    assert [f["note"] for f in r.json()["ticket"]["followups"]] == ["（坐席登记）市民来电，路灯仍未修复"]
    again = await li.post(f"/tickets/{ticket_id}/urge", json={})
    assert again.status_code == 200 and not again.json()["recorded"] and again.json()["at"] == r.json()["at"]
    assert again.json()["quiet"] == "一天"  # HOTLINE_URGE_QUIET_HOURS, as the console says it
    assert len((await rt.tickets.get(ticket_id)).urges) == 1
    boss = await console_login("boss", "supervisor")
    entries = (await boss.get("/audit?limit=20")).json()["entries"]
    assert [e["detail"]["recorded"] for e in entries if e["action"] == "ticket.urge"] == [False, True]
    for status in ("accepted", "resolved"):
        await rt.tickets.set_status(ticket_id, status)
    done = await li.post(f"/tickets/{ticket_id}/urge", json={})
    assert done.status_code == 409 and "无需催办" in done.json()["detail"]
    assert (await li.post("/tickets/12345-20201231-999999/urge", json={})).status_code == 404


async def test_an_operator_withdraws_a_ticket_at_the_citizens_request(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    """撤单: closed with the reason (the citizen's number in it masked in the audit), found by the
    已撤单 status, counted in 服务质量 and 承办单位考核, written 已撤单 in the export; 409 once
    done, 400 with no reason or an unknown status, 404 for no such ticket."""
    import csv
    import io

    from ticket_client import TicketDraft

    rt = app.state.runtime
    ticket_id, other = [(await rt.tickets.file(
        TicketDraft(channel="web", conversation_key=f"web:{k}", description="小区门口路灯坏了", departments=["城管局"]),
        k)).ticket_id for k in ("gone", "kept")]
    await rt.tickets.set_status(ticket_id, "accepted")
    li = await console_login("li")
    assert (await li.post(f"/tickets/{ticket_id}/withdraw", json={"reason": "  "})).status_code == 400
    r = await li.post(f"/tickets/{ticket_id}/withdraw", json={"reason": "市民来电（13812345678）表示已自行修好"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["withdrawn_at"] is not None
    assert r.json()["history"][-1]["kind"] == "withdraw"
    again = await li.post(f"/tickets/{ticket_id}/withdraw", json={"reason": "再撤一次"})
    assert again.status_code == 409 and again.json()["detail"].startswith("不能撤单：")
    assert (await li.post("/tickets/12345-20201231-999999/withdraw", json={"reason": "不需要了"})).status_code == 404
    assert [t["ticket_id"] for t in (await li.get("/tickets?status=withdrawn")).json()["tickets"]] == [ticket_id]
    assert (await li.get("/tickets?status=gone")).status_code == 400

    boss = await console_login("boss", "supervisor")
    [entry] = [e for e in (await boss.get("/audit?limit=20")).json()["entries"] if e["action"] == "ticket.withdraw"]
    assert entry["detail"]["ticket_id"] == ticket_id and "13812345678" not in str(entry)
    assert [row["withdrawn"] for row in (await boss.get("/stats")).json()["service"]] == [1, 1, 1]
    [unit] = (await boss.get("/departments?days=7")).json()["departments"]
    assert (unit["filed"], unit["done"], unit["withdrawn"], unit["done_rate"]) == (2, 0, 1, 0.0)
    exported = {row["工单编号"]: row for row in csv.DictReader(
        io.StringIO((await boss.get("/tickets.csv")).text.lstrip("\ufeff")))}
    assert (exported[ticket_id]["状态"], exported[other]["状态"]) == ("已撤单", "已受理")
    report = list(csv.DictReader(io.StringIO((await boss.get("/departments.csv?days=7")).text.lstrip("\ufeff"))))
    assert (report[0]["撤单"], report[0]["办结率"]) == ("1", "0.0%")


async def test_a_supervisor_extends_a_late_tickets_time_limit(
    app: Any, settings: Settings, console_login: Any
) -> None:
    """延期: a supervisor grants a ticket past its 办理时限 a later one, which 超期, the lookup, the
    detail and the export read from then on; audited with the reason masked; operators may not
    (403), a day not later than the limit is 409, no reason 400."""
    import csv
    import io
    from datetime import timedelta

    from config.workdays import BEIJING
    from ticket_client import LocalLedger, TicketDraft

    async with LocalLedger(settings.effective_database_url, clock=lambda: datetime.now(UTC) - timedelta(days=45)) as old:
        late = (await old.file(TicketDraft(channel="web", conversation_key="web:late", description="小区门口路灯坏了",
                                           departments=["城管局"]), "late")).ticket_id
    boss = await console_login("boss", "supervisor")
    assert (await boss.get("/stats")).json()["overdue"] == 1
    until = (datetime.now(BEIJING) + timedelta(days=20)).date()
    li = await console_login("li")
    body = {"until": until.isoformat(), "reason": "需协调多个部门，市民电话13812345678已告知"}
    assert (await li.post(f"/tickets/{late}/extend", json=body)).status_code == 403
    assert (await boss.post(f"/tickets/{late}/extend", json=body | {"reason": " "})).status_code == 400
    past = await boss.post(f"/tickets/{late}/extend", json=body | {"until": "2026-01-05"})
    assert past.status_code == 409 and past.json()["detail"].startswith("不能延期：新的办理时限须晚于现在的办理时限")

    r = await boss.post(f"/tickets/{late}/extend", json=body)
    assert r.status_code == 200, r.text
    granted = datetime.fromtimestamp(r.json()["due_at"], BEIJING)
    assert (granted.date(), granted.strftime("%H:%M")) == (until + timedelta(days=1), "00:00")  # 24:00 of that day
    assert r.json()["extended_until"] == r.json()["due_at"] and not r.json()["overdue"]
    assert r.json()["history"][-1]["kind"] == "extend"
    assert r.json()["history"][-1]["note"].startswith(f"办理时限延长至{until.year}年{until.month}月{until.day}日（需协调")
    assert (await boss.get("/stats")).json()["overdue"] == 0
    assert (await boss.get("/tickets?overdue=true")).json()["tickets"] == []
    assert [t["ticket_id"] for t in (await boss.get("/tickets?extended=true")).json()["tickets"]] == [late]  # 已延期
    assert [t["ticket_id"] for t in (await boss.get("/tickets?extended=false")).json()["tickets"]] == [late]  # all
    app.state.console.clock = lambda: granted - timedelta(hours=12)  # within a day of it
    assert [t["ticket_id"] for t in (await boss.get("/tickets?due_soon=true")).json()["tickets"]] == [late]
    app.state.console.clock = lambda: granted + timedelta(hours=1)  # past it: 超期 again
    assert (await boss.get("/stats")).json()["overdue"] == 1
    [unit] = (await boss.get("/departments?days=90")).json()["departments"]
    assert (unit["overdue"], unit["extended"]) == (1, 1)
    assert [row["extended"] for row in (await boss.get("/stats")).json()["service"]] == [1, 1, 1]  # 延期工单
    assert "经审核延期 1 件" in (await boss.get("/report", params={"days": 30})).text
    [row] = list(csv.DictReader(io.StringIO((await boss.get("/departments.csv?days=90")).text.lstrip("\ufeff"))))
    assert row["延期"] == "1"
    exported = list(csv.DictReader(io.StringIO((await boss.get("/tickets.csv")).text.lstrip("\ufeff"))))
    assert [(row["延期"], row["超期"]) for row in exported] == [("是", "是")]
    [entry] = [e for e in (await boss.get("/audit?limit=20")).json()["entries"] if e["action"] == "ticket.extend"]
    assert entry["detail"]["until"] == until.isoformat() and "13812345678" not in str(entry)


async def test_a_departments_extension_request_is_decided_by_a_supervisor(
    app: Any, settings: Settings, console_login: Any
) -> None:
    """延期申请: an operator records a unit's request (the citizen hears nothing), 延期待审核 counts
    and lists it, and a supervisor grants it (the citizen hears the words given) or refuses it
    with a reason; operators may not decide (403); a second request while one waits is 409;
    both are audited with phone numbers masked."""
    from datetime import timedelta

    from config.workdays import BEIJING
    from ticket_client import TicketDraft

    tickets = app.state.runtime.tickets
    one, two = [(await tickets.file(TicketDraft(channel="web", conversation_key=f"web:{k}", description="路灯坏了",
                                                departments=["城管局", "供电公司"]), k)).ticket_id for k in ("one", "two")]
    boss = await console_login("boss", "supervisor")
    li = await console_login("li")
    until = (datetime.now(BEIJING) + timedelta(days=30)).date()
    body = {"until": until.isoformat(), "unit": "城管局", "reason": "需协调供电公司迁改线路，联系人13812345678"}
    assert (await li.post(f"/tickets/{one}/extension-request", json=body | {"unit": " "})).status_code == 400
    stranger = await li.post(f"/tickets/{one}/extension-request", json=body | {"unit": "水务局"})
    assert (stranger.status_code, stranger.json()["detail"]) == (
        409, f"延期申请：水务局不是工单 {one} 的承办单位（城管局、供电公司）")
    r = await li.post(f"/tickets/{one}/extension-request", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["extension_pending"] and r.json()["extended_until"] is None
    again = await li.post(f"/tickets/{one}/extension-request", json=body)
    assert again.status_code == 409 and again.json()["detail"].startswith(f"延期申请：工单 {one} 已有待审核的延期申请")
    await li.post(f"/tickets/{two}/extension-request", json=body | {"unit": "供电公司", "reason": "需停电施工"})
    assert (await boss.get("/stats")).json()["extension_pending"] == 2
    assert {t["ticket_id"] for t in (await boss.get("/tickets?extension_pending=true")).json()["tickets"]} == {one, two}
    [asked] = (await li.get(f"/tickets/{one}")).json()["ticket"]["extension_requests"]
    assert (asked["unit"], asked["outcome"], asked["decided_by"]) == ("城管局", "pending", "")
    assert datetime.fromtimestamp(asked["until"], BEIJING).date() == until + timedelta(days=1)  # 24:00 of that day

    decide = {"approve": True, "reason": "需协调多个部门"}
    assert (await li.post(f"/tickets/{one}/extension-request/decision", json=decide)).status_code == 403
    r = await boss.post(f"/tickets/{one}/extension-request/decision", json=decide)
    assert r.status_code == 200, r.text
    assert r.json()["extended_until"] == asked["until"] and not r.json()["extension_pending"]
    assert r.json()["history"][-1]["note"].endswith("（需协调多个部门）")  # the supervisor's words, not the unit's
    refuse = {"approve": False, "reason": " "}
    assert (await boss.post(f"/tickets/{two}/extension-request/decision", json=refuse)).status_code == 400
    r = await boss.post(f"/tickets/{two}/extension-request/decision", json=refuse | {"reason": "可在时限内办结"})
    assert r.status_code == 200 and r.json()["extended_until"] is None
    [refused] = (await boss.get(f"/tickets/{two}")).json()["ticket"]["extension_requests"]
    assert (refused["outcome"], refused["decided_by"], refused["answer"]) == ("rejected", "boss", "可在时限内办结")
    none = await boss.post(f"/tickets/{two}/extension-request/decision", json=decide)
    assert none.status_code == 409 and "没有待审核的延期申请" in none.json()["detail"]
    assert (await boss.get("/stats")).json()["extension_pending"] == 0
    entries = [e for e in (await boss.get("/audit?limit=20")).json()["entries"] if e["action"].startswith("ticket.extension")]
    assert sorted(e["action"] for e in entries) == ["ticket.extension_ask"] * 2 + ["ticket.extension_decide"] * 2
    assert "13812345678" not in str(entries)


async def test_supervisors_are_told_of_a_year_ahead_without_its_holidays(app: Any, console_login: Any) -> None:
    """The 班长视图's notice: the years within two months whose 放假安排 the calendar lacks (their
    办理时限 count weekends only); none with calendar-day limits."""
    from datetime import UTC, datetime

    from ticket_client import deadlines

    boss = await console_login("boss", "supervisor")
    now = datetime.now(UTC)
    assert (await boss.get("/stats")).json()["holidays_missing"] == deadlines.holidays_missing(app.state.runtime.settings, now)
    app.state.console.clock = lambda: datetime(2040, 11, 29, 4, tzinfo=UTC)  # nobody has announced 2040 or 2041
    assert (await boss.get("/stats")).json()["holidays_missing"] == [2040, 2041]
    app.state.runtime.settings.resolve_workdays = False
    assert (await boss.get("/stats")).json()["holidays_missing"] == []
