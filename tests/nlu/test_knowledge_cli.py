"""`hotline knowledge check` and `hotline knowledge ask`: reports, the last-line JSON, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from nlu import knowledge_cli
from nlu.knowledge_cli import app

runner = CliRunner()
SHIPPED = Path(__file__).resolve().parents[2] / "config" / "knowledge.yml"
ENTRY = {
    "id": "social-card",
    "question": "社保卡丢了怎么补办？",
    "also": ["社保卡丢失怎么办", "社保卡掉了去哪里补"],
    "answer": "请先挂失，再到社保卡服务网点补办。",
    "source": "市人社局",
    "updated": "2026-11-01",
}


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def _write(path: Path, entries: object) -> Path:
    path.write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """HOTLINE_KNOWLEDGE_FILE pointing at a file of one entry (threshold 0.5)."""
    path = _write(tmp_path / "city.yml", [ENTRY])
    monkeypatch.setattr(
        knowledge_cli, "_settings", lambda: SimpleNamespace(knowledge_file=path, knowledge_threshold=0.5)
    )
    return path


def test_check_the_shipped_file() -> None:
    r = runner.invoke(app, ["check", str(SHIPPED)])
    assert r.exit_code == 0, r.output
    res = _last_json(r.output)
    assert res["file"] == str(SHIPPED) and res["entries"] == 13 and res["errors"] == []
    assert all("已超过一年" in w for w in res["warnings"])  # only once the answers are a year old
    assert "13 entries, 0 errors" in r.output and "OK" in r.output


def test_check_the_configured_file_by_default(configured: Path) -> None:
    r = runner.invoke(app, ["check"])
    assert r.exit_code == 0, r.output
    assert _last_json(r.output)["file"] == str(configured) and _last_json(r.output)["entries"] == 1


def test_check_names_each_bad_entry_and_exits_1(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "bad.yml",
        [
            ENTRY,
            {**ENTRY, "question": "社保卡怎么补办", "also": ["社保卡丢失怎么办"]},  # same id, same 相似问
            {**ENTRY, "id": "empty", "question": "公积金怎么提取", "also": ["如何提取公积金"], "answer": ""},
            {
                **ENTRY,
                "id": "long",
                "question": "医保怎么报销",
                "also": ["医保报销流程"],
                "answer": "很长" * 600,
            },
        ],
    )
    r = runner.invoke(app, ["check", str(path)])
    assert r.exit_code == 1, r.output
    res = _last_json(r.output)
    assert res["entries"] == 2  # the two that validate on their own
    errors = "\n".join(res["errors"])
    assert "第2条（第9行，id: social-card）：id 与第1条（第1行，id: social-card）重复" in errors
    assert "“社保卡丢失怎么办”与 social-card 的“社保卡丢失怎么办”相同" in errors
    assert "第3条（第16行，id: empty）：answer：答复不能为空" in errors
    assert "第4条（第23行，id: long）：answer：答复有1200个字，超过1000字的上限" in errors
    assert [re.findall(r"第(\d)条", e)[0] for e in res["errors"]] == ["2", "2", "3", "4"]  # in file order
    assert "not usable" in r.output and "错误" in r.output


def test_check_warns_without_failing(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "warn.yml",
        [
            {**ENTRY, "also": [], "updated": "2020-01-01"},
            {
                **ENTRY,
                "id": "social-card-2",
                "question": "社保卡丢失了怎么补办呢",
                "also": ["社保卡补办流程"],
            },
        ],
    )
    r = runner.invoke(app, ["check", str(path)])
    assert r.exit_code == 0, r.output
    warnings = "\n".join(_last_json(r.output)["warnings"])
    assert "没有相似问" in warnings and "2020-01-01" in warnings
    assert "social-card：问法“社保卡丢了怎么补办？”也很像 social-card-2" in warnings
    assert "提醒" in r.output


def test_check_when_the_knowledge_base_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        knowledge_cli, "_settings", lambda: SimpleNamespace(knowledge_file=None, knowledge_threshold=0.5)
    )
    r = runner.invoke(app, ["check"])
    assert r.exit_code == 2 and "turned off" in r.output


def test_ask_lists_hits_and_says_the_bot_answers(configured: Path) -> None:
    r = runner.invoke(app, ["ask", "请问社保卡掉了怎么补办呢"])
    assert r.exit_code == 0, r.output
    res = _last_json(r.output)
    assert res["answer"] == "social-card" and res["reason"] == "answered" and res["threshold"] == 0.5
    assert res["hits"][0]["id"] == "social-card" and 0.5 <= res["hits"][0]["score"] <= 1
    assert "bot: answers with social-card" in r.output and str(ENTRY["answer"]) in r.output


def test_ask_a_complaint_gets_no_answer(configured: Path) -> None:
    r = runner.invoke(app, ["ask", "我的社保卡丢了，窗口工作人员态度恶劣不给补办，要投诉"])
    assert r.exit_code == 0, r.output
    res = _last_json(r.output)
    assert res["answer"] is None and res["reason"] in ("below_threshold", "no_match")
    assert "bot: no answer" in r.output


def test_ask_with_another_file_and_threshold() -> None:
    r = runner.invoke(
        app, ["ask", "工单号忘了咋办", "--file", str(SHIPPED), "--threshold", "0.99", "--limit", "2"]
    )
    assert r.exit_code == 0, r.output
    res = _last_json(r.output)
    assert (
        res["threshold"] == 0.99 and len(res["hits"]) <= 2 and res["hits"][0]["id"] == "forgot-ticket-number"
    )
    assert (res["answer"] is None) == (res["hits"][0]["score"] < 0.99)


def test_ask_a_bad_file_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.yml", [{**ENTRY, "answer": ""}])
    r = runner.invoke(app, ["ask", "社保卡丢了怎么办", "--file", str(path)])
    assert r.exit_code == 2 and "答复不能为空" in r.output and "hotline knowledge check" in r.output


def test_registered_in_the_hotline_command() -> None:
    from gateway.cli import app as hotline

    r = runner.invoke(hotline, ["knowledge", "ask", "怎么转人工", "--file", str(SHIPPED)])
    assert r.exit_code == 0, r.output
    assert _last_json(r.output)["answer"] == "talk-to-person"
