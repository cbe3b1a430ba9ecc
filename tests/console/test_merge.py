"""并单 over the console's and the admin API: the repeats of one matter found at its place, merged
into one main ticket, each citizen hearing every step on their own channel."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from tests.conftest import wait_for_events
from tests.gateway.test_web_e2e import ADMIN, file_ticket, new_session, say
from ticket_client import LocationInfo, TicketDraft


async def test_a_repeat_is_found_merged_and_its_citizen_hears_the_mains_steps(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    rt = app.state.runtime
    first_session, second_session = await new_session(client), await new_session(client)
    main, _ = await file_ticket(client, first_session)
    repeat, cursor = await file_ticket(client, second_session)  # the same dark lamp, reported again
    li = await console_login("li")

    similar = (await li.get(f"/tickets/{repeat}/similar")).json()
    assert similar["place"] and [t["ticket_id"] for t in similar["tickets"]] == [main]
    r = await li.post(f"/tickets/{repeat}/merge", json={"into": main, "reason": "同一路灯，电话13912345678"})
    assert r.status_code == 200, r.text
    assert r.json()["merged_into"] == main
    events, cursor = await wait_for_events(client, second_session, lambda e: "合并办理" in e["text"], after=cursor)
    assert main in next(e["text"] for e in events if "合并办理" in e["text"])
    assert (await li.get(f"/tickets/{repeat}/similar")).json()["tickets"] == []  # followed: reached through its main
    # its citizen adds to their own ticket; the main, where the department works, shows it
    assert (await say(client, second_session, "补充一下，是南门口那盏，灯杆上编号L203")).status_code == 202
    _, cursor = await wait_for_events(client, second_session, lambda e: "已将您的补充内容添加到工单" in e["text"],
                                      after=cursor)
    shown = (await li.get(f"/tickets/{main}")).json()
    assert [t["ticket_id"] for t in shown["merged"]] == [repeat]
    assert [(f["kind"], f["ticket_id"]) for f in shown["merged_followups"]] == [("info", repeat)]
    assert "L203" in shown["merged_followups"][0]["note"] and shown["ticket"]["followups"] == []
    await rt.tickets.urge(repeat, "我那单怎么还没修")  # pressed for through the repeat: the main's 市民催办 counts it
    shown = (await li.get(f"/tickets/{main}")).json()
    assert shown["ticket"]["urges"] == 1 and shown["ticket"]["urged_at"] is not None
    assert {t["ticket_id"] for t in (await li.get("/tickets?urged=true")).json()["tickets"]} == {main, repeat}
    assert [t["ticket_id"] for t in (await li.get(f"/tickets?q={repeat[-6:]}")).json()["tickets"]] == [repeat]

    assert (await li.post(f"/tickets/{main}/status", json={"status": "accepted", "note": "已派城管局"})).status_code == 200
    await wait_for_events(client, second_session, lambda e: "已派城管局" in e["text"], after=cursor)
    refused = await li.post(f"/tickets/{repeat}/status", json={"status": "returned", "note": ""})
    assert refused.status_code == 409 and refused.json()["detail"] == f"并单：工单 {repeat} 已并入工单 {main}，请在主单上办理"
    await rt.tickets.set_status(main, "returned", "非本单位职责")
    assert (await li.get("/queue")).json()["returned"] == 1  # the repeat is returned with its main: one 改派
    assert [t["ticket_id"] for t in (await li.get("/tickets?status=returned")).json()["tickets"]] == [main]
    boss = await console_login("boss", "supervisor")
    stats = (await boss.get("/stats")).json()
    assert stats["returned"] == 1 and [s["merged"] for s in stats["service"]] == [1, 1, 1]  # 并单工单
    exported = csv.DictReader(io.StringIO((await boss.get("/tickets.csv")).text.lstrip("\ufeff")))
    assert {r["工单编号"]: r["并入工单"] for r in exported} == {main: "", repeat: main}  # the report says which

    again = await li.post(f"/tickets/{repeat}/merge", json={"into": main})
    assert again.status_code == 409 and again.json()["detail"] == f"并单：工单 {repeat} 已并入工单 {main}"
    assert (await li.post(f"/tickets/{main}/merge", json={"into": main})).status_code == 409
    assert (await li.post(f"/tickets/{repeat}/merge", json={"into": ""})).status_code == 422
    assert (await li.post(f"/tickets/{repeat}/merge", json={"into": "12345-20201231-999999"})).status_code == 404
    # sent out again and resolved on the main: the repeat's citizen is told, then asked to rate it
    assert (await li.post(f"/tickets/{main}/correct", json={"departments": ["供电公司"]})).status_code == 200
    assert (await li.post(f"/tickets/{main}/status", json={"status": "resolved", "note": "已更换灯泡"})).status_code == 200
    events, cursor = await wait_for_events(client, second_session, lambda e: e["type"] == "survey", after=cursor)
    assert any("已改派至供电公司" in e["text"] for e in events) and any("已更换灯泡" in e["text"] for e in events)
    assert (await rt.tickets.get(repeat)).status == "resolved"
    await rt.tickets.set_status(main, "reopened", "市民反映仍未修好")
    alone = await li.post(f"/tickets/{repeat}/unmerge", json={"reason": "不是同一盏灯"})
    assert alone.status_code == 200 and alone.json()["merged_into"] is None and alone.json()["status"] == "reopened"
    assert (await li.post(f"/tickets/{repeat}/unmerge", json={})).status_code == 409
    entries = [e for e in (await boss.get("/audit?limit=50")).json()["entries"]
               if e["action"] in ("ticket.merge", "ticket.unmerge")]
    assert [(e["action"], e["actor"], e["detail"]["ticket_id"]) for e in entries] == [
        ("ticket.unmerge", "li", repeat), ("ticket.merge", "li", repeat)]
    assert entries[1]["detail"]["into"] == main and "13912345678" not in entries[1]["detail"]["reason"]


async def test_the_dispatch_system_merges_through_the_admin_api(app: Any, client: httpx.AsyncClient) -> None:
    main, _ = await file_ticket(client, await new_session(client))
    repeat, _ = await file_ticket(client, await new_session(client))
    r = await client.post(f"/api/admin/tickets/{repeat}/merge", json={"into": main, "by": "dispatch"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["merged_into"] == main
    r = await client.post(f"/api/admin/tickets/{main}/merge", json={"into": repeat}, headers=ADMIN)
    assert r.status_code == 409 and "只能作为主单" in r.json()["detail"]
    assert (await client.post(f"/api/admin/tickets/{repeat}/merge", json={"into": main})).status_code == 401
    r = await client.post(f"/api/admin/tickets/{repeat}/unmerge", json={"by": "dispatch"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["merged_into"] is None


async def test_the_lists_flag_open_tickets_about_one_spot_as_suspected_repeats(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    """疑似重复: 工单查询's rows and a ticket's detail count the other open tickets of the last 30
    days about the same spot and matter (the estate the bot read, or a place an operator corrected
    to it; a lamp, not a noise there), and 并单's candidates list those first; a merged or done
    ticket is counted no more."""
    rt = app.state.runtime
    main, _ = await file_ticket(client, await new_session(client))
    repeat, _ = await file_ticket(client, await new_session(client))
    elsewhere = (await rt.tickets.file(TicketDraft(
        channel="web", conversation_key="web:x", description="书院路的路灯不亮", category=["城乡建设"],
        location=LocationInfo(text="书院路", parts={"road": "书院路"})), "elsewhere")).ticket_id
    noise = (await rt.tickets.file(TicketDraft(  # at the estate too, but another matter
        channel="web", conversation_key="web:y", description="米兰春天小区晚上广场舞噪音太大", category=["环境保护"],
        location=LocationInfo(text="米兰春天小区", parts={"community": "米兰春天小区"})), "noise")).ticket_id
    li = await console_login("li")

    async def flagged() -> dict[str, int]:
        return {t["ticket_id"]: t["repeats"] for t in (await li.get("/tickets")).json()["tickets"]}

    assert await flagged() == {main: 1, repeat: 1, elsewhere: 0, noise: 0}
    assert (await li.get(f"/tickets/{main}")).json()["ticket"]["repeats"] == 1
    boss = await console_login("boss", "supervisor")
    assert (await boss.get("/stats")).json()["repeated"] == 2  # 班长视图's 疑似重复 card
    only = (await li.get("/tickets?repeated=true")).json()["tickets"]  # 仅疑似重复: the burst to merge
    assert [t["ticket_id"] for t in only] == [repeat, main]
    assert (await li.post(f"/tickets/{elsewhere}/correct", json={"location": "书院路18号"})).status_code == 200
    assert await flagged() == {main: 1, repeat: 1, elsewhere: 0, noise: 0}
    r = await li.post(f"/tickets/{elsewhere}/correct", json={"location": "A3区米兰春天小区", "reason": "属地有误"})
    assert r.status_code == 200, r.text
    assert (await rt.tickets.get(elsewhere)).location.parts == {"district": "A3区", "community": "米兰春天小区"}
    assert await flagged() == {main: 2, repeat: 2, elsewhere: 2, noise: 0}
    exported = csv.DictReader(io.StringIO((await boss.get("/tickets.csv")).text.lstrip("\ufeff")))
    assert {r["工单编号"]: r["疑似重复"] for r in exported} == {main: "2", repeat: "2", elsewhere: "2", noise: ""}
    similar = (await li.get(f"/tickets/{elsewhere}/similar")).json()
    listed = [t["ticket_id"] for t in similar["tickets"]]
    assert similar["place"] == "米兰春天" and set(listed[:2]) == {main, repeat} and listed[2:] == [noise]  # matter first

    assert (await li.post(f"/tickets/{repeat}/merge", json={"into": main})).status_code == 200
    assert await flagged() == {main: 1, repeat: 0, elsewhere: 1, noise: 0}  # the repeat is counted by its main
    assert [t["ticket_id"] for t in (await li.get("/tickets?repeated=true")).json()["tickets"]] == [elsewhere, main]
    for status in ("accepted", "resolved"):
        assert (await li.post(f"/tickets/{elsewhere}/status", json={"status": status, "note": ""})).status_code == 200
    assert await flagged() == {main: 0, repeat: 0, elsewhere: 0, noise: 0}
    assert (await li.get(f"/tickets/{main}")).json()["ticket"]["repeats"] == 0
    assert (await boss.get("/stats")).json()["repeated"] == 0


async def test_a_ticket_an_operator_files_is_read_at_its_spot_and_told_if_it_repeats(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    """The place an operator types on the filing form is read into its parts, so the ticket counts
    at its estate like the bot's; the operator hears at once that it repeats an open one there."""
    from tests.console.test_api import waiting_conversation

    rt = app.state.runtime
    main, _ = await file_ticket(client, await new_session(client))
    _, key, _ = await waiting_conversation(client)
    op = await console_login("zhou")
    await op.post("/takeover", {"key": key})
    form = {"title": "路灯不亮", "description": "小区门口路灯坏了", "category": ["城乡建设"], "request_type": "投诉",
            "urgent": False, "location_text": "A3区米兰春天小区东门", "contact": "", "departments": []}
    r = await op.post("/ticket", {"key": key, "form": form, "request_id": "r1"})
    assert r.status_code == 200, r.text
    assert r.json()["repeats"] == 1
    filed = await rt.tickets.get(r.json()["ticket_id"])
    assert filed.location.parts.get("community") == "米兰春天小区" and filed.spot() == ("米兰春天", "城乡建设")
    assert {t["ticket_id"]: t["repeats"] for t in (await op.get("/tickets")).json()["tickets"]} == {
        main: 1, filed.ticket_id: 1}


