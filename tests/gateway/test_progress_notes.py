"""Progress notes (办理进展) of the local ledger through the admin API, the CLI and the status poller.

A note keeps the ticket's status; the citizen hears it as a ``status_update`` marked ``progress``,
never followed by the 回访 survey, even on a resolved ticket.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from config.settings import Settings
from config.workdays import BEIJING
from gateway import keys
from tests.conftest import ADMIN_TOKEN, wait_for_events
from tests.gateway.test_web_e2e import new_session, say
from ticket_client import MAX_NOTE, LocalLedger, TicketDraft, deadlines, migrate

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def draft(conversation_key: str = "web:alice") -> TicketDraft:
    return TicketDraft(channel="web", conversation_key=conversation_key, description="小区门口路灯坏了一个星期")


async def heard(client: httpx.AsyncClient, session: dict[str, str], ticket_id: str) -> list[dict[str, Any]]:
    """Every event the citizen's widget has received about ``ticket_id``, in order."""
    r = await client.get(
        f"/channels/web/sessions/{session['session_id']}/events",
        params={"after": "", "wait": 0},
        headers={"Authorization": f"Bearer {session['token']}"},
    )
    return [e for e in r.json()["events"] if e.get("ticket_id") == ticket_id]


async def test_the_admin_api_adds_a_note_and_says_what_it_refuses(client: httpx.AsyncClient, app: Any) -> None:
    ref = await app.state.runtime.tickets.file(draft(), "k")
    url = f"/api/admin/tickets/{ref.ticket_id}/notes"
    assert (await client.post(url, json={"note": "已联系物业"})).status_code == 401
    r = await client.post(url, json={"note": "  已联系物业，预计周五前修复 "}, headers=ADMIN)
    assert r.status_code == 200, r.text
    ticket = r.json()
    assert ticket["ticket_id"] == ref.ticket_id and ticket["status"] == "received"  # the status stays
    assert [(h["status"], h["kind"], h["note"]) for h in ticket["history"]] == [
        ("received", "status", ""),
        ("received", "note", "已联系物业，预计周五前修复"),
    ]

    for blank in ("", "  \n "):
        r = await client.post(url, json={"note": blank}, headers=ADMIN)
        assert (r.status_code, r.json()["detail"]) == (400, "办理进展内容不能为空")
    r = await client.post(url, json={"note": "很" * (MAX_NOTE + 1)}, headers=ADMIN)
    assert r.status_code == 422 and "note" in r.json()["detail"]
    assert (await client.post(url, json={}, headers=ADMIN)).status_code == 422
    r = await client.post("/api/admin/tickets/12345-20200101-999999/notes", json={"note": "已派单"}, headers=ADMIN)
    assert r.status_code == 404 and "工单不存在" in r.json()["detail"]

    r = await client.post(f"/api/admin/tickets/{ref.ticket_id}/status", json={"status": "closed"}, headers=ADMIN)
    assert r.status_code == 200
    r = await client.post(url, json={"note": "归档后补充"}, headers=ADMIN)
    assert r.status_code == 409
    assert r.json()["detail"].startswith("不能添加办理进展：") and "已归档" in r.json()["detail"]
    history = (await client.get(f"/api/admin/tickets/{ref.ticket_id}", headers=ADMIN)).json()["history"]
    assert [h["kind"] for h in history] == ["status", "note", "status"]  # nothing refused was written


