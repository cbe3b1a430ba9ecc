"""Draw a fresh, reproducible sample of real messages for request-type and urgency annotation.

``python -m nlu.request_type_sample --seed 20261127 --n 400 --out FILE``

Rows of ``messages.csv`` (or of ``categories/labelled_raw.csv`` or ``categories/labelled_segmented.csv``,
``--messages``) that have a detail are de-duplicated on their whitespace-free detail (file order); rows whose title (or, without a title, text
start) is already in an existing request-type file (``nlu/data/eval/request_type_real*.jsonl``
and ``nlu/data/request_type_train*.jsonl`` by default) are left out, so a new set shares no message
with them (``--near 0.3`` also leaves out near-duplicates: needed for the segmented file, whose
rows lost stop words and punctuation). Each row keeps its title and the first 200 characters of its detail (whitespace collapsed,
``_x000D_`` removed), with phone and ID numbers masked (:func:`nlu.pii.mask_pii`). The
``request_type`` and ``urgent`` fields are written empty: annotate them by hand.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import write_jsonl
from .pii import mask_pii

DATA_DIR = Path(__file__).parent / "data"
_WS = re.compile(r"\s+")


def _clean(s: str) -> str:
    return _WS.sub(" ", s.replace("_x000D_", " ")).strip()


def default_exclude() -> list[Path]:
    return sorted(DATA_DIR.glob("eval/request_type_real*.jsonl")) + sorted(DATA_DIR.glob("request_type_train*.jsonl"))


def _key(text: str) -> str:
    """A message's identity across files: its first 40 characters without whitespace."""
    return _WS.sub("", text)[:40]


def read_sets(paths: list[Path]) -> list[dict[str, Any]]:
    """The rows of existing annotation sets (JSONL)."""
    rows: list[dict[str, Any]] = []
    for p in paths:
        with open(p, encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    return rows


def used_keys(known: list[dict[str, Any]]) -> set[str]:
    """Titles and text keys of rows already annotated (a row with no title is known by its text)."""
    out: set[str] = set()
    for row in known:
        out |= {_WS.sub("", row["title"]), _key(row["text"])} - {""}
    return out


def _field(r: dict[str, str], *names: str) -> str:
    return next((r[n] for n in names if r.get(n)), "")


def _detail(r: dict[str, str]) -> str:
    """The message text. A row of ``labelled_segmented.csv`` without its original wording keeps
    only the published segmentation (title and detail joined, stop words and punctuation
    removed): its words are joined again without spaces, so rules and models read it as Chinese
    is written."""
    if "text_segmented" in r and not r.get("raw_text", "").strip():
        return "".join(r["text_segmented"].split())
    return _clean(_field(r, "留言详情", "detail", "raw_text"))


def _row_text(r: dict[str, Any]) -> str:
    return _WS.sub("", (r.get("title") or "") + r["text"])[:200]


def near_duplicates(rows: list[dict[str, Any]], known: list[dict[str, Any]], threshold: float) -> set[int]:
    """Indices of ``rows`` whose character 3-gram TF-IDF cosine to a ``known`` row or to an
    earlier row reaches ``threshold``: the same message in another form (the segmented file lost
    its stop words and punctuation, so exact keys miss it) or the same writer's repeated post."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [_row_text(r) for r in known + rows]
    x = TfidfVectorizer(analyzer="char", ngram_range=(3, 3), sublinear_tf=True).fit_transform(texts)
    a, c = x[: len(known)], x[len(known) :]
    out = set(np.flatnonzero((c @ a.T).max(axis=1).toarray().ravel() >= threshold).tolist()) if known else set()
    sim = (c @ c.T).tocoo()
    out |= {int(j) for i, j, v in zip(sim.row, sim.col, sim.data, strict=True) if i < j and v >= threshold}
    return out


def sample(
    messages: Path, exclude: list[Path], n: int, seed: int, near: float | None = None
) -> list[dict[str, object]]:
    """``messages``: ``messages.csv`` (留言编号/留言主题/留言详情), a CSV with ``id``/``title``/``detail``
    (``categories/labelled_raw.csv``, where many titles are empty) or ``labelled_segmented.csv``
    (``row``/``text_segmented``/``raw_text``, no title)."""
    with open(messages, encoding="utf-8-sig", newline="") as fh:
        rows = [
            {
                "id": _field(r, "留言编号", "id", "row"),
                "title": _clean(_field(r, "留言主题", "title")),
                "text": _detail(r),
            }
            for r in csv.DictReader(fh)
        ]
    seen: set[str] = set()
    unique = []
    for r in rows:
        key = _WS.sub("", r["text"])
        if not key or key in seen:
            continue
        seen.add(key)
        unique.append(r)
    known = read_sets(exclude)
    used = used_keys(known)
    free = [
        r
        for r in unique
        if not (
            {_WS.sub("", mask_pii(r["title"])), _WS.sub("", r["title"])}
            if r["title"]
            else {_key(mask_pii(r["text"][:200]))}
        )
        & used
    ]
    print(f"{len(unique)} unique rows, {len(unique) - len(free)} left out (already in an existing set)")
    if near is not None:
        drop = near_duplicates(free, known, near)
        free = [r for i, r in enumerate(free) if i not in drop]
        print(f"{len(drop)} more left out (near-duplicates, cosine >= {near})")
    picked = random.Random(seed).sample(free, min(n, len(free)))
    return [
        {
            "id": r["id"],
            "title": mask_pii(r["title"]),
            "text": mask_pii(r["text"][:200]),
            "request_type": "",
            "urgent": None,
        }
        for r in picked
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--messages", type=Path, default=Path("../shared/data/messages.csv"))
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--exclude", type=Path, nargs="*", default=None, help="sets whose messages are left out")
    ap.add_argument(
        "--near",
        type=float,
        default=None,
        help="also leave out near-duplicates (char 3-gram cosine >= this, e.g. 0.3) of those sets and of each other",
    )
    a = ap.parse_args(argv)
    exclude = a.exclude if a.exclude is not None else default_exclude()
    exclude = [p for p in exclude if p.resolve() != a.out.resolve()]
    rows = sample(a.messages, exclude, a.n, a.seed, a.near)
    write_jsonl(a.out, rows)
    print(f"{len(rows)} messages -> {a.out}")


if __name__ == "__main__":
    main()
