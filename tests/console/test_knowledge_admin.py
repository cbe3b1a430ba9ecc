"""知识库维护: supervisors edit the knowledge base in the console, the bot answers from the edit in
every process within seconds; operators read; the file and the edits combine by id."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import Settings
from gateway import keys, knowledge
from gateway.errors import ServiceUnavailable
from gateway.knowledge import Edit, KnowledgeSource, effective, merge
from nlu.knowledge import Entry, read
from tests.conftest import wait_for_events
from tests.gateway.test_web_e2e import new_session, say
from tests.redis_fixtures import RedisProcess

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "knowledge.yml"
FUND = {
    "question": "住房公积金怎么提取？",
    "also": ["公积金提取需要什么材料", "如何提取公积金", "公积金能取出来吗"],
    "answer": "住房公积金可在市公积金中心网站或手机App上申请提取，也可携带身份证到任一公积金服务网点办理。",
    "source": "市住房公积金管理中心",
}
HOURS_ASKED = "晚上打12345有人接吗"  # a 相似问 of the shipped service-hours
NEW_HOURS = "12345热线电话7×24小时有人接听（测试修改后的答复口径）。"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shipped knowledge base copied, so that a test may change the file the app reads."""
    copy = tmp_path / "knowledge.yml"
    shutil.copy(SHIPPED, copy)
    return settings.model_copy(update={"knowledge_file": copy})


async def first_reply(client: httpx.AsyncClient, text: str) -> dict[str, Any]:
    """What the bot answers a new citizen asking ``text``."""
    session = await new_session(client)
    assert (await say(client, session, text)).status_code == 202
    events, _ = await wait_for_events(client, session, lambda e: e["type"] == "reply")
    return next(e for e in events if e["type"] == "reply")


def hours_entry(answer: str = NEW_HOURS) -> dict[str, Any]:
    """The shipped service-hours as the console's form sends it, with another answer."""
    shipped = next(e for e in read(SHIPPED)[0] if e.id == "service-hours")
    return shipped.model_dump(include={"question", "also", "source", "keywords"}) | {"answer": answer}


def beijing_today() -> str:
    return datetime.now(timezone(timedelta(hours=8))).date().isoformat()


async def test_a_supervisor_adds_an_entry_and_the_bot_answers_with_it(
    client: httpx.AsyncClient, console_login: Any
) -> None:
    before = await first_reply(client, "请问公积金怎么提取")
    assert FUND["answer"][:10] not in before["text"] and "是否解决" not in before["text"]

    boss = await console_login("li", "supervisor")
    r = await boss.put("/knowledge/entries/housing-fund?new=true", FUND)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] and body["warnings"] == []
    assert body["entry"] | {"edited_at": None} == {
        "id": "housing-fund", **FUND, "updated": beijing_today(), "keywords": [], "origin": "console",
        "edited_by": "li", "edited_at": None, "folded": False,
    }
    answered = await first_reply(client, "请问公积金怎么提取")  # within the refresh: at once, here
    assert FUND["answer"] in answered["text"] and answered["buttons"] == ["已解决", "没有解决"]

    listed = (await boss.get("/knowledge/entries")).json()
    assert listed["editable"] and listed["error"] == "" and listed["file"] == "knowledge.yml"
    assert [e["id"] for e in listed["entries"]][-1] == "housing-fund"  # after the file's
    assert (await boss.put("/knowledge/entries/housing-fund?new=true", FUND)).status_code == 409  # id in use
    found = (await boss.get("/knowledge", params={"q": "公积金提取"})).json()["entries"]
    assert found[0]["id"] == "housing-fund"  # operators' search too
    (logged,) = (await boss.get("/audit", params={"action": "knowledge.create"})).json()["entries"]
    assert logged["target"] == "housing-fund" and logged["actor"] == "li"


