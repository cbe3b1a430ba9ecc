"""Loading the labelled category data from ``shared_data_dir`` with de-duplication.

The two labelled files overlap (README of the shared data): we key every row on its
whitespace-free text, and additionally on the normalised token string, so a message that
appears in both files (or twice in one) is counted once and can never straddle a split.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_WS = re.compile(r"\s+")


@dataclass
class Example:
    title: str
    detail: str
    label: str
    segmented: str = ""  # the contest team's segmentation (may be the only text we have)
    has_raw: bool = True
    key: str = ""
    group: int = -1  # near-duplicate cluster id (set by assign_groups)

    @property
    def raw(self) -> str:
        return (self.title + " " + self.detail).strip()


def squash(text: str) -> str:
    return _WS.sub("", text)


def _split_raw_text(raw_text: str) -> tuple[str, str]:
    """``raw_text`` of the segmented file is 'title \\n\\t\\t... detail' for most rows."""
    parts = re.split(r"\s*\n\s*", raw_text.strip(), maxsplit=1)
    if len(parts) == 2 and len(parts[0]) <= 60:
        return parts[0].strip(), parts[1].strip()
    return "", raw_text.strip()


def load_labelled(data_dir: Path) -> list[Example]:
    """All labelled examples, de-duplicated; conflicting labels resolved by majority (ties dropped)."""
    cat = Path(data_dir) / "categories"
    raw_rows: list[Example] = []
    with open(cat / "labelled_raw.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            raw_rows.append(Example(r["title"].strip(), r["detail"].strip(), r["label"].strip()))
    seg_rows: list[Example] = []
    with open(cat / "labelled_segmented.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rt = (r.get("raw_text") or "").strip()
            if rt:
                t, d = _split_raw_text(rt)
                seg_rows.append(Example(t, d, r["label"].strip(), r["text_segmented"].strip(), True))
            else:
                seg_rows.append(Example("", "", r["label"].strip(), r["text_segmented"].strip(), False))
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in raw_rows + seg_rows:
        ex.key = squash(ex.raw) if ex.has_raw else "seg:" + squash(ex.segmented)
        groups[ex.key].append(ex)
    out: list[Example] = []
    for _key, exs in groups.items():
        votes = Counter(e.label for e in exs).most_common()
        if len(votes) > 1 and votes[0][1] == votes[1][1]:
            continue  # conflicting labels, no majority: drop
        label = votes[0][0]
        best = next((e for e in exs if e.has_raw and e.title), None) or next(
            (e for e in exs if e.has_raw), exs[0]
        )
        seg = next((e.segmented for e in exs if e.segmented), "")
        out.append(Example(best.title, best.detail, label, seg, best.has_raw, best.key))
    return out


def assign_groups(examples: list[Example], texts: list[str], threshold: float = 0.8) -> None:
    """Cluster near-duplicates (cosine of char 3-gram TF-IDF over the normalised text >= threshold)
    so that a split keeps every cluster on one side."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(analyzer="char", ngram_range=(3, 3), sublinear_tf=True).fit_transform(
        [re.sub(r"\s+", "", t) for t in texts]
    )
    sim = (x @ x.T).tocoo()
    parent = list(range(len(examples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # only the pairs that join (the product holds nearly every pair: most messages share some
    # 3-gram), in the product's order, so the clusters and their ids are as a loop over all gave
    keep = (sim.row < sim.col) & (sim.data >= threshold)
    for i, j in zip(sim.row[keep].tolist(), sim.col[keep].tolist(), strict=True):
        parent[find(i)] = find(j)
    for i, ex in enumerate(examples):
        ex.group = find(i)


def split(
    examples: list[Example], test_frac: float = 0.2, seed: int = 13
) -> tuple[list[Example], list[Example]]:
    """Stratified held-out split. Test rows are drawn only from rows with raw text (what real
    messages look like at inference); segmented-only rows always train. Deterministic by hash."""
    groups: dict[int, list[Example]] = defaultdict(list)
    for i, ex in enumerate(examples):
        groups[ex.group if ex.group >= 0 else -1 - i].append(ex)
    by_label: dict[str, list[list[Example]]] = defaultdict(list)
    for members in groups.values():
        label = Counter(e.label for e in members).most_common(1)[0][0]
        by_label[label].append(members)
    train: list[Example] = []
    test: list[Example] = []
    rng = random.Random(seed)
    for _label, clusters in sorted(by_label.items()):
        clusters.sort(key=lambda c: min(hashlib.md5(e.key.encode()).hexdigest() for e in c))
        rng.shuffle(clusters)
        n_test = round(sum(len(c) for c in clusters) * test_frac)
        taken = 0
        for c in clusters:
            raw = [e for e in c if e.has_raw]
            if taken < n_test and raw:
                test.append(raw[0])  # one representative; the rest of the cluster is not used
                taken += 1
            else:
                train.extend(c)
    return train, test


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """An annotation set: one JSON object per line, Chinese as written."""
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
