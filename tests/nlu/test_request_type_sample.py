"""Drawing annotation sets: no message twice, the segmented file read as written Chinese."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nlu.request_type_sample import main, sample

ANNOTATED = {
    "id": "1",
    "title": "A5区嘉华路旁露天垃圾池子臭味熏天",
    "text": "尊敬的胡书记：近两年A5区嘉华路与嘉兴路交叉路口西北角处有一处露天垃圾围子，占地20平米左右，"
    "污水横流，苍蝇成群，无专人值守管理。",
    "request_type": "投诉",
    "urgent": False,
}
# the same message as the published segmentation keeps it: stop words and punctuation gone
SAME_SEGMENTED = (
    "A5 区 嘉华 路旁 露天 垃圾 池子 臭味 熏天 尊敬 胡书记 近两年 A5 区 嘉华 路 嘉兴 路 交叉路口 西北角 处有 "
    "一处 露天 垃圾 围子 占地 20 平米 左右 污水 横流 苍蝇 成群 无 专人 值守 管理"
)
OTHER_SEGMENTED = "B市 小区 燃气 管道 漏气 尊敬 领导 楼道 里 闻到 很大 煤气味 物业 不管 请求 尽快 处理"
LIFT_SEGMENTED = "G市 滨湖 新天地 小区 电梯 突然 下坠 业主 被关 电梯 无法 运行 严重 威胁 业主 人身 安全"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    seg = tmp_path / "labelled_segmented.csv"
    with open(seg, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "text_segmented", "label", "raw_text"])
        w.writerow(["11", SAME_SEGMENTED, "环境保护", ""])
        w.writerow(["12", OTHER_SEGMENTED, "城乡建设", ""])
        w.writerow(["13", OTHER_SEGMENTED, "城乡建设", ""])  # the file repeats rows
        w.writerow(["14", LIFT_SEGMENTED, "城乡建设", ""])
    done = tmp_path / "request_type_real1.jsonl"
    done.write_text(json.dumps(ANNOTATED, ensure_ascii=False) + "\n", encoding="utf-8")
    return seg, done


def test_segmented_rows_are_joined_and_exact_repeats_dropped(files: tuple[Path, Path]) -> None:
    seg, done = files
    rows = sample(seg, [done], n=10, seed=1)
    texts = sorted(str(r["text"]) for r in rows)
    assert "B市小区燃气管道漏气尊敬领导楼道里闻到很大煤气味物业不管请求尽快处理" in texts
    assert len(texts) == 3 and all(" " not in t for t in texts)
    assert all(r["request_type"] == "" and r["urgent"] is None and r["title"] == "" for r in rows)


def test_near_duplicates_of_annotated_messages_are_left_out(files: tuple[Path, Path]) -> None:
    seg, done = files
    rows = sample(seg, [done], n=10, seed=1, near=0.3)
    assert sorted(str(r["id"]) for r in rows) == ["12", "14"]  # 11 is ANNOTATED without its stop words


def test_command_line_writes_the_set(files: tuple[Path, Path], tmp_path: Path) -> None:
    seg, done = files
    out = tmp_path / "real9.jsonl"
    main(["--messages", str(seg), "--seed", "1", "--n", "1", "--near", "0.3", "--exclude", str(done), "--out", str(out)])
    (row,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert row["id"] in {"12", "14"} and row["urgent"] is None