async def test_a_file_entry_edited_disabled_and_restored(client: httpx.AsyncClient, console_login: Any) -> None:
    boss = await console_login("li", "supervisor")
    r = await boss.put("/knowledge/entries/service-hours", hours_entry())
    assert r.status_code == 200, r.text
    assert not r.json()["created"] and r.json()["entry"]["origin"] == "edited"
    assert NEW_HOURS in (await first_reply(client, HOURS_ASKED))["text"]

    r = await boss.client.delete("/api/console/knowledge/entries/service-hours", headers={"X-CSRF-Token": boss.csrf})
    assert r.status_code == 200 and r.json()["outcome"] == "disabled"
    rows = {e["id"]: e for e in (await boss.get("/knowledge/entries")).json()["entries"]}
    assert rows["service-hours"]["origin"] == "disabled"
    assert rows["service-hours"]["answer"].startswith("12345热线电话提供7×24小时")  # the file's, to re-enable
    reply = await first_reply(client, HOURS_ASKED)  # no longer answered from it
    assert "7×24" not in reply["text"] and "是否解决" not in reply["text"]
    found = (await boss.get("/knowledge", params={"q": HOURS_ASKED})).json()["entries"]
    assert "service-hours" not in [e["id"] for e in found]

    r = await boss.post("/knowledge/entries/service-hours/restore")
    assert r.status_code == 200 and r.json()["entry"]["origin"] == "file"
    assert "7×24小时人工服务" in (await first_reply(client, HOURS_ASKED))["text"]

    r = await boss.post("/knowledge/entries/nonexistent/restore")
    assert r.status_code == 404
    assert (await boss.put("/knowledge/entries/housing-fund", FUND)).status_code == 200
    assert (await boss.post("/knowledge/entries/housing-fund/restore")).status_code == 409  # no file version
    r = await boss.client.delete("/api/console/knowledge/entries/housing-fund", headers={"X-CSRF-Token": boss.csrf})
    assert r.json()["outcome"] == "removed"
    assert "housing-fund" not in [e["id"] for e in (await boss.get("/knowledge/entries")).json()["entries"]]
    actions = [a["action"] for a in (await boss.get("/audit")).json()["entries"] if a["action"].startswith("knowledge")]
    assert actions == ["knowledge.delete", "knowledge.create", "knowledge.restore", "knowledge.disable",
                       "knowledge.update"]  # newest first
    (update,) = (await boss.get("/audit", params={"action": "knowledge.update"})).json()["entries"]
    assert update["detail"]["fields"] == ["answer"]  # what changed, for whoever reads the log


async def test_operators_read_but_do_not_write(console_login: Any) -> None:
    op = await console_login("wang")
    listed = (await op.get("/knowledge/entries")).json()
    assert not listed["editable"] and len(listed["entries"]) == 13
    assert {e["origin"] for e in listed["entries"]} == {"file"}
    assert (await op.put("/knowledge/entries/housing-fund", FUND)).status_code == 403
    assert (await op.post("/knowledge/entries/service-hours/restore")).status_code == 403
    r = await op.client.delete("/api/console/knowledge/entries/service-hours", headers={"X-CSRF-Token": op.csrf})
    assert r.status_code == 403
    assert (await op.get("/knowledge.yml")).status_code == 403
    boss = await console_login("li", "supervisor")
    r = await boss.client.put("/api/console/knowledge/entries/housing-fund", json=FUND)  # no CSRF token
    assert r.status_code == 403
    async with httpx.AsyncClient(transport=op.client._transport, base_url="http://test") as anonymous:
        assert (await anonymous.get("/api/console/knowledge/entries")).status_code == 401
    assert (await boss.get("/knowledge/entries")).json()["entries"] == listed["entries"]  # nothing written


@pytest.mark.parametrize(
    ("entry_id", "body", "named"),
    [
        ("housing-fund", FUND | {"answer": ""}, "答复口径：答复不能为空"),
        ("housing-fund", {k: v for k, v in FUND.items() if k != "question"}, "标准问：不能为空"),
        ("Housing_Fund", FUND, "编号：只能由小写字母、数字和连字符组成"),
        ("housing-fund", FUND | {"also": ["公积金怎么取", "你好吗"]}, "第2个相似问：问法“你好吗”去掉问候语和语气词后为空"),
        ("housing-fund", FUND | {"also": "公积金怎么取"}, "相似问：应是列表"),
        ("housing-fund", FUND | {"anwser": "x"}, "anwser：不认识的项"),
        ("housing-fund", FUND | {"answer": "长" * 1001}, "答复口径：答复有1001个字，超过1000字的上限"),
        ("housing-fund", FUND | {"also": ["怎么查询工单办理进度"]},
         "housing-fund：问法“怎么查询工单办理进度”与 query-progress 的“怎么查询工单的办理进度？”相同"),
        ("housing-fund", FUND | {"id": "other"}, "编号与地址中的编号不一致"),
    ],
)
async def test_invalid_entries_are_refused_naming_the_field(
    console_login: Any, entry_id: str, body: dict[str, Any], named: str
) -> None:
    boss = await console_login("li", "supervisor")
    r = await boss.put(f"/knowledge/entries/{entry_id}", body)
    assert r.status_code == 400, r.text
    assert named in r.json()["detail"]
    assert all(e["origin"] == "file" for e in (await boss.get("/knowledge/entries")).json()["entries"])