async def test_a_note_on_a_resolved_ticket_is_heard_as_progress_and_asks_no_second_survey(
    client: httpx.AsyncClient, app: Any
) -> None:
    session = await new_session(client)
    ref = await app.state.runtime.tickets.file(draft(f"web:{session['session_id']}"), "k")
    for status, note in (("accepted", ""), ("resolved", "路灯已修复")):
        r = await client.post(
            f"/api/admin/tickets/{ref.ticket_id}/status", json={"status": status, "note": note}, headers=ADMIN
        )
        assert r.status_code == 200
    for _ in range(100):  # the three, delivered in parallel (in any order), before the note
        if len(await heard(client, session, ref.ticket_id)) == 3:
            break
        await asyncio.sleep(0.1)
    _, cursor = await wait_for_events(client, session, lambda e: e["type"] == "survey")
    r = await client.post(
        f"/api/admin/tickets/{ref.ticket_id}/notes", json={"note": "已复查，路灯正常"}, headers=ADMIN
    )
    assert r.status_code == 200
    events, _ = await wait_for_events(
        client, session, lambda e: e["type"] == "status_update" and "办理进展" in e["text"], after=cursor
    )
    progress = next(e for e in events if e["type"] == "status_update" and "办理进展" in e["text"])
    assert progress["text"] == f"您的工单 {ref.ticket_id} 有新的办理进展：已复查，路灯正常"
    assert progress["fields"]["progress"] == "1" and progress["fields"]["note"] == "已复查，路灯正常"
    assert progress["fields"]["status"] == "resolved"  # the ticket's status, unchanged
    assert progress["fields"]["status_label"] == "办理进展"  # the widget's tag

    await asyncio.sleep(0.5)  # several polls: anything more would have been delivered by now
    news = await heard(client, session, ref.ticket_id)
    labels = [(e["type"], e.get("fields", {}).get("progress", ""), e.get("fields", {}).get("status_label", ""))
              for e in news]
    assert sorted(labels[:3]) == [
        ("status_update", "", "已办结"),
        ("status_update", "", "已派单，承办部门已接收"),
        ("survey", "", ""),
    ]
    assert labels[3:] == [("status_update", "1", "办理进展")]  # and nothing after it: no second survey
    conversation = await app.state.runtime.redis.hgetall(keys.conversation(f"web:{session['session_id']}"))
    assert conversation.get("pending_rating") == ref.ticket_id  # still the one survey's


async def test_an_extension_is_heard_with_its_reason_and_told_when_asked(client: httpx.AsyncClient, app: Any) -> None:
    """延期 from the centre's system: the citizen hears the new 办理时限 and why, as progress (no
    survey, the status stays); asked, the bot gives the new limit. 409 for a day not later, 400
    without a reason, 422 for a date that is none."""
    session = await new_session(client)
    ref = await app.state.runtime.tickets.file(draft(f"web:{session['session_id']}"), "k")
    until = (datetime.now(BEIJING) + timedelta(days=40)).date()
    url = f"/api/admin/tickets/{ref.ticket_id}/extend"
    body = {"until": until.isoformat(), "reason": "需协调多个部门联合处置", "by": "12345-dispatch"}
    r = await client.post(url, json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "received" and r.json()["history"][-1]["kind"] == "extend"
    day = f"{until.year}年{until.month}月{until.day}日"
    events, cursor = await wait_for_events(client, session, lambda e: e["type"] == "status_update" and "延长" in e["text"])
    told = next(e for e in events if e["type"] == "status_update" and "延长" in e["text"])
    assert told["text"] == (f"您的工单 {ref.ticket_id} 经审核，办理时限延长至{day}（需协调多个部门联合处置）。"
                            "我们将督促承办单位抓紧办理，结果会及时告知您。")
    assert (told["fields"]["progress"], told["fields"]["extended"], told["fields"]["status_label"]) == (
        "1", "1", "办理时限延长")
    await say(client, session, f"查询 {ref.ticket_id}")
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "reply" and "更新于" in e["text"], after=cursor)
    assert f"办理时限已延长至 {day}前" in next(e["text"] for e in events if "更新于" in e["text"])
    assert not [e for e in await heard(client, session, ref.ticket_id) if e["type"] == "survey"]

    again = await client.post(url, json=body, headers=ADMIN)
    assert again.status_code == 409 and again.json()["detail"].startswith("不能延期：新的办理时限须晚于")
    blank = await client.post(url, json=body | {"reason": " "}, headers=ADMIN)
    assert (blank.status_code, blank.json()["detail"]) == (400, "延期原因不能为空")
    assert (await client.post(url, json=body | {"until": "2027-02-30"}, headers=ADMIN)).status_code == 422
    assert (await client.post(url, json=body)).status_code == 401


