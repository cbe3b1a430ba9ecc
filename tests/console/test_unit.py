"""承办单位工作台: a department account works its unit's tickets (gateway/console/unit.py) and
reaches nothing else of the console."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config.settings import Settings
from config.workdays import BEIJING
from tests.console.conftest import PASSWORD, Operator
from ticket_client import TicketDraft

UNIT = "城市管理和综合执法局"


@pytest.fixture
async def unit_login(app: Any, console_login: Any) -> Any:
    """``await unit_login(name, unit)``: a department account of ``unit``, logged in."""

    async def login(name: str = "cgj", unit: str = UNIT) -> Operator:
        await app.state.console.users.create(name, "department", PASSWORD, "城管局值班", unit=unit)
        return await console_login(name)  # type: ignore[no-any-return]

    return login


async def file(app: Any, key: str, departments: list[str], **kw: Any) -> str:
    fields: dict[str, Any] = {"description": "小区门口路灯坏了一个星期", "contact": "13812345678", **kw}
    draft = TicketDraft(channel="web", conversation_key=f"web:{key}", title=f"{key}路灯不亮", departments=departments,
                        **fields)
    return (await app.state.runtime.tickets.file(draft, key)).ticket_id


async def test_a_department_account_reaches_its_units_tickets_and_nothing_else(app: Any, unit_login: Any) -> None:
    """Everything of the centre's console is 403 to it (conversations, the lookup, figures,
    accounts); /console/ serves its own page; a ticket naming another unit is not found."""
    mine = await file(app, "mine", [UNIT, "K2区人民政府"])
    helped = await file(app, "helped", ["供电公司", UNIT])
    other = await file(app, "other", ["水务局"])
    unit = await unit_login()
    for path in ("/queue", "/tickets", f"/tickets/{mine}", "/users", "/stats", "/departments?days=7", "/audit",
                 "/canned", "/knowledge?q=路灯", "/report"):
        r = await unit.get(path)
        assert r.status_code == 403, path
    assert (await unit.post("/takeover", json={"key": "web:mine"})).status_code == 403
    assert (await unit.post(f"/tickets/{mine}/status", json={"status": "accepted"})).status_code == 403
    me = (await unit.get("/me")).json()["user"]
    assert (me["role"], me["unit"]) == ("department", UNIT)
    page = await unit.client.get("/console/")
    assert "承办单位工作台" in page.text and "unit.js" in page.text

    listed = (await unit.get("/unit/tickets?view=all")).json()["tickets"]
    assert {(t["ticket_id"], t["primary"]) for t in listed} == {(mine, True), (helped, False)}
    assert (await unit.get(f"/unit/tickets/{other}")).status_code == 404  # as one that does not exist
    detail = (await unit.get(f"/unit/tickets/{mine}")).json()
    assert (detail["contact"], detail["contact_masked"]) == ("138****5678", True)
    assert detail["departments"] == [UNIT, "K2区人民政府"]
    assert "conversation_key" not in detail and "revisions" not in detail
    assert (await unit.get("/unit/tickets?view=nothing")).status_code == 400


async def test_a_unit_reads_the_whole_phone_number_only_on_asking_and_it_is_audited(
    app: Any, unit_login: Any, console_login: Any
) -> None:
    """查看联系电话: the ticket shows the number masked, and the phone and ID numbers in the
    citizen's words too; the whole ones are asked for (主办 or 协办), and each look is audited with
    who and which ticket, never the number itself."""
    said = "路灯坏了，另一个电话13900001111，身份证430102199001011234，车牌湘A12345挡路"
    mine = await file(app, "mine", [UNIT], description=said)
    await app.state.runtime.tickets.urge(mine, "还没修，打我电话0731-88886666")
    helped = await file(app, "helped", ["供电公司", UNIT])
    other = await file(app, "other", ["水务局"])
    unit = await unit_login()
    shown = (await unit.get(f"/unit/tickets/{mine}")).json()
    assert shown["description"] == "路灯坏了，另一个电话139****1111，身份证[身份证号]，车牌湘A12345挡路"  # the plate stays
    assert [f["note"] for f in shown["followups"]] == ["还没修，打我电话073*-****6666"]
    r = await unit.post(f"/unit/tickets/{mine}/contact", json={})
    assert (r.status_code, r.json()["contact"], r.json()["description"]) == (200, "13812345678", said)
    assert [f["note"] for f in r.json()["followups"]] == ["还没修，打我电话0731-88886666"]
    for ticket_id in (mine, helped):
        r = await unit.post(f"/unit/tickets/{ticket_id}/contact", json={})
        assert (r.status_code, r.json()["contact"]) == (200, "13812345678")
    assert (await unit.post(f"/unit/tickets/{other}/contact", json={})).status_code == 404
    assert (await unit.post(f"/unit/tickets/{mine}/contact", json={}, headers={"X-CSRF-Token": "x"})).status_code == 403
    boss = await console_login("boss", "supervisor")
    entries = [e for e in (await boss.get("/audit?limit=50")).json()["entries"] if e["action"] == "unit.contact"]
    assert sorted(e["detail"]["ticket_id"] for e in entries) == sorted([mine, mine, helped])
    assert {e["actor"] for e in entries} == {"cgj"} and "13812345678" not in str(entries) and "1390000" not in str(entries)
    assert (await boss.post(f"/unit/tickets/{mine}/contact", json={})).status_code == 403  # the centre reads 工单查询


async def test_a_main_shows_the_unit_what_the_citizens_of_its_repeats_pressed_for(app: Any, unit_login: Any) -> None:
    """A repeat merged into the main is handled there: the main's 催办 list entry, its 市民催办 count
    and 办理记录 hold the repeat's citizen's 催办 and 补充 (marked with their ticket, numbers masked
    until asked for, then whole)."""
    tickets = app.state.runtime.tickets
    main = await file(app, "main", [UNIT])
    repeat = await file(app, "repeat", [UNIT])
    await tickets.merge(repeat, main)
    await tickets.urge(repeat, "我也反映过，电话13900001111")
    await tickets.add_info(repeat, "是北门那个井盖")
    unit = await unit_login()
    assert [t["ticket_id"] for t in (await unit.get("/unit/tickets?view=urged")).json()["tickets"]] == [main]
    shown = (await unit.get(f"/unit/tickets/{main}")).json()
    assert shown["urges"] == 1 and shown["urged_at"] is not None
    assert [(f["kind"], f["ticket_id"], f["note"]) for f in shown["followups"]] == [
        ("urge", repeat, "我也反映过，电话139****1111"), ("info", repeat, "是北门那个井盖")]
    whole = (await unit.post(f"/unit/tickets/{main}/contact", json={})).json()
    assert [f["note"] for f in whole["followups"]] == ["我也反映过，电话13900001111", "是北门那个井盖"]


@pytest.mark.parametrize(("contact", "shown"), [
    ("13812345678", "138****5678"), ("0531-88886666", "053*-****6666"), ("王先生 13812345678", "王先生 138****5678"),
    ("12345", "***45"), ("", ""),
])
def test_a_contact_number_is_masked_in_the_middle(contact: str, shown: str) -> None:
    from gateway.console.unit import masked_contact

    assert masked_contact(contact) == shown


async def test_the_primary_unit_takes_on_reports_resolves_returns_and_asks_for_time(
    app: Any, unit_login: Any, console_login: Any
) -> None:
    """As 主办: 签收 (once), 办理进展, 办结 (with its answer), 退回 (with a reason: 退回待改派 for the
    centre), 延期申请 in the unit's name; as 协办: 403. Each is audited under the account."""
    mine = await file(app, "mine", [UNIT])
    back = await file(app, "back", [UNIT])
    helped = await file(app, "helped", ["供电公司", UNIT])
    unit = await unit_login()
    counts = (await unit.get("/unit/summary")).json()["counts"]
    assert (counts["received"], counts["open"], counts["overdue"], counts["extension"]) == (3, 3, 0, 0)
    assert [t["ticket_id"] for t in (await unit.get("/unit/tickets")).json()["tickets"]] == [helped, back, mine]

    await file(app, "extra", [UNIT])  # sent by the centre meanwhile: counted within COUNTS_TTL_S
    assert (await unit.get("/unit/summary")).json()["counts"]["received"] == 3  # the unit's staff share one count

    refused = await unit.post(f"/unit/tickets/{helped}/accept", json={})
    assert refused.status_code == 403 and "协办单位" in refused.json()["detail"]
    early = await unit.post(f"/unit/tickets/{mine}/resolve", json={"note": "已修复"})
    assert early.status_code == 409 and "须先签收" in early.json()["detail"]
    r = await unit.post(f"/unit/tickets/{mine}/accept", json={"note": "已安排人员"})
    assert r.status_code == 200 and r.json()["status"] == "accepted" and r.json()["primary"]
    assert (await unit.get("/unit/summary")).json()["counts"]["received"] == 3  # its own step: counted again
    again = await unit.post(f"/unit/tickets/{mine}/accept", json={})
    assert again.status_code == 409 and "无需签收" in again.json()["detail"]
    assert (await app.state.runtime.tickets.get(mine)).responded_at is not None  # 响应 judged now
    assert (await unit.post(f"/unit/tickets/{mine}/notes", json={"note": " "})).status_code == 400
    assert (await unit.post(f"/unit/tickets/{mine}/notes", json={"note": "已联系供电公司"})).status_code == 200
    until = (datetime.now(BEIJING) + timedelta(days=40)).date()
    asked = await unit.post(f"/unit/tickets/{mine}/extension-request", json={"until": until.isoformat(), "reason": "需更换灯杆"})
    assert asked.status_code == 200 and asked.json()["extension_pending"]
    assert (await unit.get("/unit/summary")).json()["counts"]["extension"] == 1
    [request] = (await unit.get(f"/unit/tickets/{mine}")).json()["extension_requests"]
    assert (request["unit"], request["outcome"]) == (UNIT, "pending")
    assert (await unit.post(f"/unit/tickets/{mine}/resolve", json={"note": ""})).status_code == 400
    done = await unit.post(f"/unit/tickets/{mine}/resolve", json={"note": "路灯已修复"})
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    ticket = await app.state.runtime.tickets.get(mine)
    assert [(h.status, h.kind, h.note) for h in ticket.history][1:] == [
        ("accepted", "status", "已安排人员"), ("accepted", "note", "已联系供电公司"), ("resolved", "status", "路灯已修复")]
    assert ticket.extension_requests[0].outcome == "lapsed"  # done before the centre decided

    assert (await unit.post(f"/unit/tickets/{back}/return", json={"reason": ""})).status_code == 400
    returned = await unit.post(f"/unit/tickets/{back}/return", json={"reason": "非本单位职责，联系人13900001111"})
    assert returned.status_code == 200 and returned.json()["status"] == "returned"
    assert (await unit.post(f"/unit/tickets/{back}/return", json={"reason": "非本单位职责"})).status_code == 409
    boss = await console_login("boss", "supervisor")
    assert (await boss.get("/stats")).json()["returned"] == 1  # 退回待改派, for the centre
    entries = [e for e in (await boss.get("/audit?limit=50")).json()["entries"] if e["actor"] == "cgj"]
    assert {e["action"] for e in entries} >= {"unit.accept", "unit.note", "unit.resolve", "unit.return", "unit.extension_ask"}
    assert "13900001111" not in str(entries)
    assert (await unit.get("/unit/tickets?view=resolved")).json()["tickets"][0]["ticket_id"] == mine

    own = (await unit.get("/unit/stats?days=7")).json()["unit"]  # 本单位考核: its row of the centre's table
    assert (own["department"], own["filed"], own["primary"], own["done"], own["returns"], own["responded"]) == (
        UNIT, 4, 3, 1, 1, 1)
    [row] = [r for r in (await boss.get("/departments?days=7")).json()["departments"] if r["department"] == UNIT]
    assert own == row
    assert (await unit.get("/unit/stats?days=5")).status_code == 400
    assert (await boss.get("/unit/stats")).status_code == 403


