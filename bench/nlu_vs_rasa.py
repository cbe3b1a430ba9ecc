"""Builtin NLU vs Rasa 3.6 DIET on the same held-out split of the category data.

    .venv/bin/python bench/nlu_vs_rasa.py                      # builtin half only
    .venv/bin/python bench/nlu_vs_rasa.py --rasa-venv /tmp/rasa310 --epochs 30

The Rasa half needs a Python 3.10 venv with ``rasa==3.6.*`` and ``jieba`` (see docs/nlu.md). It
exports the training split (raw text where we have it, else the published segmentation; cut to
300 characters) as one intent per category, trains DIET (JiebaTokenizer, word counts + char_wb
1-3, ``--epochs``), serves it with ``rasa run --enable-api`` on loopback and parses every held-out
message over HTTP. Same split and same training rows as the builtin half (``nlu.train.prepare``;
the shipped artifact learns the held-out split too, so the builtin half trains one without it).
Outputs go to bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from nlu.evaluate import _f1s  # noqa: E402
from nlu.train import prepare  # noqa: E402

OUT = ROOT / "bench" / "out"


def builtin_half(data_dir: Path, test: list) -> dict:
    """The committed artifact, unless it learned the held-out split (trained with ``--full``, as
    shipped): then an artifact trained on the training split only, written to bench/out/."""
    from nlu.builtin import BuiltinBackend, artifact_path, load_artifact
    from nlu.evaluate import seen_in_training
    from nlu.train import train

    b = BuiltinBackend(load_artifact(artifact_path()))
    rows = [{"title": e.title, "detail": e.detail} for e in test]
    if seen_in_training(b, "category", rows):
        split_model = OUT / "split" / "nlu-model.npz"
        print(f"the committed artifact learned the held-out split: training {split_model} on the training split")
        train(data_dir, split_model)
        b = BuiltinBackend(load_artifact(split_model))
    gold, pred, ms = [], [], []
    for e in test:
        t = time.perf_counter()
        p = b.parse(e.detail, {"title": e.title})
        ms.append((time.perf_counter() - t) * 1000)
        gold.append(e.label)
        pred.append(p.category.level1)
    f1, per = _f1s(gold, pred)
    return {
        "engine": "builtin",
        "macro_f1": f1,
        "per_class_f1": per,
        "ms_p50": float(np.percentile(ms, 50)),
        "ms_mean": float(np.mean(ms)),
        "train_s": None,
    }


def rasa_half(train: list, test: list, docs: dict, venv: Path, epochs: int) -> dict:
    import httpx
    import yaml

    proj = OUT / "rasa_category"
    (proj / "data").mkdir(parents=True, exist_ok=True)
    labels = sorted({e.label for e in train})
    ids = {lab: f"cat{i}" for i, lab in enumerate(labels)}
    by: dict[str, list[str]] = {v: [] for v in ids.values()}
    for e in train:
        text = e.raw if e.has_raw else e.segmented
        text = " ".join(text.split())[:300]
        if text:
            by[ids[e.label]].append(text)
    nlu = {
        "version": "3.1",
        "nlu": [{"intent": k, "examples": "".join(f"- {t}\n" for t in v)} for k, v in by.items()],
    }
    (proj / "data" / "nlu.yml").write_text(
        yaml.safe_dump(nlu, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    (proj / "domain.yml").write_text(
        yaml.safe_dump({"version": "3.1", "intents": list(ids.values())}), encoding="utf-8"
    )
    (proj / "config.yml").write_text(
        "recipe: default.v1\nlanguage: zh\nassistant_id: bench\npipeline:\n"
        "  - name: JiebaTokenizer\n  - name: CountVectorsFeaturizer\n"
        "  - name: CountVectorsFeaturizer\n    analyzer: char_wb\n    min_ngram: 1\n    max_ngram: 3\n"
        f"  - name: DIETClassifier\n    epochs: {epochs}\n    entity_recognition: false\n"
        "policies: []\n",
        encoding="utf-8",
    )
    rasa = str(venv / "bin" / "rasa")
    t0 = time.time()
    subprocess.run([rasa, "train", "nlu", "--fixed-model-name", "cat"], cwd=proj, check=True)
    train_s = time.time() - t0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [rasa, "run", "--enable-api", "-i", "127.0.0.1", "-p", str(port), "-m", "models/cat.tar.gz"],
        cwd=proj,
        stdout=open(proj / "server.log", "w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/status", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        inv = {v: k for k, v in ids.items()}
        gold, pred, ms = [], [], []
        with httpx.Client(timeout=30) as client:
            for e in test:
                t = time.perf_counter()
                r = client.post(url + "/model/parse", json={"text": (e.title + " " + e.detail).strip()[:300]})
                ms.append((time.perf_counter() - t) * 1000)
                gold.append(e.label)
                pred.append(inv.get(r.json()["intent"]["name"], ""))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    f1, per = _f1s(gold, pred)
    return {
        "engine": f"rasa 3.6 DIET ({epochs} epochs)",
        "macro_f1": f1,
        "per_class_f1": per,
        "ms_p50": float(np.percentile(ms, 50)),
        "ms_mean": float(np.mean(ms)),
        "train_s": round(train_s),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--rasa-venv", type=Path, default=None, help="venv with rasa 3.6 (Python 3.10)")
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    _, docs, _, train, test = prepare(args.data)
    print(f"split: {len(train)} train, {len(test)} held-out (de-duplicated, near-duplicates grouped)")
    results = [builtin_half(args.data, test)]
    if args.rasa_venv:
        results.append(rasa_half(train, test, docs, args.rasa_venv, args.epochs))
    else:
        print("Rasa half skipped (pass --rasa-venv); see docs/nlu.md for its status")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "nlu_vs_rasa.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"{'engine':32} {'macro-F1':>9} {'ms p50':>8} {'ms mean':>8} {'train s':>8}")
    for r in results:
        print(
            f"{r['engine']:32} {r['macro_f1']:9.4f} {r['ms_p50']:8.2f} {r['ms_mean']:8.2f} {str(r['train_s']):>8}"
        )


if __name__ == "__main__":
    main()
