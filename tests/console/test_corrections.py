"""更正, 改派 and 审核无误 over the console's API: what changes, who hears, what is kept."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import wait_for_events
from tests.gateway.test_web_e2e import file_ticket, new_session


async def test_a_returned_ticket_is_sent_to_another_department_and_the_citizen_hears_it(
    app: Any, client: httpx.AsyncClient, console_login: Any
) -> None:
    rt = app.state.runtime
    session = await new_session(client)
    ticket_id, cursor = await file_ticket(client, session)
    await rt.tickets.set_status(ticket_id, "accepted")
    await rt.tickets.set_status(ticket_id, "returned", "路灯归供电公司管理，非本单位职责")
    _, cursor = await wait_for_events(client, session, lambda e: "非本单位职责" in e["text"], after=cursor)
    boss = await console_login("boss", "supervisor")
    assert (await boss.get("/stats")).json()["returned"] == 1  # 退回待改派
    li = await console_login("li")
    assert (await li.get("/queue")).json()["returned"] == 1  # 待改派, beside 工单查询 for everyone
    r = await li.post(f"/tickets/{ticket_id}/correct", json={
        "category": ["城乡建设", "城市建设和市政管理", "电力供应"], "departments": ["供电公司", "发展和改革局"],
        "reason": "退单：路灯由供电公司维护"})
    assert r.status_code == 200, r.text
    ticket = r.json()
    assert ticket["status"] == "accepted" and ticket["departments"] == ["供电公司", "发展和改革局"]
    [rev] = ticket["revisions"]
    assert (rev["by"], rev["reason"], rev["dispatched"]) == ("li", "退单：路灯由供电公司维护", True)
    assert rev["after"]["category"] == ["城乡建设", "城市建设和市政管理", "电力供应"]
    assert rev["before"]["departments"] != rev["after"]["departments"]
    events, _ = await wait_for_events(client, session, lambda e: "改派" in e["text"], after=cursor)
    told = next(e["text"] for e in events if "改派" in e["text"])
    assert "已派单" in told and "已改派至供电公司" in told
    assert "退单" not in told  # the operator's reason is the centre's, not the citizen's

    assert (await li.get("/queue")).json()["returned"] == 0  # sent out here: counted again at once
    shown = (await li.get(f"/tickets/{ticket_id}")).json()["ticket"]
    assert shown["revisions"] == ticket["revisions"]
    assert [t["ticket_id"] for t in (await li.get("/tickets?reviewed=true")).json()["tickets"]] == [ticket_id]
    assert [t["ticket_id"] for t in (await li.get("/tickets?department=发展和改革局")).json()["tickets"]] == [ticket_id]
    assert (await li.get("/tickets?department=住房和城乡建设局")).json()["tickets"] == []  # no longer its
    assert (await li.get("/tickets?department=" + "局" * 41)).status_code == 422
    [entry] = [e for e in (await boss.get("/audit?limit=30")).json()["entries"] if e["action"] == "ticket.correct"]
    assert entry["actor"] == "li" and entry["detail"] == {
        "ticket_id": ticket_id, "fields": ["category", "departments"], "dispatched": True}
    stats = (await boss.get("/stats")).json()
    assert stats["service"][0]["redispatched"] == 1 and stats["returned"] == 0
    assert stats["corrections"] == [
        {"field": "departments", "before": rev["before"]["departments"][0], "after": "供电公司",
         "category": "城乡建设/城市建设和市政管理", "count": 1},
    ]  # the category's first level stayed 城乡建设: no 分类 row


async def test_a_confirmation_and_the_refusals(app: Any, client: httpx.AsyncClient, console_login: Any) -> None:
    rt = app.state.runtime
    ticket_id, _ = await file_ticket(client, await new_session(client))
    filed = await rt.tickets.get(ticket_id)
    li = await console_login("li")
    same = {"category": filed.category, "request_type": filed.request_type, "urgent": filed.urgent}
    r = await li.post(f"/tickets/{ticket_id}/correct", json=same)
    assert r.status_code == 200, r.text
    assert [(v["before"], v["after"], v["dispatched"]) for v in r.json()["revisions"]] == [({}, {}, False)]
    assert r.json()["status"] == "received"  # confirmed: nothing moves

    bad = await li.post(f"/tickets/{ticket_id}/correct", json={"request_type": "抱怨"})
    assert bad.status_code == 400 and "投诉" in bad.json()["detail"]
    assert (await li.post(f"/tickets/{ticket_id}/correct", json={"category": ["一", "二", "三", "四"]})).status_code == 422
    assert (await li.post("/tickets/12345-20201231-999999/correct", json={})).status_code == 404
    for status in ("accepted", "resolved"):
        await rt.tickets.set_status(ticket_id, status)
    done = await li.post(f"/tickets/{ticket_id}/correct", json={"departments": ["水务局"]})
    assert done.status_code == 409 and done.json()["detail"].startswith("不能改派：") and "已办结" in done.json()["detail"]
    relabelled = await li.post(f"/tickets/{ticket_id}/correct", json={"request_type": "求助"})
    assert relabelled.status_code == 200 and relabelled.json()["request_type"] == "求助"
    place = await li.post(f"/tickets/{ticket_id}/correct", json={"location": "A3区联丰路88号米兰春天", "reason": "属地有误"})
    assert place.status_code == 200 and place.json()["location"] == "A3区联丰路88号米兰春天"  # done: the place may be set right
    assert place.json()["revisions"][-1]["after"] == {"location": "A3区联丰路88号米兰春天"}
    assert (await li.post(f"/tickets/{ticket_id}/correct", json={"location": "路" * 201})).status_code == 422
    assert len((await rt.tickets.get(ticket_id)).revisions) == 3
    assert (await client.post(f"/api/console/tickets/{ticket_id}/correct", json={})).status_code in (401, 403)


async def test_routing_offers_the_taxonomy_and_the_department_maps_suggestion(console_login: Any) -> None:
    li = await console_login("li")
    r = await li.get("/routing?category=" + "城乡建设/城市建设和市政管理/燃气供应")
    assert r.status_code == 200
    found = r.json()
    assert found["suggested"] == ["城市管理和综合执法局", "燃气公司", "应急管理局"]
    assert {"城乡建设", "城乡建设/城市建设和市政管理", "城乡建设/城市建设和市政管理/燃气供应", "纪检监察"} <= set(found["categories"])
    assert len(found["categories"]) > 500  # the official taxonomy's paths, from the NLU model
    assert {"供电公司", "水务局", "12345热线服务中心"} <= set(found["departments"])
    assert (await li.get("/routing?category=不存在的分类")).json()["suggested"] == ["12345热线服务中心"]
    assert (await li.get("/routing")).json()["suggested"] == []
    # 属地: the units named by place are the offices of the place given (the 更正 form's 地点)
    local = await li.get("/routing", params={"category": "城乡建设", "location": "雨花区洞井街道桂花坪社区"})
    assert local.json()["suggested"] == ["住房和城乡建设局", "城市管理和综合执法局", "洞井街道办事处"]
    unsettled = await li.get("/routing", params={"category": "城乡建设", "location": ""})
    assert unsettled.json()["suggested"][-1] == "属地街道办事处"  # no place to settle it: the operator does
    # the city's own districts and towns (gazetteer) are offered as offices, placeholders not as units
    assert {"泉塘街道办事处", "雨花区人民政府", "经开区管委会"} <= set(found["departments"])
    assert "属地街道办事处" not in found["departments"]