async def test_a_co_handling_unit_writes_its_opinion_for_the_primary_unit(
    app: Any, unit_login: Any, console_login: Any
) -> None:
    """协办意见: the 协办 writes it (403 as 主办; 400 empty; 409 once done); the 主办 reads it in
    办理记录 with its unit and its list badges the count; the centre reads it in 工单查询; the
    citizen hears nothing; audited under the account."""
    helped = await file(app, "helped", ["供电公司", UNIT])
    mine = await file(app, "mine", [UNIT, "供电公司"])
    unit = await unit_login()
    power = await unit_login("gdj", "供电公司")
    refused = await unit.post(f"/unit/tickets/{mine}/assist", json={"note": "已安排"})
    assert refused.status_code == 403 and "主办单位" in refused.json()["detail"]
    assert (await unit.post(f"/unit/tickets/{helped}/assist", json={"note": "  "})).status_code == 400
    r = await unit.post(f"/unit/tickets/{helped}/assist", json={"note": "已巡查，灯杆属供电公司产权，联系人13900001111"})
    assert r.status_code == 200 and r.json()["assists"] == 1 and not r.json()["primary"]
    ticket = await app.state.runtime.tickets.get(helped)
    assert len(ticket.history) == 1  # no step the citizen hears

    [row] = [t for t in (await power.get("/unit/tickets")).json()["tickets"] if t["ticket_id"] == helped]
    assert row["primary"] and row["assists"] == 1
    shown = (await power.get(f"/unit/tickets/{helped}")).json()
    assert [(f["kind"], f["unit"], f["note"]) for f in shown["followups"]] == [
        ("assist", UNIT, "已巡查，灯杆属供电公司产权，联系人13900001111")]
    boss = await console_login("boss", "supervisor")
    centre = (await boss.get(f"/tickets/{helped}")).json()["ticket"]
    assert centre["assists"] == 1 and centre["followups"][0]["unit"] == UNIT
    entries = [e for e in (await boss.get("/audit?limit=50")).json()["entries"] if e["actor"] == "cgj"]
    assert [e["action"] for e in entries] == ["unit.assist", "login"] and "13900001111" not in str(entries)

    for status in ("accepted", "resolved"):
        await app.state.runtime.tickets.set_status(helped, status)
    done = await unit.post(f"/unit/tickets/{helped}/assist", json={"note": "补充一点"})
    assert done.status_code == 409 and "已办结" in done.json()["detail"]


