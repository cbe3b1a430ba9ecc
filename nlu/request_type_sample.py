"""Draw a fresh, reproducible sample of real messages for request-type and urgency annotation.

``python -m nlu.request_type_sample --seed 20261127 --n 400 --out FILE``

Rows of ``messages.csv`` that have a detail are de-duplicated on their whitespace-free detail (file
order); rows whose title is already in an existing request-type file (``nlu/data/eval/request_type_real*.jsonl``
and ``nlu/data/request_type_train*.jsonl`` by default) are left out, so a new set shares no message
with them. Each row keeps its title and the first 200 characters of its detail (whitespace collapsed,
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

from .dataset import write_jsonl
from .pii import mask_pii

DATA_DIR = Path(__file__).parent / "data"
_WS = re.compile(r"\s+")


def _clean(s: str) -> str:
    return _WS.sub(" ", s.replace("_x000D_", " ")).strip()


def default_exclude() -> list[Path]:
    return sorted(DATA_DIR.glob("eval/request_type_real*.jsonl")) + sorted(DATA_DIR.glob("request_type_train*.jsonl"))


def used_titles(exclude: list[Path]) -> set[str]:
    out: set[str] = set()
    for p in exclude:
        with open(p, encoding="utf-8") as fh:
            out |= {_WS.sub("", json.loads(line)["title"]) for line in fh if line.strip()}
    return out


def sample(messages: Path, exclude: list[Path], n: int, seed: int) -> list[dict[str, object]]:
    with open(messages, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    seen: set[str] = set()
    unique = []
    for r in rows:
        key = _WS.sub("", (r.get("留言详情") or "").replace("_x000D_", ""))
        if not key or key in seen:
            continue
        seen.add(key)
        unique.append(r)
    used = used_titles(exclude)
    free = [
        r
        for r in unique
        if _WS.sub("", mask_pii(_clean(r.get("留言主题") or ""))) not in used
        and _WS.sub("", _clean(r.get("留言主题") or "")) not in used
    ]
    print(f"{len(unique)} unique rows, {len(unique) - len(free)} left out (already in an existing set)")
    picked = random.Random(seed).sample(free, n)
    return [
        {
            "id": str(r.get("留言编号") or ""),
            "title": mask_pii(_clean(r.get("留言主题") or "")),
            "text": mask_pii(_clean(r.get("留言详情") or "")[:200]),
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
    a = ap.parse_args(argv)
    exclude = a.exclude if a.exclude is not None else default_exclude()
    exclude = [p for p in exclude if p.resolve() != a.out.resolve()]
    rows = sample(a.messages, exclude, a.n, a.seed)
    write_jsonl(a.out, rows)
    print(f"{len(rows)} messages -> {a.out}")


if __name__ == "__main__":
    main()
