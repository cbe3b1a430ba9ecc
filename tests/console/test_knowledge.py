"""The knowledge base end to end: a citizen's question answered on the web channel, counted for the
班长视图, filed when unsolved; operators search it to answer in their own replies."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import wait_for_events
from tests.gateway.test_operations import sample
from tests.gateway.test_web_e2e import new_session, say


async def test_answered_counted_and_filed_when_unsolved(client: httpx.AsyncClient, console_login: Any) -> None:
    before = (await client.get("/metrics")).text
    asked, unsolved = await new_session(client), await new_session(client)
    for session in (asked, unsolved):
        await say(client, session, "12345热线受理哪些事情？")
        events, cursor = await wait_for_events(client, session, lambda e: "是否解决" in e["text"])
        assert "咨询" in events[-1]["text"] and events[-1]["buttons"] == ["已解决", "没有解决"]
        if session is unsolved:
            await say(client, session, "没有解决")
            events, cursor = await wait_for_events(client, session, lambda e: "为您登记" in e["text"], after=cursor)
            # drafted as any 咨询: asked which district, or that it concerns no place
            await wait_for_events(client, session, lambda e: "不涉及具体地点" in e.get("buttons", []), after=cursor)
        else:
            await say(client, session, "明白了，谢谢")
            await wait_for_events(client, session, lambda e: "很高兴" in e["text"], after=cursor)

    after = (await client.get("/metrics")).text
    name = 'hotline_knowledge_answers_total{{outcome="{}"}}'
    assert [sample(after, name.format(o)) - sample(before, name.format(o))
            for o in ("answered", "solved", "unsolved")] == [2, 1, 1]

    boss = await console_login("li", "supervisor")
    use = (await boss.get("/stats")).json()["knowledge"]
    assert use["enabled"] and use["totals"] == {"answered": 2, "solved": 1, "unsolved": 1}
    (row,) = use["entries"]
    assert (row["answered"], row["solved"], row["unsolved"]) == (2, 1, 1) and "受理" in row["question"]
    assert (await (await console_login("wang")).get("/stats")).status_code == 403  # supervisors only


async def test_operators_search_the_knowledge_base(console_login: Any) -> None:
    op = await console_login("wang")
    found = (await op.get("/knowledge", params={"q": "着火了应该打什么电话"})).json()
    assert found["enabled"] and "119" in found["entries"][0]["answer"]
    assert {"id", "question", "answer", "source", "updated", "score"} <= set(found["entries"][0])
    browse = (await op.get("/knowledge")).json()["entries"]  # no words: the entries as listed
    assert len(browse) == 8 and all(e["score"] is None for e in browse)
    assert (await op.get("/knowledge", params={"q": "x" * 201})).status_code == 422
    async with httpx.AsyncClient(transport=op.client._transport, base_url="http://test") as anonymous:
        assert (await anonymous.get("/api/console/knowledge?q=报警")).status_code == 401
