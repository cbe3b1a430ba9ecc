"""Is the chain the rules (and the CRF) found the place of a problem, or only a mention?

"G7县退养政策", "A市宇冰燃气公司故意不退钱", "A7县电视台…" name a district, a city or an
organisation, but the message is about a policy, a company or a broadcaster: by the annotation
convention (docs/nlu.md) there is no location. A small logistic regression decides from a few
general features of the chain and its surroundings: which kinds of parts it has, whether it ends
in an organisation's suffix (公司/局/电视台 …) or a facility's (医院/学校 …), what kind of word
follows it (an organisation, a policy or a group of people, a physical problem), how the sentence
starts (a question, a self-introduction) and where the chain is; plus the chain's last one/two
characters and the one/two characters around it, hashed into 512 buckets.

Weights: ``nlu/model/location-filter.json`` (plain JSON, ~6 KB).
``python -m nlu.location_filter train [--data ../shared/data]`` fits them on (1) the chains found
in the annotated files of ``TRAIN_SETS`` (gold, fresh, dev2, fresh2, fresh3, test, fresh4, fresh5:
listed by name; never the held-out ``location_fresh6.jsonl``), label = keeping the chain scores better
than dropping it, and (2) the chains found in CLUENER's training sentences, labelled automatically:
inside an ``address``/``scene`` span = a place, inside only ``company``/``government``/
``organization`` spans = not. It prints the leave-one-file-out gain on each annotated file first.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

FILTER_PATH = Path(__file__).parent / "model" / "location-filter.json"
# listed by name, never globbed: location_fresh6.jsonl is the held-out test set (round 6)
TRAIN_SETS = (
    "location_gold.jsonl",
    "location_fresh.jsonl",
    "location_dev2.jsonl",
    "location_fresh2.jsonl",
    "location_fresh3.jsonl",
    "location_test.jsonl",
    "location_fresh4.jsonl",
    "location_fresh5.jsonl",
)
# an annotated row counts as this many CLUENER rows (round 4, leave-one-file-out char-F1 over the
# six files, mean: 1 → 0.849, 3 → 0.855, 5 → 0.859, 10 → 0.854, 20 → 0.852; l2 1–10 changes little;
# round 5, seven files: 3 → 0.854, 5 → 0.856, 8 → 0.857, within noise, so 5 was kept;
# round 6, eight files: 3 → 0.852, 5 → 0.853, 8 → 0.852)
ANNOTATED_WEIGHT = 5


class _PartLike(Protocol):
    kind: str
    start: int
    end: int
    text: str


_ADMIN = {"province", "city", "district", "town"}
# what an organisation's name ends in (it is not where a problem is, unless a facility)
_ORG_END = re.compile(r"(?:公司|集团|局|委|委员会|政府|电视台|银行|协会|部门|网|法院|检察院|[民刑]\w?庭|科室|派出所|工商所|管委会)$")
_FACILITY_END = re.compile(
    r"(?:医院|卫生院|学校|中学|小学|幼儿园|大学|学院|驾校|车站|火车站|地铁站|公园|广场|市场|超市|酒店|饭店)$"
)
_ORG_AFTER = re.compile(
    r"^(?:人民政府|政府|[^，。]{0,4}(?:局|委|办|部门|公司|集团|电视台|法院|检察院|公安|派出所|银行|协会|商会|基金会|联合会|"
    r"合作社|联社|交警|大队|工商|时报|日报|报道)|立案|[^，。]{0,8}有限公司|[\u4e00-\u9fff]{1,2}某)"
)
_POLICY_AFTER = re.compile(
    r"^[^，。！？]{0,6}(?:政策|户口|户籍|居民|人员|员工|职工|学生|小孩|孩子|入学|招生|录取|社保|医保|公积金|补贴|补助|退养|"
    r"养老|待遇|资格|编制|考试|教师|老师|工资|购房|限购|房价|新政|标准|规定|文件|制度|办理|手续|清单|名单)"
)
_PLACE_AFTER = re.compile(
    r"^[^，。！？]{0,8}(?:噪音|扰民|违建|违章|积水|漏水|路灯|拥堵|堵车|施工|垃圾|油烟|污染|业主|住户|村民|附近|周边|门口|对面|"
    r"楼下|旁边|道路|马路|停车|红绿灯|安全隐患|破损|臭|排放|消防|电梯|物业|拆迁|征收|占道|违法建设)"
)
_QUESTION_START = re.compile(r"^(?:[^，。]{0,6})(?:咨询|请问|想咨询|询问|问一下|关于)")
_SELF_START = re.compile(r"(?:我是|我们是|本人|家住|我家|住在|我在|我们)")
_COMPLAINT_BEFORE = re.compile(r"(?:投诉|举报|反映|控告)$")
_SUFFIX_PLACE = re.compile(r"(?:小区|花园|社区|家园|村|组|路|街|大道|栋|楼|号|单元|苑|城|府|湾|庭)$")

FEATURES = (
    "bias",
    "admin_only",
    "city_or_province_only",
    "has_road",
    "has_community",
    "has_landmark",
    "has_detail",
    "n_parts",
    "ends_org",
    "ends_facility",
    "ends_place_suffix",
    "org_after",
    "policy_after",
    "place_after",
    "question_start",
    "self_start",
    "at_start",
    "long_span",
    "one_admin",
    "complaint_before",
)


BUCKETS = 512


def lexical(text: str, chain: Sequence[_PartLike]) -> list[int]:
    """Hashed indexes (offset by len(FEATURES)) of the chain's last characters and its neighbours."""
    a, b = chain[0].start, chain[-1].end
    last = chain[-1].text
    keys = (
        "l1=" + last[-1:],
        "l2=" + last[-2:],
        "n1=" + text[b : b + 1],
        "n2=" + text[b : b + 2],
        "p1=" + text[max(0, a - 1) : a],
        "p2=" + text[max(0, a - 2) : a],
    )
    return sorted({len(FEATURES) + zlib.crc32(k.encode("utf-8", "replace")) % BUCKETS for k in keys})


