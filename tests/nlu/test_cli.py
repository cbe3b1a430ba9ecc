"""The `hotline nlu` sub-app: evaluate's last-line JSON, missing columns, parse, export, train."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nlu.cli import app

runner = CliRunner()
EVAL = Path(__file__).resolve().parents[2] / "nlu" / "data" / "eval"


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_evaluate_category_last_line_json(tmp_path: Path) -> None:
    f = tmp_path / "cat.csv"
    with open(f, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["title", "detail", "label"])
        w.writerow(["小区违章搭建", "A3区某小区一楼业主违章搭建，占用消防通道", "城乡建设"])
        w.writerow(["拖欠工资", "公司拖欠工资三个月，社保也不交", "劳动和社会保障"])
        w.writerow(["学校乱收费", "学校以资料费名义乱收费，每个学生三百元", "教育文体"])
    r = runner.invoke(app, ["evaluate", "--task", "category", "--data", str(f)])
    assert r.exit_code == 0, r.output
    res = _last_json(r.output)
    assert res["task"] == "category" and res["n"] == 3
    assert set(res) >= {"macro_f1", "accuracy", "per_class_f1", "p50_ms", "p99_ms"}
    assert res["accuracy"] == 1.0
    assert res["seen_in_training"] == 0  # written for this test: not in the artifact's training data


def test_evaluate_says_when_rows_were_trained_on() -> None:
    """The shipped request-type model learns every annotated set: evaluating on one of them is
    flagged, in the report and in the JSON; the written examples are not in its training data."""
    r = runner.invoke(
        app, ["evaluate", "--task", "request_type", "--data", str(EVAL / "request_type_real9.jsonl"), "--limit", "30"]
    )
    assert r.exit_code == 0, r.output
    assert _last_json(r.output)["seen_in_training"] == 30
    assert "30 of 30 rows were in this artifact's training data" in r.output
    r = runner.invoke(app, ["evaluate", "--task", "request_type", "--data", str(EVAL / "request_type.jsonl")])
    assert _last_json(r.output)["seen_in_training"] == 0 and "training data" not in r.output


def test_evaluate_location_and_request_type_on_gold() -> None:
    r = runner.invoke(app, ["evaluate", "--task", "location", "--data", str(EVAL / "location_gold.jsonl")])
    assert r.exit_code == 0, r.output
    res = _last_json(r.output)
    assert res["task"] == "location" and res["n"] >= 100 and set(res) == {"task", "n", "exact", "char_f1"}
    r = runner.invoke(app, ["evaluate", "--task", "request_type", "--data", str(EVAL / "request_type.jsonl")])
    assert r.exit_code == 0, r.output
    res = _last_json(r.output)
    assert res["accuracy"] >= 0.75 and res["urgent_recall"] >= 0.8


def test_evaluate_subject(tmp_path: Path) -> None:
    f = tmp_path / "subj.csv"
    with open(f, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["留言主题", "留言详情"])
        w.writerow(
            ["A3区联丰路路灯不亮", "尊敬的领导您好，A3区联丰路的路灯已经一个月不亮了，晚上出行很危险。"]
        )
    r = runner.invoke(app, ["evaluate", "--task", "subject", "--data", str(f)])
    assert r.exit_code == 0, r.output
    res = _last_json(r.output)
    assert res["task"] == "subject" and res["n"] == 1 and 0 < res["rouge_l"] <= 1


@pytest.mark.parametrize(
    ("task", "content", "missing"),
    [
        ("category", "title,text\n a,b\n", "detail, label"),
        ("subject", "留言主题\n路灯坏了\n", "留言详情"),
        ("location", '{"text": "A3区"}\n', "location"),
        ("request_type", '{"text": "x", "request_type": "投诉"}\n', "title, urgent"),
        ("intent", '{"text": "满意", "intent": "rate"}\n', "state"),
        ("intent", '{"state": "waiting", "text": "满意", "intent": "rate"}\n', "unknown state(s) waiting"),
    ],
)
def test_evaluate_missing_columns(tmp_path: Path, task: str, content: str, missing: str) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(content, encoding="utf-8")
    r = runner.invoke(app, ["evaluate", "--task", task, "--data", str(f)])
    assert r.exit_code != 0
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert missing in r.output
    assert "Traceback" not in r.output


def test_evaluate_intent_reads_each_turn_in_its_state(tmp_path: Path) -> None:
    """The same words mean different things where the conversation stands: 还行吧 answers the
    survey, 不是3栋 是5栋 corrects a draft."""
    rows = [
        {"state": "awaiting_rating", "text": "还行吧", "intent": "rate", "ticket_id": "", "rating": "基本满意"},
        {"state": "confirming", "text": "不是3栋 是5栋", "intent": "add_info", "ticket_id": "", "rating": ""},
        {"state": "filed", "text": "查询 12345 20261121 000056", "intent": "query_progress",
         "ticket_id": "12345 20261121 000056", "rating": ""},
    ]  # fmt: skip
    f = tmp_path / "turns.jsonl"
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    r = runner.invoke(app, ["evaluate", "--task", "intent", "--data", str(f)])
    assert r.exit_code == 0, r.output
    res = _last_json(r.output)
    assert res["task"] == "intent" and res["n"] == 3 and res["accuracy"] == 1.0
    assert res["ticket_id_accuracy"] == 1.0 and res["rating_accuracy"] == 1.0
    assert set(res["accuracy_by_state"]) == {"awaiting_rating", "confirming", "filed"}


def test_parse_pretty_json() -> None:
    r = runner.invoke(app, ["parse", "查询12345-20261127-000123"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["intent"]["name"] == "query_progress"


def test_parse_in_a_state() -> None:
    r = runner.invoke(app, ["parse", "还行吧", "--state", "awaiting_rating"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["intent"]["name"] == "rate" and out["entities"][0]["value"] == "基本满意"
    plain = json.loads(runner.invoke(app, ["parse", "还行吧"]).output)
    assert plain["intent"]["name"] != "rate" and not plain["entities"]  # no survey waits: not a rating
    r = runner.invoke(app, ["parse", "还行吧", "--state", "waiting"])
    assert r.exit_code == 2 and "unknown state" in r.output


def test_export_rasa(tmp_path: Path) -> None:
    import yaml

    r = runner.invoke(app, ["export-rasa", str(tmp_path / "rasa")])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((tmp_path / "rasa" / "config.yml").read_text(encoding="utf-8"))
    assert cfg["language"] == "zh" and cfg["pipeline"][0]["name"] == "JiebaTokenizer"
    nlu = yaml.safe_load((tmp_path / "rasa" / "data" / "nlu.yml").read_text(encoding="utf-8"))
    intents = {b["intent"] for b in nlu["nlu"] if "intent" in b}
    domain = yaml.safe_load((tmp_path / "rasa" / "domain.yml").read_text(encoding="utf-8"))
    assert intents == set(domain["intents"])
    assert "ticket_id" in domain["entities"]


def test_tiny_training_code_path(tmp_path: Path) -> None:
    """Trains on a few hundred rows (seconds) and parses with the result: the code path only."""
    from config.settings import Settings
    from nlu.builtin import BuiltinBackend, load_artifact

    data = Path(Settings().shared_data_dir)
    if not data.is_absolute():
        data = Path(__file__).resolve().parents[2] / data
    if not (data / "categories").exists():
        pytest.skip(f"shared data not found at {data}")
    out = tmp_path / "m.npz"
    r = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--limit",
            "300",
            "--heldout",
            str(tmp_path / "h.csv"),
        ],
    )
    assert r.exit_code == 0, r.output
    info = _last_json(r.output)
    assert info["n_examples"] == 300 and (tmp_path / "metrics.json").exists()
    b = BuiltinBackend(load_artifact(out))
    assert b.parse("小区门口的路灯坏了，晚上很黑").category.level1