async def test_a_ticket_reopened_for_the_unit_waits_under_to_accept_again(app: Any, unit_login: Any) -> None:
    """重新办理 (the citizen said 未解决, the centre reopened it): back under 待签收, taken on again."""
    mine = await file(app, "mine", [UNIT])
    unit = await unit_login()
    assert (await unit.post(f"/unit/tickets/{mine}/accept", json={})).status_code == 200
    assert (await unit.post(f"/unit/tickets/{mine}/resolve", json={"note": "路灯已修复"})).status_code == 200
    assert (await unit.get("/unit/summary")).json()["counts"]["received"] == 0
    await app.state.runtime.tickets.set_status(mine, "reopened", "市民反映路灯仍不亮")
    app.state.console.unit_counts.clear()  # the centre's step: counted again within COUNTS_TTL_S
    assert (await unit.get("/unit/summary")).json()["counts"]["received"] == 1
    [row] = (await unit.get("/unit/tickets?view=received")).json()["tickets"]
    assert (row["ticket_id"], row["status"]) == (mine, "reopened")
    assert (await unit.post(f"/unit/tickets/{mine}/accept", json={"note": "已再次安排维修"})).json()["status"] == "accepted"
    assert (await unit.get("/unit/tickets?view=received")).json()["tickets"] == []