def vector(text: str, chain: Sequence[_PartLike]) -> list[float]:
    v = features(text, chain) + [0.0] * BUCKETS
    for i in lexical(text, chain):
        v[i] = 1.0
    return v


def features(text: str, chain: Sequence[_PartLike]) -> list[float]:
    kinds = {p.kind for p in chain}
    start, end = chain[0].start, chain[-1].end
    last = chain[-1].text
    after = text[end : end + 14]
    head = text[:start]
    admin_only = kinds <= _ADMIN
    return [
        1.0,
        float(admin_only),
        float(kinds <= {"province", "city"}),
        float("road" in kinds),
        float("community" in kinds),
        float("landmark" in kinds),
        float("detail" in kinds),
        min(len(chain), 5) / 5.0,
        float(bool(_ORG_END.search(last))),
        float(bool(_FACILITY_END.search(last))),
        float(bool(_SUFFIX_PLACE.search(last))),
        float(bool(_ORG_AFTER.match(after))),
        float(bool(_POLICY_AFTER.match(after))),
        float(bool(_PLACE_AFTER.match(after))),
        float(bool(_QUESTION_START.match(text[: start + 1]))),
        float(bool(_SELF_START.search(head[-8:]))),
        float(start <= 4),
        float(end - start >= 8),
        float(len(chain) == 1 and chain[0].kind in _ADMIN),
        float(bool(_COMPLAINT_BEFORE.search(head[-4:]))),
    ]


class LocationFilter:
    def __init__(self, weights: Sequence[float], threshold: float = 0.5):
        if len(weights) != len(FEATURES) + BUCKETS:
            raise ValueError("location filter: wrong number of weights, retrain it")
        self.w = list(weights)
        self.threshold = threshold

    @classmethod
    def load(cls, path: Path = FILTER_PATH) -> LocationFilter:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if list(data["features"]) != list(FEATURES):
            raise ValueError("location filter: feature list changed, retrain it")
        return cls(data["weights"], float(data.get("threshold", 0.5)))

    def prob(self, text: str, chain: Sequence[_PartLike]) -> float:
        z = sum(w * x for w, x in zip(self.w, features(text, chain), strict=False))
        z += sum(self.w[i] for i in lexical(text, chain))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def keep(self, text: str, chain: Sequence[_PartLike]) -> bool:
        return not chain or self.prob(text, chain) >= self.threshold


# --------------------------------------------------------------------------- training


def fit(
    xs: Sequence[Sequence[float]], ys: Sequence[int], l2: float = 3.0, epochs: int = 300, lr: float = 0.5
) -> list[float]:
    """L2-regularised logistic regression by full-batch gradient descent (deterministic)."""
    import numpy as np

    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    w = np.zeros(x.shape[1])
    for _ in range(epochs):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        reg = l2 * w / len(y)
        reg[0] = 0.0
        w -= lr * (x.T @ (p - y) / len(y) + reg)
    return [float(v) for v in w]


def _extractor() -> Any:
    from .location import GAZETTEER_PATH, LocationExtractor, load_gazetteer

    gaz = load_gazetteer(GAZETTEER_PATH)
    return LocationExtractor(gaz, location_filter=None)