async def test_near_duplicates_are_saved_with_a_warning(console_login: Any) -> None:
    boss = await console_login("li", "supervisor")
    r = await boss.put("/knowledge/entries/night-line", {"question": "晚上12345有人接吗", "answer": "有。"})
    assert r.status_code == 200, r.text
    warnings = r.json()["warnings"]
    assert any("没有相似问" in w for w in warnings)
    assert any("night-line：问法“晚上12345有人接吗”也很像 service-hours 的“晚上打12345有人接吗”" in w for w in warnings)


async def test_another_process_sees_the_edit(
    app: Any, settings: Settings, console_login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `hotline worker` elsewhere shares only Redis: it finds the edit by the version counter."""
    from gateway.app import create_app

    async def nobody(source: KnowledgeSource, version: int) -> None:  # nothing in-process tells it
        return None

    monkeypatch.setattr(knowledge, "_wake_others", nobody)
    other = create_app(settings, workers=False)
    rt = other.state.runtime
    await rt.start(workers=False)
    try:
        assert rt.bot is not None and rt.bot.knowledge == rt.knowledge.current  # what its bot asks
        assert rt.bot.popular == rt.knowledge.popular  # and 常见问题's order
        hit = rt.knowledge.current().answer(HOURS_ASKED)
        assert hit is not None and hit.entry.answer != NEW_HOURS
        boss = await console_login("li", "supervisor")
        saved = time.monotonic()
        assert (await boss.put("/knowledge/entries/service-hours", hours_entry())).status_code == 200
        here = app.state.runtime.knowledge.current().answer(HOURS_ASKED)
        assert here is not None and here.entry.answer == NEW_HOURS  # the process that made it: at once
        while (hit := rt.knowledge.current().answer(HOURS_ASKED)) and hit.entry.answer != NEW_HOURS:
            assert time.monotonic() - saved < knowledge.REFRESH_S + 3, "the other process never saw the edit"
            await asyncio.sleep(0.05)
        assert hit is not None
    finally:
        await rt.stop()
    assert rt.knowledge._task is None  # its loop stopped with it


async def test_edits_that_conflict_with_a_changed_file_keep_the_last_good_base(
    app: Any, settings: Settings, console_login: Any
) -> None:
    boss = await console_login("li", "supervisor")
    assert (await boss.put("/knowledge/entries/housing-fund", FUND)).status_code == 200
    assert settings.knowledge_file is not None
    with settings.knowledge_file.open("a", encoding="utf-8") as f:  # IT adds the same question to the file
        f.write("\n- id: fund-withdrawal\n  question: 公积金提取需要什么材料？\n  answer: 身份证。\n")
    deadline = time.monotonic() + 10
    while not (listed := (await boss.get("/knowledge/entries")).json())["error"]:
        assert time.monotonic() < deadline, "the conflict was never noticed"
        await asyncio.sleep(0.1)
    assert "fund-withdrawal" in listed["error"] and "相同" in listed["error"]
    source = app.state.runtime.knowledge
    kept = source.current()
    assert "housing-fund" in [e.id for e in kept.entries] and "fund-withdrawal" not in [e.id for e in kept.entries]
    r = await boss.put("/knowledge/entries/service-hours", hours_entry())  # refused while it lasts, saying why
    assert r.status_code == 400 and "fund-withdrawal" in r.json()["detail"]
    r = await boss.client.delete("/api/console/knowledge/entries/housing-fund", headers={"X-CSRF-Token": boss.csrf})
    assert r.status_code == 200  # the fix: the console's entry goes, the file's is used
    assert (await boss.get("/knowledge/entries")).json()["error"] == ""
    assert "fund-withdrawal" in [e.id for e in source.current().entries]


async def test_export_is_a_file_in_the_same_format(console_login: Any, tmp_path: Path) -> None:
    boss = await console_login("li", "supervisor")
    assert (await boss.put("/knowledge/entries/service-hours", hours_entry())).status_code == 200
    assert (await boss.put("/knowledge/entries/housing-fund", FUND | {"keywords": ["公积金", "12345"]})).status_code == 200
    r = await boss.client.delete("/api/console/knowledge/entries/privacy", headers={"X-CSRF-Token": boss.csrf})
    assert r.status_code == 200
    r = await boss.get("/knowledge.yml")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith('attachment; filename="knowledge-')
    assert r.text.startswith("# 知识库导出")
    exported = tmp_path / "exported.yml"
    exported.write_bytes(r.content)
    entries, problems = read(exported)
    assert [p for p in problems if p.level == "error"] == []
    shipped = [e for e in read(SHIPPED)[0] if e.id != "privacy"]
    assert [e.id for e in entries] == [e.id for e in shipped] + ["housing-fund"]
    by_id = {e.id: e for e in entries}
    assert by_id["service-hours"].answer == NEW_HOURS and by_id["housing-fund"].keywords == ["公积金", "12345"]
    assert by_id["query-progress"] == next(e for e in shipped if e.id == "query-progress")  # untouched: as in the file
    (logged,) = (await boss.get("/audit", params={"action": "knowledge.export"})).json()["entries"]
    assert logged["detail"] == {"entries": 13}


async def delete(user: Any, entry_id: str) -> httpx.Response:
    return await user.client.delete(f"/api/console/knowledge/entries/{entry_id}", headers={"X-CSRF-Token": user.csrf})


def shipped_entry(entry_id: str) -> Entry:
    return next(e for e in read(SHIPPED)[0] if e.id == entry_id)


async def listed_when(boss: Any, ready: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The 知识库 tab's list once ``ready(list)`` holds (the file is looked at every 2 s)."""
    deadline = time.monotonic() + timeout
    while not ready(listed := (await boss.get("/knowledge/entries")).json()):
        assert time.monotonic() < deadline, f"never ready: {[(e['id'], e['origin'], e['folded']) for e in listed['entries']]}"
        await asyncio.sleep(0.1)
    return listed


async def fold_export(boss: Any, settings: Settings) -> None:
    """What IT does with 导出 YAML: the file replaced by it."""
    r = await boss.get("/knowledge.yml")
    assert r.status_code == 200 and settings.knowledge_file is not None
    settings.knowledge_file.write_bytes(r.content)


async def test_edits_folded_into_the_file_are_labelled_and_cleared_at_once(
    client: httpx.AsyncClient, settings: Settings, console_login: Any
) -> None:
    boss = await console_login("li", "supervisor")
    assert (await boss.put("/knowledge/entries/service-hours", hours_entry())).status_code == 200
    assert (await boss.put("/knowledge/entries/housing-fund?new=true", FUND)).status_code == 200
    assert (await delete(boss, "privacy")).json()["outcome"] == "disabled"
    await fold_export(boss, settings)  # the file now holds all three
    progress = shipped_entry("query-progress").model_dump(include={"question", "also", "source", "keywords"})
    r = await boss.put("/knowledge/entries/query-progress", progress | {"answer": "导出之后才改的答复。"})
    assert r.status_code == 200  # after the export: the file does not have it

    listed = await listed_when(boss, lambda d: d["folded"] == 3)
    rows = {e["id"]: e for e in listed["entries"]}
    assert {i: (e["origin"], e["folded"]) for i, e in rows.items() if e["origin"] != "file"} == {
        "service-hours": ("edited", True),  # equal to the file's entry now
        "housing-fund": ("edited", True),  # added in the console, now in the file too
        "privacy": ("disabled", True),  # 停用 in the console, gone from the file
        "query-progress": ("edited", False),  # differs from the file: still the console's
    }
    assert rows["privacy"]["question"] == shipped_entry("privacy").question  # the last known, not its id
    assert list(rows)[-1] == "privacy"  # listed last, after what the bot answers from

    op = await console_login("wang")
    assert (await op.post("/knowledge/clear-folded")).status_code == 403
    r = await boss.post("/knowledge/clear-folded")
    assert r.status_code == 200, r.text
    assert r.json() == {"cleared": 3, "ids": ["housing-fund", "privacy", "service-hours"]}

    listed = (await boss.get("/knowledge/entries")).json()
    rows = {e["id"]: e for e in listed["entries"]}
    assert listed["folded"] == 0 and "privacy" not in rows
    assert {i: e["origin"] for i, e in rows.items() if e["origin"] != "file"} == {"query-progress": "edited"}
    assert rows["service-hours"]["answer"] == NEW_HOURS and rows["housing-fund"]["answer"] == FUND["answer"]
    assert NEW_HOURS in (await first_reply(client, HOURS_ASKED))["text"]  # the bot answers as before: from the file
    (logged,) = (await boss.get("/audit", params={"action": "knowledge.clear_folded"})).json()["entries"]
    assert logged["actor"] == "li" and logged["detail"] == {"count": 3, "ids": ["housing-fund", "privacy", "service-hours"]}
    assert (await boss.post("/knowledge/clear-folded")).json() == {"cleared": 0, "ids": []}  # nothing left to clear


async def test_clearing_leaves_an_edit_another_supervisor_saves_meanwhile(
    settings: Settings, console_login: Any, clean_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two supervisors: one clears while the other saves an entry the file had matched. The
    clearing compares the edits as stored when it removes them, never a copy read a moment ago."""
    import redis as sync_redis

    boss = await console_login("li", "supervisor")
    withdraw = shipped_entry("withdraw").model_dump(include={"question", "also", "source", "keywords"})
    assert (await boss.put("/knowledge/entries/service-hours", hours_entry())).status_code == 200
    assert (await boss.put("/knowledge/entries/withdraw", withdraw | {"answer": "撤回请回复“撤回工单”。"})).status_code == 200
    await fold_export(boss, settings)
    await listed_when(boss, lambda d: d["folded"] == 2)

    theirs = Edit(Entry.model_validate({"id": "service-hours", **hours_entry("另一位班长刚改的答复。")}), "zhang", time.time())
    compare = knowledge.folded
    raced: list[str] = []

    def meanwhile(edit: Edit, in_file: Entry | None) -> bool:
        """The other supervisor's save lands after the edits were read, before they are removed."""
        if not raced:
            raced.append("saved")
            other = sync_redis.Redis.from_url(clean_redis)
            other.hset(keys.KNOWLEDGE_EDITS, "service-hours", theirs.dumps())
            other.incr(keys.KNOWLEDGE_VERSION)
            other.close()
        return compare(edit, in_file)

    monkeypatch.setattr(knowledge, "folded", meanwhile)
    r = await boss.post("/knowledge/clear-folded")
    assert raced and r.json() == {"cleared": 1, "ids": ["withdraw"]}
    rows = {e["id"]: e for e in (await boss.get("/knowledge/entries")).json()["entries"]}
    assert (rows["service-hours"]["origin"], rows["service-hours"]["folded"]) == ("edited", False)
    assert rows["service-hours"]["answer"] == "另一位班长刚改的答复。" and rows["withdraw"]["origin"] == "file"


async def test_clearing_compares_with_the_file_as_it_is_at_that_moment(
    settings: Settings, console_login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nlu import knowledge as nlu_knowledge

    boss = await console_login("li", "supervisor")
    assert (await boss.put("/knowledge/entries/service-hours", hours_entry())).status_code == 200
    await fold_export(boss, settings)
    await listed_when(boss, lambda d: d["folded"] == 1)
    assert settings.knowledge_file is not None
    folded_in = settings.knowledge_file.read_text(encoding="utf-8")

    monkeypatch.setattr(nlu_knowledge, "CHECK_EVERY_S", 3600.0)  # the process trusts its last look…
    settings.knowledge_file.write_text(folded_in.replace(NEW_HOURS, "信息部门刚改过的答复。"), encoding="utf-8")
    r = await boss.post("/knowledge/clear-folded")  # …but the action looks at the file now
    assert r.json() == {"cleared": 0, "ids": []}

    settings.knowledge_file.write_text(folded_in + "\n- id: broken\n  question: 怎么办？\n", encoding="utf-8")
    r = await boss.post("/knowledge/clear-folded")  # a file that cannot be read tells nothing: refused
    assert r.status_code == 409 and "知识库文件现在无法使用" in r.json()["detail"] and "answer" in r.json()["detail"]
    listed = (await boss.get("/knowledge/entries")).json()  # the tab says why the file is not used
    assert "第14条" in listed["file_error"] and "answer" in listed["file_error"] and listed["editable"]
    settings.knowledge_file.unlink()
    r = await boss.post("/knowledge/clear-folded")
    assert r.status_code == 409 and "无法读取" in r.json()["detail"]

    settings.knowledge_file.write_text(folded_in, encoding="utf-8")
    assert (await boss.post("/knowledge/clear-folded")).json() == {"cleared": 1, "ids": ["service-hours"]}
    actions = [a["detail"]["count"] for a in (await boss.get("/audit", params={"action": "knowledge.clear_folded"})).json()["entries"]]
    assert actions == [1, 0]  # newest first; the refusals changed nothing and are not logged


async def test_the_supervisor_view_names_entries_switched_off_or_deleted(
    app: Any, settings: Settings, console_login: Any
) -> None:
    """知识库答复 counts answers by entry id: an entry since switched off or deleted (in the console
    or from the file) is still named by its question, and a label says what became of it."""
    boss = await console_login("li", "supervisor")
    assert (await boss.put("/knowledge/entries/housing-fund?new=true", FUND)).status_code == 200
    assert (await delete(boss, "housing-fund")).json()["outcome"] == "removed"
    assert (await delete(boss, "privacy")).json()["outcome"] == "disabled"
    assert settings.knowledge_file is not None  # IT deletes an entry from the file
    settings.knowledge_file.write_text(
        knowledge.to_yaml([e for e in read(SHIPPED)[0] if e.id != "withdraw"]), encoding="utf-8")
    source = app.state.runtime.knowledge
    deadline = time.monotonic() + 10
    while "withdraw" in [e.id for e in source.current().entries]:
        assert time.monotonic() < deadline, "the file's change was never noticed"
        await asyncio.sleep(0.1)

    day = keys.knowledge_day(datetime.now(timezone(timedelta(hours=8))).strftime("%Y%m%d"))
    counts = {"service-hours": 5, "privacy": 4, "housing-fund": 3, "withdraw": 2, "retired-entry": 1}
    await app.state.console.redis.hset(day, mapping={f"{i}|answered": n for i, n in counts.items()})
    use = (await boss.get("/stats")).json()["knowledge"]
    assert use["enabled"] and use["totals"]["answered"] == 15
    assert [(r["id"], r["question"], r["state"], r["answered"]) for r in use["entries"]] == [
        ("service-hours", shipped_entry("service-hours").question, "active", 5),
        ("privacy", shipped_entry("privacy").question, "disabled", 4),  # the file's
        ("housing-fund", FUND["question"], "deleted", 3),  # deleted in the console: the last known
        ("withdraw", shipped_entry("withdraw").question, "deleted", 2),  # deleted from the file
        ("retired-entry", "（已删除的条目 retired-entry）", "unknown", 1),  # nothing known any more
    ]


def test_merge_rules() -> None:
    def entry(i: str, answer: str = "答复。") -> Entry:
        return Entry(id=i, question=f"{i}怎么办理？", answer=answer)

    base = [entry("a"), entry("b"), entry("c")]
    edits = {
        "b": Edit(entry("b", "改过的。"), "li", 3.0),  # replaces in place
        "c": Edit(None, "li", 1.0),  # 停用: listed last
        "z": Edit(entry("z"), "li", 2.0),  # added: after the file's, oldest first
        "y": Edit(entry("y"), "li", 1.0),
        "gone": Edit(None, "li", 1.0),  # a tombstone of an id the file no longer has: nothing
    }
    rows = merge(base, edits)
    assert [(r.entry.id, r.origin, r.folded) for r in rows] == [
        ("a", "file", False), ("b", "edited", False), ("y", "console", False), ("z", "console", False),
        ("c", "disabled", False),
        ("gone", "disabled", True),  # a tombstone of an id the file no longer has: folded, listed last
    ]
    assert rows[1].entry.answer == "改过的。" and rows[4].entry.answer == "答复。"
    assert rows[5].entry.question == "（已删除的条目 gone）"  # nothing known of it
    assert merge(base, edits, questions={"gone": "以前的问题？"})[5].entry.question == "以前的问题？"
    assert effective(rows) == [rows[i].entry for i in range(4)]  # neither 停用 is answered
    # an edit equal to the file's entry (IT folded the export in) is folded; the date does not count
    same = {"a": Edit(entry("a").model_copy(update={"updated": date(2026, 11, 1)}), "li", 1.0)}
    assert [(r.origin, r.folded) for r in merge(base, same)][0] == ("edited", True)
    # the file could not be read: nothing is known to be in it, so nothing is folded
    unread = merge([], edits, file_known=False)
    assert [(r.entry.id, r.origin, r.folded) for r in unread] == [
        ("y", "console", False), ("z", "console", False), ("b", "console", False)
    ]


@pytest.fixture
async def sources(settings: Settings, own_redis: RedisProcess) -> AsyncIterator[tuple[KnowledgeSource, KnowledgeSource]]:
    """Two processes' sources (one edits, the other reads) on a Redis the test stops and starts."""
    import redis.asyncio as aioredis

    clients = [aioredis.from_url(own_redis.url, decode_responses=True, socket_timeout=2, socket_connect_timeout=1)
               for _ in range(2)]
    pair = (KnowledgeSource(settings, interval_s=0.2), KnowledgeSource(settings, interval_s=0.2))
    for source, client in zip(pair, clients, strict=True):
        await source.start(client)
    yield pair
    for source in pair:
        await source.stop()
    for client in clients:
        await client.aclose()


async def wait_for_answer(source: KnowledgeSource, answer: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        kb = source.current()
        hit = kb.answer(HOURS_ASKED) if kb is not None else None
        if hit is not None and hit.entry.answer == answer:
            return
        assert time.monotonic() < deadline, f"still {hit and hit.entry.answer!r}"
        await asyncio.sleep(0.05)


async def test_entries_are_ranked_by_how_useful_citizens_found_them(
    sources: tuple[KnowledgeSource, KnowledgeSource], monkeypatch: pytest.MonkeyPatch
) -> None:
    """常见问题's order: answered and not said unsolved, over the last 30 Beijing days; ranked in a
    process that asks for it (its bot shows the menu), from the next refresh, then every RANK_S."""
    source, other = sources
    assert source.popular() == ()  # not ranked before it was asked: the file's order meanwhile

    def day(back: int) -> str:
        return keys.knowledge_day((datetime.now(timezone(timedelta(hours=8))) - timedelta(days=back)).strftime("%Y%m%d"))

    today, long_ago = day(0), day(knowledge.USAGE_DAYS)
    await source.redis.hset(today, mapping={"service-hours|answered": 3, "service-hours|unsolved": 3,
                                            "social-card|answered": 2, "social-card|solved": 1,
                                            "hukou|answered": 5, "hukou|unsolved": 1})
    await source.redis.hset(long_ago, "old-news|answered", 50)  # outside the 30 days
    await source.refresh()
    assert source.popular() == ("hukou", "social-card")  # 4, 1; service-hours helped nobody
    await source.redis.hset(today, "social-card|answered", 9)
    await source.refresh()
    assert source.popular() == ("hukou", "social-card")  # ranked again only every RANK_S
    monkeypatch.setattr(knowledge, "RANK_S", 0.0)
    await source.refresh()
    assert source.popular() == ("social-card", "hukou")  # 8, 4
    await other.refresh()
    assert other._ranked_at is None  # never asked (a web process): never read the counts


async def test_redis_briefly_down_keeps_the_last_base(
    sources: tuple[KnowledgeSource, KnowledgeSource], own_redis: RedisProcess
) -> None:
    editor, reader = sources
    edited = Entry.model_validate({"id": "service-hours", **hours_entry()})
    await editor.edit(edited, "li")
    await wait_for_answer(reader, NEW_HOURS)

    own_redis.stop()
    await asyncio.sleep(1.0)  # several refreshes fail meanwhile
    await wait_for_answer(reader, NEW_HOURS, timeout=0)  # the last base, still answering
    assert reader._task is not None and not reader._task.done()  # the loop carries on
    with pytest.raises(ServiceUnavailable):
        await editor.edit(edited.model_copy(update={"answer": "不会保存。"}), "li")

    own_redis.start()  # the same folder: the AOF brings the edits back
    await editor.edit(edited.model_copy(update={"answer": "恢复之后的答复。"}), "li")
    await wait_for_answer(reader, "恢复之后的答复。")

    own_redis.stop()  # stopping does not wait on an unreachable Redis for long
    started = time.monotonic()
    await reader.stop()
    assert time.monotonic() - started < knowledge.STOP_GRACE_S + 1 and reader._task is None