async def test_the_tickets_citizens_pressed_for_have_a_list_of_their_own(app: Any, unit_login: Any) -> None:
    """催办: the open tickets the citizen pressed for (催办未办结), counted and listed; done, they leave."""
    pressed = await file(app, "pressed", [UNIT])
    await file(app, "calm", [UNIT])
    await app.state.runtime.tickets.urge(pressed, "怎么还没人来修")
    unit = await unit_login()
    assert (await unit.get("/unit/summary")).json()["counts"]["urged"] == 1
    [row] = (await unit.get("/unit/tickets?view=urged")).json()["tickets"]
    assert (row["ticket_id"], row["urges"]) == (pressed, 1)
    await unit.post(f"/unit/tickets/{pressed}/accept", json={})
    await unit.post(f"/unit/tickets/{pressed}/resolve", json={"note": "路灯已修复"})
    assert (await unit.get("/unit/summary")).json()["counts"]["urged"] == 0
    assert (await unit.get("/unit/tickets?view=urged")).json()["tickets"] == []


async def test_a_unit_exports_its_list_as_the_centres_csv(app: Any, unit_login: Any, console_login: Any) -> None:
    """导出: the list's tickets of the period (the unit's only), as the centre's columns, no phone
    numbers; 400 for another list or period; audited; nobody else's."""
    mine = await file(app, "mine", [UNIT])
    helped = await file(app, "helped", ["供电公司", UNIT])
    await file(app, "other", ["水务局"])
    unit = await unit_login()
    r = await unit.get("/unit/tickets.csv?view=all&days=30")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    text = r.text.lstrip("\ufeff")
    header, *rows = [line for line in text.splitlines() if line]
    assert "工单编号" in header and "承办部门" in header
    assert {row.split(",")[0] for row in rows} == {mine, helped}
    assert "13812345678" not in text and "小区门口路灯坏了" not in text  # no phone, no description
    assert (await unit.get("/unit/tickets.csv?view=received&q=helped")).text.count("12345-") == 1
    assert (await unit.get("/unit/tickets.csv?view=nothing")).status_code == 400
    assert (await unit.get("/unit/tickets.csv?days=5")).status_code == 400
    boss = await console_login("boss", "supervisor")
    assert (await boss.get("/unit/tickets.csv")).status_code == 403  # the centre exports from 工单查询
    [entry] = [e for e in (await boss.get("/audit?limit=50")).json()["entries"] if e["action"] == "unit.export"
               and e["detail"]["view"] == "all"]
    assert (entry["actor"], entry["detail"]["rows"], entry["detail"]["days"]) == ("cgj", 2, 30)