async def test_a_departments_extension_request_is_heard_only_once_granted(client: httpx.AsyncClient, app: Any) -> None:
    """延期申请 from a department's system: nothing reaches the citizen while it waits; granted, they
    hear the words the centre gave, and the department reads the outcome on the ticket. 409 for
    a second request while one waits, 400 without a unit, 401 without the token."""
    session = await new_session(client)
    ref = await app.state.runtime.tickets.file(
        draft(f"web:{session['session_id']}").model_copy(update={"departments": ["市城管局"]}), "k")
    until = (datetime.now(BEIJING) + timedelta(days=40)).date()
    url = f"/api/admin/tickets/{ref.ticket_id}/extension-request"
    body = {"until": until.isoformat(), "unit": "市城管局", "reason": "涉及管线迁改，需供电公司配合", "by": "cgj-system"}
    assert (await client.post(url, json=body)).status_code == 401
    blank = await client.post(url, json=body | {"unit": ""}, headers=ADMIN)
    assert (blank.status_code, blank.json()["detail"]) == (400, "申请延期的承办单位不能为空")
    r = await client.post(url, json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [(x["unit"], x["outcome"]) for x in r.json()["extension_requests"]] == [("市城管局", "pending")]
    again = await client.post(url, json=body, headers=ADMIN)
    assert again.status_code == 409 and "已有待审核的延期申请" in again.json()["detail"]
    await asyncio.sleep(0.5)  # several polls: a request told would have arrived by now
    assert await heard(client, session, ref.ticket_id) == []

    await app.state.runtime.tickets.decide_extension(ref.ticket_id, approve=True, by="boss", reason="需多个部门协同处置")
    app.state.runtime.kick_status()
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "status_update" and "延长" in e["text"])
    told = next(e for e in events if e["type"] == "status_update" and "延长" in e["text"])
    assert told["text"].endswith(f"{until.day}日（需多个部门协同处置）。我们将督促承办单位抓紧办理，结果会及时告知您。")
    [decided] = (await client.get(f"/api/admin/tickets/{ref.ticket_id}", headers=ADMIN)).json()["extension_requests"]
    assert (decided["outcome"], decided["decided_by"], decided["answer"]) == ("approved", "boss", "需多个部门协同处置")


