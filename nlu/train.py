"""Training: category model (held-out measured) + intent model → one versioned artifact."""

from __future__ import annotations

import csv
import json
import multiprocessing
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .category import CategoryModel
from .dataset import Example, assign_groups, load_labelled, split
from .intents import IntentModel, load_nlu_yml
from .location import GAZETTEER_PATH, LocationExtractor, load_gazetteer
from .other_classes import OTHER, OtherClassGate, gate_text
from .request_type import RequestTypeModel
from .subject import SubjectModel
from .text import derive_stopwords, tokens
from .urgency import UrgencyModel

ARTIFACT_VERSION = 1
OTHER_CLASSES_DATA = Path(__file__).parent / "data" / "category_messages.csv"


def load_taxonomy(data_dir: Path) -> list[tuple[str, str, str]]:
    with open(Path(data_dir) / "taxonomy.csv", encoding="utf-8") as fh:
        return [(r["一级分类"], r["二级分类"], r["三级分类"]) for r in csv.DictReader(fh)]


def write_heldout(path: Path, test: list[Example]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["title", "detail", "label"])
        for e in test:
            w.writerow([e.title, e.detail, e.label])


def prepare(
    data_dir: Path, limit: int | None = None
) -> tuple[list[Example], dict[str, str], list[str], list[Example], list[Example]]:
    """Load, de-duplicate, normalise and split: (examples, docs by key, stop words, train, test).
    Deterministic, so the benchmark and the artifact use the same split."""
    examples = load_labelled(data_dir)
    if limit:
        examples = sorted(examples, key=lambda e: e.key)[:limit]
    pairs = [(e.raw, e.segmented) for e in examples if e.has_raw and e.segmented]
    stop = derive_stopwords(pairs)
    stop_set = frozenset(stop)
    docs: dict[str, str] = {}
    for e in examples:
        docs[e.key] = " ".join(tokens(e.raw, stop_set)) if e.has_raw else e.segmented
    assign_groups(examples, [docs[e.key] for e in examples])
    train_ex, test_ex = split(examples)
    # Rows we only have as the published segmentation are re-segmented the way a message is at
    # inference (jieba + the same stop list, cut at MAX_CHARS), so word n-grams match between
    # training and serving (cross-validated macro-F1 on the raw training rows 0.893 -> 0.897).
    # Done after the split, so the split (grouping on the published text) does not change.
    for e in examples:
        if not e.has_raw:
            docs[e.key] = " ".join(tokens("".join(e.segmented.split()), stop_set))
    return examples, docs, stop, train_ex, test_ex


def fit_subject(
    data_dir: Path, heldout_csv: Path | None, limit: int | None = None
) -> tuple[SubjectModel | None, int]:
    """Fit the subject clause scorer on half of messages.csv (by a hash of 留言编号); the other
    half is the held-out set for ROUGE-L (written to ``heldout_csv``)."""
    path = Path(data_dir) / "messages.csv"
    if not path.exists():
        return None, 0
    with open(path, encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["留言主题"].strip() and r["留言详情"].strip()]
    train_rows = [r for r in rows if zlib.crc32(r["留言编号"].encode()) % 2 == 0][:limit]
    test_rows = [r for r in rows if zlib.crc32(r["留言编号"].encode()) % 2 == 1]
    loc = LocationExtractor(
        load_gazetteer(GAZETTEER_PATH)
    )
    model = SubjectModel().fit(
        [(r["留言主题"].strip(), r["留言详情"].strip()) for r in train_rows], loc.extract
    )
    if heldout_csv:
        heldout_csv.parent.mkdir(parents=True, exist_ok=True)
        with open(heldout_csv, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["留言主题", "留言详情"])
            for r in test_rows:
                w.writerow([r["留言主题"].strip(), r["留言详情"].strip()])
    return model, len(train_rows)


