"""Evaluation of each task on a file; every function returns the JSON-able result dict."""

from __future__ import annotations

import csv
import json
import re
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .dialogue_rules import same_ticket
from .subject import first_clause

REQUIRED = {
    "category": ["title", "detail", "label"],
    "location": ["text", "location"],
    "subject": ["留言主题", "留言详情"],
    "request_type": ["title", "text", "request_type", "urgent"],
    "intent": ["state", "text", "intent"],
}

# Where the conversation stood, as the context the gateway passes to ``parse`` (gateway/workers.py):
# the bot's step, whether a draft is open, whether the satisfaction survey waits for an answer.
STATE_CONTEXT: dict[str, dict[str, Any]] = {
    "idle": {"step": "idle", "drafting": False, "expecting": ""},
    "filed": {"step": "idle", "drafting": False, "expecting": ""},
    "awaiting_location": {"step": "awaiting_location", "drafting": True, "expecting": ""},
    "confirming": {"step": "confirming", "drafting": True, "expecting": ""},
    "awaiting_rating": {"step": "idle", "drafting": False, "expecting": "rating"},
}


class BadEvalFile(ValueError):
    pass


def fingerprint(*parts: str) -> int:
    """crc32 of the whitespace-free text: how an artifact remembers which messages it learned
    (a few bytes each, no text), so an evaluation can say when its rows are not held-out."""
    return zlib.crc32(re.sub(r"\s+", "", "".join(parts)).encode())


def row_fingerprint(task: str, row: dict[str, Any]) -> int:
    body = row.get("detail") if task == "category" else row.get("text")
    return fingerprint(str(row.get("title") or ""), str(body or ""))


def seen_in_training(backend: Any, task: str, rows: list[dict[str, Any]]) -> int | None:
    """How many of ``rows`` the backend's artifact was trained on (None: it does not record it)."""
    seen = (getattr(backend, "artifact", None) or {}).get("seen", {}).get(task)
    if seen is None:
        return None
    return int(np.isin(np.array([row_fingerprint(task, r) for r in rows], dtype=np.uint32), seen).sum())


def read_rows(task: str, path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise BadEvalFile(f"file not found: {path}")
    rows: list[dict[str, Any]] = []
    cols: set[str] = set()
    if task in ("location", "request_type", "intent"):
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BadEvalFile(f"line {i} is not JSON: {exc.msg}") from None
                if not isinstance(obj, dict):
                    raise BadEvalFile(f"line {i} is not a JSON object")
                rows.append(obj)
        cols = set.intersection(*(set(r) for r in rows)) if rows else set()
    else:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or [])
            rows = [dict(r) for r in reader]
    missing = [c for c in REQUIRED[task] if c not in cols]
    if missing:
        raise BadEvalFile(f"{path.name}: missing column(s) for task {task}: {', '.join(missing)}")
    if task == "intent" and (unknown := sorted({str(r["state"]) for r in rows} - set(STATE_CONTEXT))):
        raise BadEvalFile(
            f"{path.name}: unknown state(s) {', '.join(unknown)}; use one of {', '.join(STATE_CONTEXT)}"
        )
    return rows


def _f1s(gold: list[str], pred: list[str]) -> tuple[float, dict[str, float]]:
    labels = sorted(set(gold) | {p for p in pred if p})
    per = {}
    for c in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        per[c] = round(2 * prec * rec / (prec + rec), 4) if prec + rec else 0.0
    return (round(float(np.mean(list(per.values()))), 4) if per else 0.0), per