async def test_a_co_handling_departments_opinion_comes_through_the_admin_api_unheard(
    client: httpx.AsyncClient, app: Any
) -> None:
    """协办意见 from a co-handling department's system: kept on the ticket with its unit, never told
    to the citizen; 409 for a unit that is not a 协办 of it, 400 empty, 401 without the token."""
    session = await new_session(client)
    ref = await app.state.runtime.tickets.file(
        draft(f"web:{session['session_id']}").model_copy(update={"departments": ["市城管局", "供电公司"]}), "k")
    url = f"/api/admin/tickets/{ref.ticket_id}/assist"
    body = {"unit": "供电公司", "note": "经核查，该路段线路正常，系灯具损坏"}
    assert (await client.post(url, json=body)).status_code == 401
    r = await client.post(url, json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [(f["kind"], f["unit"], f["note"]) for f in r.json()["followups"]] == [
        ("assist", "供电公司", "经核查，该路段线路正常，系灯具损坏")]
    primary = await client.post(url, json=body | {"unit": "市城管局"}, headers=ADMIN)
    assert (primary.status_code, primary.json()["detail"]) == (
        409, f"不能提交协办意见：市城管局不是工单 {ref.ticket_id} 的协办单位")
    blank = await client.post(url, json=body | {"note": " "}, headers=ADMIN)
    assert (blank.status_code, blank.json()["detail"]) == (400, "协办意见内容不能为空")
    await asyncio.sleep(0.5)  # several polls: an opinion told would have arrived by now
    assert await heard(client, session, ref.ticket_id) == []


def test_the_add_note_and_set_status_commands(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from config.settings import get_settings
    from gateway.cli import app as cli

    async def file_one() -> str:
        await migrate(settings.effective_database_url)
        async with LocalLedger(settings.effective_database_url) as ledger:
            open_ref = await ledger.file(draft(), "open")
            closed_ref = await ledger.file(draft(), "closed")
            await ledger.set_status(closed_ref.ticket_id, "closed")
            again_ref = await ledger.file(draft(), "again")
            return f"{open_ref.ticket_id} {closed_ref.ticket_id} {again_ref.ticket_id}"

    open_id, closed_id, again_id = asyncio.run(file_one()).split()
    monkeypatch.chdir(settings.data_dir)  # no .env of the developer's
    for name in ("HOTLINE_DATABASE_URL", "HOTLINE_TICKET_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HOTLINE_REDIS_URL", settings.redis_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        done = runner.invoke(cli, ["admin", "add-note", open_id, "已联系物业，预计周五前修复"])
        assert done.exit_code == 0, done.output
        ticket = json.loads(done.stdout)
        assert ticket["status"] == "received"
        assert (ticket["history"][-1]["kind"], ticket["history"][-1]["note"]) == ("note", "已联系物业，预计周五前修复")
        for args, error in (
            ([open_id, "  "], "InvalidNote"),
            ([closed_id, "补充"], "NoteRefused"),
            (["12345-20200101-999999", "补充"], "TicketNotFound"),
        ):
            refused = runner.invoke(cli, ["admin", "add-note", *args])
            assert refused.exit_code == 1 and error in refused.output, refused.output
        assert runner.invoke(cli, ["admin", "add-note", open_id]).exit_code == 2  # the note is required
        # its sibling, set-status, through the same path
        moved = runner.invoke(cli, ["admin", "set-status", open_id, "accepted", "--note", "已派至A3区城管局"])
        assert moved.exit_code == 0 and json.loads(moved.stdout)["status"] == "accepted", moved.output
        refused = runner.invoke(cli, ["admin", "set-status", open_id, "closed"])
        assert refused.exit_code == 1 and "InvalidTransition" in refused.output, refused.output
        # and 并单, the same way: a closed ticket is no main
        refused = runner.invoke(cli, ["admin", "merge", open_id, closed_id])
        assert refused.exit_code == 1 and "MergeRefused" in refused.output and "不能作为主单" in refused.output
        refused = runner.invoke(cli, ["admin", "unmerge", open_id])
        assert refused.exit_code == 1 and "未并入" in refused.output, refused.output
        merged = runner.invoke(cli, ["admin", "merge", again_id, open_id])
        assert merged.exit_code == 0 and json.loads(merged.stdout)["merged_into"] == open_id, merged.output
        alone = runner.invoke(cli, ["admin", "unmerge", again_id])
        assert alone.exit_code == 0 and json.loads(alone.stdout)["merged_into"] is None, alone.output
        # 撤单: the citizen no longer needs it; a closed one cannot be
        gone = runner.invoke(cli, ["admin", "withdraw", again_id, "市民表示问题已自行解决"])
        assert gone.exit_code == 0, gone.output
        assert (json.loads(gone.stdout)["status"], json.loads(gone.stdout)["history"][-1]["kind"]) == ("closed", "withdraw")
        refused = runner.invoke(cli, ["admin", "withdraw", closed_id, "不需要了"])
        assert refused.exit_code == 1 and "WithdrawRefused" in refused.output, refused.output
        # 延期: a later 办理时限 for the open one; none for a closed one
        later = (datetime.now(BEIJING) + timedelta(days=40)).date()
        extended = runner.invoke(cli, ["admin", "extend", open_id, later.isoformat(), "需协调多个部门"])
        assert extended.exit_code == 0, extended.output
        ticket = json.loads(extended.stdout)
        assert datetime.fromisoformat(ticket["extended_until"]) == deadlines.end_of(later)
        assert ticket["history"][-1]["kind"] == "extend"
        refused = runner.invoke(cli, ["admin", "extend", closed_id, later.isoformat(), "需协调多个部门"])
        assert refused.exit_code == 1 and "ExtendRefused" in refused.output, refused.output
    finally:
        get_settings.cache_clear()