def samples(files: Sequence[Path]) -> list[tuple[list[float], int, float, float]]:
    """(vector, label, char-F1 if kept, char-F1 if dropped) for every annotated row with a chain."""
    from .evaluate import char_f1

    ex = _extractor()
    out = []
    for f in files:
        for line in open(f, encoding="utf-8"):
            if not line.strip():
                continue
            r = json.loads(line)
            text, gold = r["text"], r.get("location") or ""
            chain = ex.chain(text)
            if not chain:
                continue
            pred = text[chain[0].start : chain[-1].end]
            keep, drop = char_f1(pred, gold), char_f1("", gold)
            if keep == drop:
                continue  # the wrong place found: neither decision helps
            out.append((vector(text, chain), int(keep > drop), keep, drop))
    return out


def cluener_samples(path: Path) -> list[tuple[list[float], int]]:
    """Chains found in CLUENER sentences: a place if they overlap an address/scene span, not one
    if they overlap only organisation spans; other chains are left out."""
    import csv

    if not path.exists():
        return []
    ex = _extractor()
    out = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for r in csv.DictReader(fh):
            text = r["text"]
            chain = ex.chain(text)
            if not chain:
                continue
            a, b = chain[0].start, chain[-1].end
            over = [s for s in json.loads(r["spans"]) if s["start"] < b and a < s["end"]]
            # CLUENER calls schools, hospitals, parks … organisations; by the convention they are places
            if any(s["label"] in ("address", "scene") or _FACILITY_END.search(s["span"]) for s in over):
                out.append((vector(text, chain), 1))
            elif over and all(s["label"] in ("company", "government", "organization") for s in over):
                out.append((vector(text, chain), 0))
    return out


def cross_validate(
    by_file: dict[str, list[tuple[list[float], int, float, float]]],
    rows: dict[str, int],
    extra: list[tuple[list[float], int]],
    l2: float,
) -> dict[str, Any]:
    """Leave one annotated file out: fit on the other files (+ CLUENER), score the held-out file.
    Gain = char-F1 with the filter minus char-F1 keeping every chain, over all rows of that file."""
    report: dict[str, Any] = {}
    acc = n = 0
    for name, held in by_file.items():
        train = [d[:2] for f, ds in by_file.items() if f != name for d in ds] * ANNOTATED_WEIGHT + extra
        w = fit([d[0] for d in train], [d[1] for d in train], l2)
        gain = 0.0
        for x, y, keep, drop in held:
            kept = sum(wi * xi for wi, xi in zip(w, x, strict=True)) >= 0
            acc += kept == bool(y)
            n += 1
            gain += (keep if kept else drop) - keep
        report[name] = round(gain / max(1, rows[name]), 4)
    report["accuracy"] = round(acc / max(1, n), 3)
    return report


def main(argv: list[str] | None = None) -> None:
    from .location_sample import EVAL_DIR

    ap = argparse.ArgumentParser(prog="python -m nlu.location_filter")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="fit the filter on the annotated location sets and CLUENER")
    t.add_argument("--data", type=Path, default=Path("../shared/data"))
    t.add_argument("--out", type=Path, default=FILTER_PATH)
    t.add_argument("--l2", type=float, default=3.0)
    a = ap.parse_args(argv)
    by_file = {n: samples([EVAL_DIR / n]) for n in TRAIN_SETS}
    rows = {
        n: sum(1 for line in open(EVAL_DIR / n, encoding="utf-8") if line.strip()) for n in TRAIN_SETS
    }
    data = [d for ds in by_file.values() for d in ds]
    extra = cluener_samples(a.data / "cluener" / "train.csv")
    report = {
        "annotated": len(data),
        "negatives": sum(1 - d[1] for d in data),
        "cluener": len(extra),
        # leave-one-file-out char-F1 gain over keeping every chain, per file
        "cv_gain": cross_validate(by_file, rows, extra, a.l2),
    }
    print(json.dumps(report))
    train = [d[:2] for d in data] * ANNOTATED_WEIGHT + extra
    w = fit([d[0] for d in train], [d[1] for d in train], a.l2)
    a.out.write_text(
        json.dumps(
            {
                "features": list(FEATURES),
                "buckets": BUCKETS,
                "weights": [round(x, 4) for x in w],
                "threshold": 0.5,
            },
            separators=(",", ":"),
        )
        + "\n",
        encoding="utf-8",
    )
    print(" ".join(f"{n}={x:+.2f}" for n, x in zip(FEATURES, w, strict=False)))


if __name__ == "__main__":
    main()