def test_a_form_that_keeps_the_bots_place_keeps_its_reading_and_map_point() -> None:
    """Filed from the console with the place as the bot drafted it, the ticket keeps the bot's parts
    and the point the citizen shared; a place the operator wrote anew takes the parts read from it."""
    from bot.state import ConversationState, Draft
    from gateway.console.conversations import TicketForm, draft_of

    bot = Draft(description="路灯坏了", location_text="米兰春天小区", location_parts={"community": "米兰春天小区"},
                lat=28.1, lng=112.9)
    conv = {"state": ConversationState(draft=bot).model_dump_json()}
    kept = draft_of(TicketForm(description="路灯坏了", location_text="米兰春天小区"), "web:a", "web", conv)
    assert kept.location == LocationInfo(text="米兰春天小区", parts={"community": "米兰春天小区"}, lat=28.1, lng=112.9)
    anew = draft_of(TicketForm(description="路灯坏了", location_text="书院路18号"), "web:a", "web", conv,
                    {"road": "书院路", "number": "18号"})
    assert anew.location == LocationInfo(text="书院路18号", parts={"road": "书院路", "number": "18号"})


async def test_every_repeat_of_a_burst_is_merged_into_one_ticket_at_once(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    """并入本单: the 疑似重复 a ticket's 可能重复 marks (same_spot) are merged into it in one go, each
    citizen told and each merge audited; one that cannot be is said with why, the rest merged."""
    rt = app.state.runtime
    sessions = [await new_session(client) for _ in range(3)]
    main, first, second = [(await file_ticket(client, s))[0] for s in sessions]
    done = (await rt.tickets.file(TicketDraft(channel="web", conversation_key="web:z", description="路灯不亮",
                                              category=["城乡建设"]), "done")).ticket_id
    for status in ("accepted", "resolved"):
        await rt.tickets.set_status(done, status)
    li = await console_login("li")
    similar = (await li.get(f"/tickets/{main}/similar")).json()["tickets"]
    assert {t["ticket_id"] for t in similar if t["same_spot"]} == {first, second}
    r = await li.post(f"/tickets/{main}/gather", json={"tickets": [first, second, done, "12345-20201231-999999"],
                                                         "reason": "同一路灯"})
    assert r.status_code == 200, r.text
    assert r.json()["merged"] == [first, second]
    assert [(x["ticket_id"], x["reason"]) for x in r.json()["refused"]] == [
        (done, f"工单 {done} 已办结，不能再并入其他工单"), ("12345-20201231-999999", "工单不存在")]
    assert {t["ticket_id"] for t in (await li.get(f"/tickets/{main}")).json()["merged"]} == {first, second}
    await wait_for_events(client, sessions[2], lambda e: "合并办理" in e["text"])
    boss = await console_login("boss", "supervisor")
    merges = [e for e in (await boss.get("/audit?limit=20")).json()["entries"] if e["action"] == "ticket.merge"]
    assert sorted(e["detail"]["ticket_id"] for e in merges) == sorted([first, second])
    assert (await li.post("/tickets/12345-20201231-999999/gather", json={"tickets": [first]})).status_code == 404
    assert (await li.post(f"/tickets/{main}/gather", json={"tickets": []})).status_code == 422


async def test_a_burst_longer_than_a_page_of_candidates_is_listed_and_gathered_whole(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    """Twelve calls about one burst main: all eleven repeats are listed at the spot (not the first
    eight 可能重复 only) and one press merges them all."""
    rt = app.state.runtime
    at_estate = LocationInfo(text="米兰春天小区", parts={"community": "米兰春天小区"})
    filed = [(await rt.tickets.file(TicketDraft(channel="web", conversation_key=f"web:b{n}", description="小区水管爆了",
                                                category=["城乡建设"], location=at_estate), f"burst-{n}")).ticket_id
             for n in range(12)]
    li = await console_login("li")
    listed = (await li.get(f"/tickets/{filed[0]}/similar")).json()["tickets"]
    assert sorted(t["ticket_id"] for t in listed if t["same_spot"]) == sorted(filed[1:])
    r = await li.post(f"/tickets/{filed[0]}/gather", json={"tickets": filed[1:]})
    assert r.status_code == 200 and sorted(r.json()["merged"]) == sorted(filed[1:])
