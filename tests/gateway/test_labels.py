"""``hotline admin labels``: the tickets operators reviewed, as files ``hotline nlu evaluate`` reads."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.settings import get_settings
from gateway.cli import app
from ticket_client import Correction, LocalLedger, TicketDraft, migrate

PHONE = "13912345678"


@pytest.fixture
def reviewed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A ledger under HOTLINE_DATA_DIR with tickets an operator corrected, confirmed, or never opened."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    url = get_settings().effective_database_url

    async def fill() -> dict[str, str]:
        await migrate(url)
        ledger = LocalLedger(url)
        try:
            async def file(key: str, **fields: object) -> str:
                draft = TicketDraft.model_validate({"channel": "web", "conversation_key": f"web:{key}", **fields})
                return (await ledger.file(draft, key)).ticket_id

            noise = await file("noise", title="工地夜间施工噪音", category=["环境保护", "噪音污染"], request_type="投诉",
                               description=f"A3区联丰路工地每天夜里施工到两点，吵得睡不着，电话{PHONE}",
                               location={"text": "A3区联丰路", "parts": {"district": "A3区", "road": "联丰路"}})
            await ledger.correct(noise, Correction(by="op1", category=["城乡建设", "城市建设和市政管理"],
                                                   request_type="举报", urgent=False, location="A3区联丰路工地"))
            bus = await file("bus", title="公交线路咨询", category=["交通运输"], request_type="咨询",
                             description="请问去市中心医院坐几路公交车", location={"text": "市中心医院"})
            await ledger.correct(bus, Correction(by="op2"))
            await file("untouched", category=["教育文体"], request_type="建议", description="建议学校门口设减速带")
            bare = await file("bare", description="有个事想问问", request_type="咨询")
            await ledger.correct(bare, Correction(by="op1", urgent=True))
            # the place came in another turn of the chat, and the operator wrote it out in full
            lamp = await file("lamp", description="小区门口路灯坏了一个星期", location={"text": "米兰春天"})
            await ledger.correct(lamp, Correction(by="op2", reason="属地有误", location="A3区联丰路米兰春天小区"))
            return {"noise": noise, "bus": bus, "bare": bare, "lamp": lamp}
        finally:
            await ledger.close()

    tickets = asyncio.run(fill())
    yield tickets
    get_settings.cache_clear()


def test_reviewed_tickets_become_a_category_file_the_evaluation_reads(reviewed: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "reviewed.csv"
    result = CliRunner().invoke(app, ["admin", "labels", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 rows" in result.output and "confirmed 1, corrected 1" in result.output and "50.0%" in result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["ticket_id"], r["label"], r["nlu_label"], r["review"]) for r in rows] == [
        (reviewed["bus"], "交通运输", "交通运输", "confirmed"),
        (reviewed["noise"], "城乡建设", "环境保护", "corrected"),
    ]
    assert PHONE not in out.read_text(encoding="utf-8") and rows[1]["detail"].endswith("电话[电话]")

    evaluated = CliRunner().invoke(app, ["nlu", "evaluate", "--task", "category", "--data", str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    figures = json.loads(evaluated.output.strip().splitlines()[-1])
    assert figures["task"] == "category" and figures["n"] == 2


def test_reviewed_tickets_become_a_request_type_file(reviewed: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "reviewed.jsonl"
    result = CliRunner().invoke(app, ["admin", "labels", str(out), "--task", "request_type", "--days", "1"])
    assert result.exit_code == 0, result.output
    rows = {r["ticket_id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(rows) == set(reviewed.values()) - {reviewed["lamp"]}  # never opened, or with no type: not there
    noise, bare = rows[reviewed["noise"]], rows[reviewed["bare"]]
    assert (noise["request_type"], noise["nlu_request_type"], noise["review"]) == ("举报", "投诉", "corrected")
    assert (bare["urgent"], bare["nlu_urgent"], bare["review"]) == (True, False, "corrected")
    assert rows[reviewed["bus"]]["review"] == "confirmed"
    assert "confirmed 1, corrected 2" in result.output

    evaluated = CliRunner().invoke(app, ["nlu", "evaluate", "--task", "request_type", "--data", str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output.strip().splitlines()[-1])["n"] == 3


def test_reviewed_places_written_in_the_words_become_a_location_file(reviewed: dict[str, str], tmp_path: Path) -> None:
    """属地更正 and confirmed places: a label where the citizen wrote it (or none); the place the
    operator wrote out in full is no span of the words, and is left out and counted."""
    out = tmp_path / "places.jsonl"
    result = CliRunner().invoke(app, ["admin", "labels", str(out), "--task", "location"])
    assert result.exit_code == 0, result.output
    assert "3 rows" in result.output and "1 places left out" in result.output
    rows = {r["ticket_id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(rows) == {reviewed["noise"], reviewed["bus"], reviewed["bare"]}
    noise = rows[reviewed["noise"]]
    assert (noise["location"], noise["nlu_location"], noise["review"]) == ("A3区联丰路工地", "A3区联丰路", "corrected")
    assert noise["text"].endswith("电话[电话]")
    assert (rows[reviewed["bus"]]["location"], rows[reviewed["bus"]]["review"]) == ("市中心医院", "confirmed")
    assert rows[reviewed["bare"]]["location"] == ""  # no place, as the operator left it

    evaluated = CliRunner().invoke(app, ["nlu", "evaluate", "--task", "location", "--data", str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    figures = json.loads(evaluated.output.strip().splitlines()[-1])
    assert figures["task"] == "location" and figures["n"] == 3


def test_an_unknown_task_is_refused(reviewed: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["admin", "labels", str(tmp_path / "x"), "--task", "address"])
    assert result.exit_code == 2 and "unknown task" in result.output
    assert not (tmp_path / "x").exists()