async def test_overdue_and_due_soon_lists_judge_the_units_tickets_by_their_time_limits(
    app: Any, settings: Settings, unit_login: Any
) -> None:
    from ticket_client import LocalLedger

    async with LocalLedger(settings.effective_database_url, clock=lambda: datetime.now(UTC) - timedelta(days=45)) as old:
        late = (await old.file(TicketDraft(channel="web", conversation_key="web:late", description="井盖破损",
                                           departments=[UNIT]), "late")).ticket_id
    await file(app, "fresh", [UNIT], urgent=True)
    unit = await unit_login()
    counts = (await unit.get("/unit/summary")).json()["counts"]
    assert (counts["overdue"], counts["received"], counts["received_urgent"]) == (1, 2, 1)  # 【紧急】 in its title
    assert [t["ticket_id"] for t in (await unit.get("/unit/tickets?view=overdue")).json()["tickets"]] == [late]


async def test_department_accounts_name_their_unit(app: Any, console_login: Any) -> None:
    """Created by a supervisor (or the CLI) with the unit as tickets name it; an operator has none;
    a department account is no one to transfer a conversation to."""
    boss = await console_login("boss", "supervisor")
    body = {"name": "cgj", "role": "department", "display_name": "城管局值班"}
    none = await boss.post("/users", json=body)
    assert none.status_code == 400 and "所属单位" in none.json()["detail"]
    assert (await boss.post("/users", json={"name": "op2", "role": "operator", "unit": UNIT})).status_code == 400
    r = await boss.post("/users", json=body | {"unit": f" {UNIT} "})
    assert r.status_code == 201 and r.json()["user"]["unit"] == UNIT
    assert (await boss.post("/transfer", json={"key": "web:x", "to": "cgj"})).status_code == 400


async def test_a_tickets_photos_open_in_the_lookup_and_for_its_units(
    app: Any, unit_login: Any, console_login: Any
) -> None:
    """A ticket's files by their place in it, whole or as a thumbnail: for an operator (工单查询, the
    conversation gone or not) and for the units it names; 404 for another unit, for a file it does
    not have, and for one not fetched (or no longer kept)."""
    import io

    from PIL import Image

    from channels.media import THUMB_SIDE, THUMB_SUFFIX, MediaRecord, save_record, write_file
    from tests.conftest import photo

    rt = app.state.runtime
    content = photo()
    path = rt.settings.media_folder / "upload" / "cd" / "cde.jpg"
    write_file(path, content)
    await save_record(rt.redis, "upload:cde", MediaRecord(path=str(path), mime="image/jpeg", size=len(content)), 1)
    mine = await file(app, "mine", [UNIT], attachments=["upload:cde", "upload:gone"])
    other = await file(app, "other", ["水务局"], attachments=["upload:cde"])
    unit = await unit_login()
    li = await console_login("li")
    for who, base in ((unit, f"/unit/tickets/{mine}"), (li, f"/tickets/{mine}")):
        r = await who.get(f"{base}/attachments/0")
        assert r.status_code == 200 and r.content == content and r.headers["content-type"] == "image/jpeg"
        small = await who.get(f"{base}/attachments/0?thumb=1")  # what 附件查看 shows; made once, kept beside it
        assert small.status_code == 200 and small.headers["content-type"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(small.content)).size) == THUMB_SIDE and len(small.content) < len(content) / 3
        assert path.with_name("cde.jpg" + THUMB_SUFFIX).read_bytes() == small.content
        assert (await who.get(f"{base}/attachments/1")).json()["detail"] == "附件尚未取到或已过期"
        assert (await who.get(f"{base}/attachments/2")).status_code == 404
    assert (await unit.get(f"/unit/tickets/{other}/attachments/0")).status_code == 404
    assert (await unit.get(f"/tickets/{mine}/attachments/0")).status_code == 403  # the centre's route
