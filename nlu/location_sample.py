"""Draw a fresh, reproducible sample of message snippets for a location gold set.

``python -m nlu.location_sample --seed 20261127 --n 120 --out FILE``

Rows of ``messages.csv`` whose title or detail already contains a snippet of an existing
``nlu/data/eval/location_*.jsonl`` file (all of them by default) are left out, so the new set shares no message with them.
Each row gives one snippet: its title (留言主题) or, by a coin flip of the same seeded generator,
the first sentence of its detail (cut at 60 characters), with phone and ID numbers masked
(:func:`nlu.pii.mask_pii`). The ``location`` field is written empty: annotate it by hand.
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

EVAL_DIR = Path(__file__).parent / "data" / "eval"
_WS = re.compile(r"\s+")
_SENT_END = re.compile(r"[。！？!?]")


def _norm(s: str) -> str:
    return _WS.sub("", s)


def _first_sentence(detail: str, limit: int = 60) -> str:
    detail = detail.strip()
    m = _SENT_END.search(detail)
    s = detail[: m.end()] if m else detail
    return s[:limit]


def used_texts(exclude: list[Path]) -> list[str]:
    out = []
    for p in exclude:
        with open(p, encoding="utf-8") as fh:
            out += [_norm(json.loads(line)["text"]) for line in fh if line.strip()]
    # generic greetings ("尊敬的书记，您好！") would exclude hundreds of unrelated rows
    return [t for t in out if len(t) >= 12]


def sample(messages: Path, exclude: list[Path], n: int, seed: int) -> list[dict[str, str]]:
    with open(messages, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    used = used_texts(exclude)
    free = []
    for r in rows:
        hay = _norm(mask_pii(r.get("留言主题") or "")) + "\n" + _norm(mask_pii(r.get("留言详情") or ""))
        hay_raw = _norm(r.get("留言主题") or "") + "\n" + _norm(r.get("留言详情") or "")
        if any(u in hay or u in hay_raw for u in used):
            continue
        free.append(r)
    print(f"{len(rows)} rows, {len(rows) - len(free)} left out (they hold a snippet of an existing set)")
    rng = random.Random(seed)
    picked = rng.sample(free, n)
    out = []
    for r in picked:
        title = (r.get("留言主题") or "").strip()
        detail = (r.get("留言详情") or "").strip()
        use_title = rng.random() < 0.5
        text = title if (use_title and title) or not detail else _first_sentence(detail)
        out.append({"id": str(r.get("留言编号") or ""), "text": mask_pii(text), "location": ""})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--messages", type=Path, default=Path("../shared/data/messages.csv"))
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--exclude",
        type=Path,
        nargs="*",
        default=None,
        help="sets whose messages are left out (default: every nlu/data/eval/location_*.jsonl)",
    )
    a = ap.parse_args(argv)
    exclude = a.exclude if a.exclude is not None else sorted(EVAL_DIR.glob("location_*.jsonl"))
    exclude = [p for p in exclude if p.resolve() != a.out.resolve()]
    rows = sample(a.messages, exclude, a.n, a.seed)
    write_jsonl(a.out, rows)
    print(f"{len(rows)} snippets -> {a.out}")


if __name__ == "__main__":
    main()