def eval_category(backend: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    gold, pred, times = [], [], []
    for r in rows:
        t = time.perf_counter()
        p = backend.parse(str(r.get("detail") or ""), {"title": str(r.get("title") or "")})
        times.append((time.perf_counter() - t) * 1000)
        gold.append(str(r["label"]))
        pred.append(p.category.level1)
    macro, per = _f1s(gold, pred)
    acc = float(np.mean([g == p for g, p in zip(gold, pred, strict=True)])) if gold else 0.0
    return {
        "task": "category",
        "n": len(rows),
        "macro_f1": macro,
        "accuracy": round(acc, 4),
        "per_class_f1": per,
        "p50_ms": round(float(np.percentile(times, 50)), 3) if times else 0.0,
        "p99_ms": round(float(np.percentile(times, 99)), 3) if times else 0.0,
    }


def char_f1(pred: str, gold: str) -> float:
    if not pred and not gold:
        return 1.0
    if not pred or not gold:
        return 0.0
    from collections import Counter

    common = sum((Counter(pred) & Counter(gold)).values())
    if not common:
        return 0.0
    p, r = common / len(pred), common / len(gold)
    return 2 * p * r / (p + r)


def eval_location(backend: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    exact, f1 = [], []
    for r in rows:
        gold = str(r.get("location") or "")
        pred = (
            backend.locator.extract(str(r.get("text") or "")).text
            if hasattr(backend, "locator")
            else (backend.parse(str(r.get("text") or "")).location.text)
        )
        exact.append(pred == gold)
        f1.append(char_f1(pred, gold))
    return {
        "task": "location",
        "n": len(rows),
        "exact": round(float(np.mean(exact)), 4) if rows else 0.0,
        "char_f1": round(float(np.mean(f1)), 4) if rows else 0.0,
    }


def lcs(a: str, b: str) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for ch in a:
        cur = [0]
        for j, cb in enumerate(b):
            cur.append(prev[j] + 1 if ch == cb else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(pred: str, ref: str) -> float:
    n = lcs(pred, ref)
    if not n:
        return 0.0
    p, r = n / len(pred), n / len(ref)
    return 2 * p * r / (p + r)


def eval_subject(backend: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    ours, base = [], []
    for r in rows:
        ref = str(r.get("留言主题") or "").strip()
        detail = str(r.get("留言详情") or "").strip()
        if not ref or not detail:
            continue
        subj = backend.parse(detail).subject
        ours.append(rouge_l(subj, ref))
        base.append(rouge_l(first_clause(detail), ref))
    return {
        "task": "subject",
        "n": len(ours),
        "rouge_l": round(float(np.mean(ours)), 4) if ours else 0.0,
        "baseline_first_clause_rouge_l": round(float(np.mean(base)), 4) if base else 0.0,
    }


def eval_request_type(backend: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    gold, pred, ug, up = [], [], [], []
    for r in rows:
        p = backend.parse(str(r.get("text") or ""), {"title": str(r.get("title") or "")})
        gold.append(str(r["request_type"]))
        pred.append(p.request_type)
        ug.append(bool(r["urgent"]))
        up.append(bool(p.urgency))
    macro, _ = _f1s(gold, pred)
    tp = sum(1 for g, p in zip(ug, up, strict=True) if g and p)
    return {
        "task": "request_type",
        "n": len(rows),
        "accuracy": round(float(np.mean([g == p for g, p in zip(gold, pred, strict=True)])), 4)
        if rows
        else 0.0,
        "macro_f1": macro,
        "urgent_precision": round(tp / sum(up), 4) if sum(up) else 0.0,
        "urgent_recall": round(tp / sum(ug), 4) if sum(ug) else 0.0,
    }


def eval_intent(backend: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Dialogue intents of chat turns, each parsed with the context of the bot's state before it;
    the ticket number and the rating are scored where the gold row has one."""
    gold, pred, states, tid, rating = [], [], [], [], []
    for r in rows:
        p = backend.parse(str(r.get("text") or ""), dict(STATE_CONTEXT[str(r["state"])]))
        gold.append(str(r["intent"]))
        pred.append(p.intent.name)
        states.append(str(r["state"]))
        if r.get("ticket_id"):
            tid.append(same_ticket(p.entity("ticket_id") or "", str(r["ticket_id"])))
        if r.get("rating"):
            rating.append(p.intent.name == "rate" and p.entity("rating") == str(r["rating"]))
    macro, per = _f1s(gold, pred)
    right = [g == p for g, p in zip(gold, pred, strict=True)]
    by_state = {
        s: round(float(np.mean([ok for ok, st in zip(right, states, strict=True) if st == s])), 4)
        for s in STATE_CONTEXT
        if s in states
    }
    return {
        "task": "intent",
        "n": len(rows),
        "accuracy": round(float(np.mean(right)), 4) if rows else 0.0,
        "macro_f1": macro,
        "per_intent_f1": per,
        "accuracy_by_state": by_state,
        "ticket_id_accuracy": round(float(np.mean(tid)), 4) if tid else None,
        "rating_accuracy": round(float(np.mean(rating)), 4) if rating else None,
    }


EVALUATORS = {
    "category": eval_category,
    "location": eval_location,
    "subject": eval_subject,
    "request_type": eval_request_type,
    "intent": eval_intent,
}