def fit_other_classes(train_ex: list[Example], trained: list[str]) -> OtherClassGate | None:
    """The gate for the eight classes without contest labels (nlu/other_classes.py): board
    messages annotated with all 15 classes, plus the contest rows the category model learns (the
    training split; every row with ``--full``) as "one of the seven"."""
    if not OTHER_CLASSES_DATA.exists():
        return None
    with open(OTHER_CLASSES_DATA, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    texts = [gate_text(r["detail"], r["title"]) for r in rows]
    labels = [OTHER if r["label"] in trained else r["label"] for r in rows]
    for e in train_ex:
        texts.append(gate_text(e.detail, e.title) if e.has_raw else gate_text("".join(e.segmented.split())))
        labels.append(OTHER)
    return OtherClassGate.fit(texts, labels)


def fit_category(
    examples: list[Example],
    docs: dict[str, str],
    taxonomy: list[tuple[str, str, str]],
    progress: Callable[[str], None] | None = None,
) -> CategoryModel:
    """The category model on ``examples`` (near-duplicate groups kept together in its folds), with
    the keyword fallback for the classes without labels."""
    texts = [docs[e.key] for e in examples]
    model = CategoryModel(c=0.5).fit(
        texts, [e.label for e in examples], progress=progress, taxonomy=taxonomy, groups=[e.group for e in examples]
    )
    return model.add_fallback(taxonomy, texts)


def fit_request_type(limit: int | None = None) -> RequestTypeModel:
    """The request-type model on the annotated rows (about a minute on one core, the longest
    single fit: run beside everything else, see :func:`train`)."""
    return RequestTypeModel.fit(request_type_rows(limit))


def request_type_rows(limit: int | None = None) -> list[dict[str, Any]]:
    """The annotated request-type and urgency rows (all of them, or about ``limit``, spread over
    every file)."""
    rows = RequestTypeModel.load_rows()
    return rows[:: max(1, len(rows) // limit)] if limit else rows


def train(
    data_dir: Path,
    out_path: Path,
    heldout_path: Path | None = None,
    full: bool = False,
    limit: int | None = None,
    step: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """Train and write the artifact (compressed ``.npz``) and ``metrics.json`` beside it.

    ``full=False`` (default): the artifact is trained on the training split only, so the
    held-out figures in the metrics are honest and reproducible with ``evaluate``.
    ``full=True``: measure on the split first, then refit on all rows for the artifact.
    ``limit``: use only the first N examples (for tests of this code path).
    """

    def tick(msg: str, frac: float) -> None:
        if step:
            step(msg, frac)

    t0 = time.perf_counter()
    # the request-type model, the longest single fit (~1 minute on one core), needs nothing of the
    # category data: fitted in a second process while this one prepares and fits the category
    # models; the eight-class gate (~30 s) follows it there once the split is known, the urgency
    # model (~10 s) is fitted here: the two processes end about together. Leaving the block, done
    # or failed, terminates that process: a failed training stops at once.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        rt_async = pool.apply_async(fit_request_type, (limit,))
        tick("loading, segmenting and splitting the data", 0.05)
        examples, docs, stop, train_ex, test_ex = prepare(data_dir, limit)
        tick("split", 0.35)
        learned = train_ex + (test_ex if full else [])  # what the shipped models learn
        trained = sorted({e.label for e in train_ex})  # the category model's classes
        gate_async = pool.apply_async(fit_other_classes, (learned, trained)) if not limit else None
        taxonomy = load_taxonomy(data_dir)
        cat = fit_category(train_ex, docs, taxonomy, progress=lambda m: tick("category " + m, 0.6))
        tick("category model", 0.7)
        intents = IntentModel().fit(load_nlu_yml())
        tick("subject model", 0.72)
        subject_model, n_subject = fit_subject(
            data_dir, heldout_path.parent / "subject_heldout.csv" if heldout_path else None, limit
        )
        full_cat = None
        if full and test_ex:
            # refit on every row while the second process still fits the request-type model
            # (the longest part on one core): the split model is measured below all the same
            tick("category model on all rows", 0.73)
            full_cat = fit_category(learned, docs, taxonomy)
        tick("urgency model", 0.74)
        rt_rows = request_type_rows(limit)
        urgency_model = UrgencyModel.fit(rt_rows)
        tick("request-type model and eight-class gate", 0.76)
        rt_model = rt_async.get()
        other_classes = gate_async.get() if gate_async else None
        meta: dict[str, Any] = {
            "version": ARTIFACT_VERSION,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "stopwords": stop,
            "taxonomy": taxonomy,
        }
        artifact: dict[str, Any] = {
            **meta,
            "category": cat,
            "intents": intents,
            "request_type": rt_model,
            "urgency": urgency_model,
            "other_classes": other_classes,
        }
        # held-out measurement through the whole builtin parse (what the bot gets)
        from .builtin import BuiltinBackend, save_artifact
        from .evaluate import eval_category, fingerprint

        backend = BuiltinBackend(artifact)
        metrics: dict[str, Any] = {"task": "category"}
        if test_ex:
            rows = [{"title": e.title, "detail": e.detail, "label": e.label} for e in test_ex]
            metrics = eval_category(backend, rows)
        tick("evaluated on held-out split", 0.85)
        if full_cat is not None:
            artifact["category"] = full_cat
        seen = {
            "category": [fingerprint(e.title, e.detail) for e in learned if e.has_raw],
            "request_type": [
                fingerprint(str(r.get("title") or ""), str(r.get("text") or "")) for r in rt_rows
            ],
        }
        save_artifact(
            out_path,
            meta,
            artifact["category"],
            intents,
            subject_model,
            rt_model,
            urgency_model,
            other_classes,
            seen,
        )
        info = {
            "artifact": out_path.name,
            "version": ARTIFACT_VERSION,
            "created": artifact["created"],
            "trained_on": "all rows" if full else "training split",
            "n_examples": len(examples),
            "n_train": len(learned),
            "n_heldout": len(test_ex),
            "class_counts": {
                c: int(n)
                for c, n in zip(*np.unique([e.label for e in examples], return_counts=True), strict=True)
            },
            "heldout": metrics,
            "subject_train_pairs": n_subject,
            "request_type_train_rows": len(rt_rows),
            "urgency_train_urgent": sum(bool(r["urgent"]) for r in rt_rows),
            "train_seconds": round(time.perf_counter() - t0, 1),
            "size_bytes": out_path.stat().st_size,
        }
        (out_path.parent / "metrics.json").write_text(
            json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        if heldout_path and test_ex:
            write_heldout(heldout_path, test_ex)
        tick("done", 1.0)
        return info
