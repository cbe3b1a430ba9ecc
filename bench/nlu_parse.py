"""How fast one whole ``parse`` is, and what the worker holds in memory with the model loaded.

    python bench/nlu_parse.py [--data FILE] [--passes 3] [--core 1]

Loads the builtin backend (the committed artifact unless HOTLINE_NLU_MODEL_PATH says otherwise),
then parses every message of FILE once per pass in one thread, pinned to one core, and prints per
pass: p50 / p99 latency, parses per second (wall clock) and per CPU-second (the process's CPU
time: steadier on a shared machine whose speed drifts), then the resident memory. FILE is the
held-out split ``data/nlu/category_heldout.csv`` that ``hotline nlu train`` writes (title, detail)
or, when it is not there, the 1,250 real messages of ``nlu/data/eval/request_type_real7.jsonl``
(title, text). The issue's targets: p50 <= 5 ms, p99 <= 20 ms, >= 200 parses/s, <= 400 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HELDOUT = ROOT / "data" / "nlu" / "category_heldout.csv"
FALLBACK = ROOT / "nlu" / "data" / "eval" / "request_type_real7.jsonl"


def messages(path: Path) -> list[tuple[str, str]]:
    """(title, body) of each message of a CSV (title, detail) or JSONL (title, text) file."""
    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return [(r.get("title") or "", r.get("detail") or "") for r in csv.DictReader(fh)]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(str(r.get("title") or ""), str(r.get("text") or "")) for r in rows]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=HELDOUT if HELDOUT.exists() else FALLBACK)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--core", type=int, default=1, help="CPU to pin to (-1: do not pin)")
    args = ap.parse_args(argv)
    if args.core >= 0 and hasattr(os, "sched_setaffinity"):
        cores = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {args.core if args.core in cores else min(cores)})

    from config.settings import Settings
    from nlu.builtin import BuiltinBackend

    t0 = time.perf_counter()
    backend = BuiltinBackend.from_settings(Settings())
    load_s = time.perf_counter() - t0
    msgs = messages(args.data)
    print(f"data: {args.data} ({len(msgs)} messages); model loaded in {load_s:.2f} s")
    for _ in range(min(50, len(msgs))):  # warm caches the way a running worker has them
        backend.parse(msgs[_][1], {"title": msgs[_][0]})
    for n in range(1, args.passes + 1):
        times = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for title, body in msgs:
            t = time.perf_counter()
            backend.parse(body, {"title": title})
            times.append((time.perf_counter() - t) * 1000)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(
            f"pass {n}: p50 {statistics.median(times):.2f} ms  p99 {p99:.2f} ms  "
            f"{len(msgs) / wall:.0f} parses/s  {len(msgs) / cpu:.0f} parses per CPU-second"
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"resident memory (peak): {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
