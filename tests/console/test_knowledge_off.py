"""The knowledge base turned off (HOTLINE_KNOWLEDGE_FILE empty): the bot answers nothing from it,
an entry added in the console included; operators' search and the 知识库 tab say it is off, and
the tab takes no edits. The console's edits are kept, and apply again once it is turned on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis as sync_redis
import redis.asyncio as aioredis

from config.settings import Settings
from gateway import keys
from gateway.knowledge import Edit, KnowledgeSource
from nlu.knowledge import Entry
from tests.console.test_knowledge_admin import FUND, HOURS_ASKED, first_reply

ASKED = "请问公积金怎么提取"  # FUND's question, as a citizen asks it


@pytest.fixture
def settings(settings: Settings) -> Iterator[Settings]:
    """Turned off, with an entry a supervisor added in the console while it was on."""
    added = Edit(Entry.model_validate({"id": "housing-fund", **FUND}), "li", time.time())
    client = sync_redis.Redis.from_url(settings.redis_url)
    client.hset(keys.KNOWLEDGE_EDITS, "housing-fund", added.dumps())
    client.incr(keys.KNOWLEDGE_VERSION)
    client.close()
    yield settings.model_copy(update={"knowledge_file": None})


async def test_the_bot_answers_nothing_from_it_not_even_a_console_entry(
    app: Any, client: httpx.AsyncClient
) -> None:
    source = app.state.runtime.knowledge
    await source.refresh()  # whatever the refresh loop does, the edits are read
    assert source.current() is None
    for text in (ASKED, HOURS_ASKED):  # the console's entry and a shipped one
        reply = await first_reply(client, text)
        assert FUND["answer"][:10] not in reply["text"] and "是否解决" not in reply["text"], text


async def test_the_console_says_it_is_off_and_takes_no_edits(
    app: Any, console_login: Any, settings: Settings
) -> None:
    op = await console_login("wang")
    assert (await op.get("/knowledge", params={"q": "公积金怎么提取"})).json() == {"enabled": False, "entries": []}
    boss = await console_login("li", "supervisor")
    listed = (await boss.get("/knowledge/entries")).json()
    assert listed | {"entries": None} == {
        "enabled": False, "file": "", "file_error": "", "editable": False, "error": "", "kept": 1, "folded": 0,
        "entries": None,
    }
    assert listed["entries"] == []
    off = "知识库已关闭（HOTLINE_KNOWLEDGE_FILE 为空）"
    for r in (
        await boss.put("/knowledge/entries/housing-fund", FUND | {"answer": "关闭时改的答复。"}),
        await boss.put("/knowledge/entries/night-line?new=true", {"question": "晚上有人接吗", "answer": "有。"}),
        await boss.client.delete("/api/console/knowledge/entries/housing-fund", headers={"X-CSRF-Token": boss.csrf}),
        await boss.post("/knowledge/entries/housing-fund/restore"),
        await boss.post("/knowledge/clear-folded"),
        await boss.get("/knowledge.yml"),
    ):
        assert r.status_code == 409 and r.json()["detail"].startswith(off), r.text
    assert "不能修改" in (await boss.post("/knowledge/clear-folded")).json()["detail"]
    use = (await boss.get("/stats")).json()["knowledge"]
    assert not use["enabled"] and use["entries"] == []
    assert [a["action"] for a in (await boss.get("/audit")).json()["entries"] if a["action"].startswith("knowledge")] == []

    # the console's entry is kept, unchanged: turned on again, it is answered as before
    on = KnowledgeSource(settings.model_copy(update={"knowledge_file": Settings.model_fields["knowledge_file"].default}))
    redis = aioredis.from_url(settings.redis_url, decode_responses=True)
    try:
        await on.start(redis)
        kb = on.current()
        hit = kb.answer(ASKED) if kb is not None else None
        assert hit is not None and hit.entry.answer == FUND["answer"]
    finally:
        await on.stop()
        await redis.aclose()
