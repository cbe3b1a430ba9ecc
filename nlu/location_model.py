"""A character CRF that marks where a place is written in running text (B/I/O).

It complements the rules of :mod:`nlu.location`: the rules know suffixes (区, 路, 小区, 大厦 …);
the CRF has learnt from corpora what a place name *looks like* without one ("A6区中粮鸿云",
"金科时代三期2栋") and where it stops ("南泉小区|占用耕地").

Training data (no message of the evaluation sets, no pickle):

* ``cluener/train.csv`` — news and Weibo sentences; ``address`` and ``scene`` spans are places,
  everything else (organisations, companies, names …) is outside.
* ``address/train.csv`` — standalone addresses with every part marked. Each one is put into a
  complaint-like sentence (prefixes and suffixes written for this module, or fragments of CLUENER
  sentences), the trailing parts the location convention leaves out (附近/对面 = ``assist``,
  shop names = ``person``) are outside, and with probability 1/2 the province/city/district
  names are pseudonymised the way the message board does it (西地省, A市, A3区, L4县).

* ``messages.csv`` — clauses of real messages in which the rules find no place (whole, and split
  at a word boundary as the context around an address). Which clauses, and where each is split,
  depends on the rules of the day, so the choice is recorded in ``nlu/data/location_contexts.tsv``
  (message id, clause number, split offset: no text) and training reads that record: retraining
  gives the committed model byte for byte whatever the rules have become since.
  ``python -m nlu.location_model mine`` records a new choice with the current rules.

``python -m nlu.location_model train [--data ../shared/data] [--out nlu/model/location-crf.crfsuite]``
trains with a fixed seed (~1 min on one core) and writes CRFsuite's own binary model format.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MODEL_PATH = Path(__file__).parent / "model" / "location-crf.crfsuite.gz"
CONTEXTS_PATH = Path(__file__).parent / "data" / "location_contexts.tsv"
SEED = 20261127
MAX_CHARS = 400  # the tagger reads at most this many characters of a message
C1, C2 = 0.1, 0.01
ADDRESS_SPLITS: tuple[str, ...] = ("train",)  # + dev, test, AUGMENT 2 was tried: dev char-F1 0.828 vs 0.834
AUGMENT = 1
CLUENER_SPLITS: tuple[str, ...] = ("train",)

_PUNCT = set("，。！？；：、,.!?;:（）()【】[]“”\"'《》<>—-…~·/\\|\n\r\t ")


def _ctype(ch: str) -> str:
    if "\u4e00" <= ch <= "\u9fff":
        return "C"
    if "A" <= ch <= "Z":
        return "U"
    if "a" <= ch <= "z":
        return "L"
    if ch.isdigit():
        return "D"
    if ch in _PUNCT:
        return "P"
    return "O"


_NUMCN = set("一二三四五六七八九十百零两")


def _norm_char(ch: str) -> str:
    if ch.isdigit():
        return "0"
    if "\ud800" <= ch <= "\udfff" or ch == "\x00":
        return "?"  # CRFsuite needs valid UTF-8 without NUL
    return ch


def features(text: str) -> list[list[str]]:
    """CRFsuite attribute lists, one per character (window ±2, bigrams, character classes).
    (Tried without gain on the dev set: the kinds of rule parts as features, 0.824 vs 0.835;
    character trigrams, 0.831 vs 0.838.)"""
    n = len(text)
    chars = [_norm_char(c) for c in text]
    types = [_ctype(c) for c in text]
    pad = ["<s>", "<s>"] + chars + ["</s>", "</s>"]
    tpad = ["S", "S"] + types + ["S", "S"]
    out: list[list[str]] = []
    for i in range(n):
        j = i + 2
        c = pad[j]
        f = [
            "b",
            "c=" + c,
            "c-1=" + pad[j - 1],
            "c+1=" + pad[j + 1],
            "c-2=" + pad[j - 2],
            "c+2=" + pad[j + 2],
            "b-1=" + pad[j - 1] + c,
            "b+1=" + c + pad[j + 1],
            "b-2=" + pad[j - 2] + pad[j - 1],
            "b+2=" + pad[j + 1] + pad[j + 2],
            "t=" + tpad[j - 1] + tpad[j] + tpad[j + 1],
            "t2=" + tpad[j - 2] + tpad[j - 1] + tpad[j] + tpad[j + 1] + tpad[j + 2],
        ]
        if c in _NUMCN:
            f.append("cn")
        out.append(f)
    return out


def bio(n: int, spans: Iterable[tuple[int, int]]) -> list[str]:
    tags = ["O"] * n
    for s, e in spans:
        if s >= e:
            continue
        tags[s] = "B"
        for k in range(s + 1, e):
            tags[k] = "I"
    return tags


# --------------------------------------------------------------------------- training data

# written for this module: how citizens' sentences around a place start and go on
_PREFIXES = (
    "||||投诉|反映|关于|举报|咨询|请求解决|建议|希望|我是|我家住在|本人住在|我们是|本人在|位于|我在|家住|请问|"
    "强烈要求整治|请有关部门管管|领导您好，我是|尊敬的领导：您好！我是|再次投诉|坚决反对在|我们小区|关于请求|您好，|今天路过"
).split("|")
_SUFFIXES = (
    "||噪音扰民|的业主|的居民|附近修建搅拌站，严重污染环境|占道经营严重|什么时候能办房产证|购买了一套房子|路灯不亮|"
    "的问题|交通拥堵|长期积水|夜间施工扰民|门口垃圾成堆|的村民|油烟扰民|违章搭建|停车乱收费|没有通公交车|业主维权|"
    "道路破损严重|的住户反映|拆迁补偿问题|。|，|！|对面有人半夜烧烤|旁边的工地|存在安全隐患|一直没有自来水|的商户"
).split("|")


def _pseudo_admin(label: str, span: str, rng: random.Random) -> str:
    if label in ("prov",):
        return "西地省" if span.endswith("省") else span
    letter = rng.choice("ABCDEFGHIJKLM")
    if label == "city" and span.endswith("市"):
        return letter + "市"
    if label == "district" and span[-1:] in ("区", "县", "市"):
        return f"{letter}{rng.randint(1, 12)}{span[-1]}"
    return span


def _address_example(
    text: str,
    spans: list[dict[str, Any]],
    rng: random.Random,
    context: list[str],
    lefts: list[str],
    rights: list[str],
) -> tuple[str, list[tuple[int, int]]] | None:
    spans = sorted(spans, key=lambda s: s["start"])
    pseudo = rng.random() < 0.5
    # drop what the location convention leaves out at the end
    while spans and spans[-1]["label"].lower() in ("assist", "person", "otherinfo", "redundant"):
        spans.pop()
    if not spans:
        return None
    # sometimes the citizen writes only the head of an address (district + estate, road …)
    if len(spans) > 2 and rng.random() < 0.4:
        spans = spans[: rng.randint(2, len(spans))]
    while spans and spans[-1]["label"].lower() in ("assist", "person", "otherinfo", "redundant"):
        spans.pop()
    if not spans:
        return None
    parts = []
    for s in spans:
        piece = text[s["start"] : s["end"]]
        if pseudo and s["label"] in ("prov", "city", "district"):
            piece = _pseudo_admin(s["label"], piece, rng)
        parts.append(piece)
    place = "".join(parts)
    u = rng.random()
    if u < 0.5 and lefts:
        left = rng.choice(lefts)
    elif u < 0.6 and context:
        left = rng.choice(context)
        left = left[len(left) - rng.randint(0, min(12, len(left))) :]
    else:
        left = rng.choice(_PREFIXES)
    u = rng.random()
    if u < 0.6 and rights:
        right = rng.choice(rights)
    elif u < 0.7 and context:
        right = rng.choice(context)[: rng.randint(0, 15)]
    else:
        right = rng.choice(_SUFFIXES)
    return left + place + right, [(len(left), len(left) + len(place))]


def _read_opt(path: Path) -> list[dict[str, str]]:
    return _read(path) if path.exists() else []


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# CLUENER calls schools, hospitals, parks … organisations; where a problem is, they are places
_FACILITY = re.compile(
    r"(?:学校|小学|中学|大学|学院|幼儿园|医院|卫生院|图书馆|博物馆|体育馆|公园|广场|商场|超市|市场|酒店|宾馆|饭店|"
    r"车站|火车站|机场|码头|大厦)$"
)
_CLAUSE = re.compile(r"[^，。！？；：、,.!?;:\s（）()【】“”\"]+[，。！？；：、,.!?;:]?")


Context = tuple[str, int, int]  # (留言编号, number of the clause in the message, split offset)


def clauses(title: str, detail: str) -> list[str]:
    """The clauses of a message the contexts are drawn from: its title and 300 characters of detail."""
    return _CLAUSE.findall(title + "。" + detail[:300])


def mine_contexts(messages: Path, exclude: list[Path], seed: int, limit: int = 30000) -> list[Context]:
    """Clauses of real messages in which the rules find no place (rows of the evaluation sets left
    out), each with a word boundary to split it at, in a seeded order: a record, not the text."""
    import jieba

    from .location import LocationExtractor
    from .location_sample import _norm, used_texts
    from .pii import mask_pii

    jieba.setLogLevel(60)
    rules = LocationExtractor(tagger=None, location_filter=None)
    used = used_texts(exclude)
    rng = random.Random(seed)
    rows = _read(messages)
    rng.shuffle(rows)
    record: list[Context] = []
    for r in rows:
        title, detail = r.get("留言主题") or "", r.get("留言详情") or ""
        hay = _norm(title) + "\n" + _norm(detail)
        hay += "\n" + _norm(mask_pii(title)) + "\n" + _norm(mask_pii(detail))
        if any(u in hay for u in used):
            continue
        for i, clause in enumerate(clauses(title, detail)):
            if not 4 <= len(clause) <= 40 or rules.extract(clause).found:
                continue
            words = list(jieba.cut(clause, HMM=False))
            if len(words) < 2:
                continue
            k = rng.randint(1, min(4, len(words) - 1))
            record.append((r["留言编号"], i, len("".join(words[:k]))))
        if len(record) >= limit:
            break
    return record


def contexts(messages: Path, record: list[Context]) -> tuple[list[str], list[str], list[str]]:
    """(left contexts ending on a word boundary, right contexts starting on one, whole clauses)."""
    by_id = {r["留言编号"]: r for r in _read(messages)}
    lefts: list[str] = []
    rights: list[str] = []
    whole: list[str] = []
    for msg_id, i, k in record:
        r = by_id.get(msg_id)
        found = clauses(r.get("留言主题") or "", r.get("留言详情") or "") if r else []
        if i >= len(found) or not 0 < k < len(found[i]):
            raise ValueError(
                f"{messages} does not hold clause {i} of message {msg_id} as {CONTEXTS_PATH.name} records it: "
                "record new contexts with `python -m nlu.location_model mine`"
            )
        lefts.append(found[i][:k])
        rights.append(found[i][k:])
        whole.append(found[i])
    return lefts, rights, whole


def write_contexts(path: Path, record: list[Context]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("# 留言编号\tclause\tsplit: see nlu/location_model.py (python -m nlu.location_model mine)\n")
        fh.writelines(f"{m}\t{i}\t{k}\n" for m, i, k in record)


def read_contexts(path: Path) -> list[Context]:
    with open(path, encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh if line.strip() and not line.startswith("#")]
    return [(m, int(i), int(k)) for m, i, k in rows]


def training_data(
    data_dir: Path, seed: int = SEED, exclude: list[Path] | None = None
) -> list[tuple[str, list[tuple[int, int]]]]:
    from .location_sample import EVAL_DIR

    rng = random.Random(seed)
    out: list[tuple[str, list[tuple[int, int]]]] = []
    context: list[str] = []
    cluener = [r for split in CLUENER_SPLITS for r in _read_opt(data_dir / "cluener" / f"{split}.csv")]
    for r in cluener:
        spans = json.loads(r["spans"])
        places = [
            (s["start"], s["end"])
            for s in spans
            if s["label"] in ("address", "scene") or (len(s["span"]) >= 4 and _FACILITY.search(s["span"]))
        ]
        out.append((r["text"], places))
        if not spans:
            context.append(r["text"])
    if exclude is None and CONTEXTS_PATH.exists():
        record = read_contexts(CONTEXTS_PATH)  # the committed model's contexts
    else:  # an experiment (e.g. a file held out): contexts chosen by the current rules
        exclude = exclude if exclude is not None else sorted(EVAL_DIR.glob("location_*.jsonl"))
        record = mine_contexts(data_dir / "messages.csv", exclude, seed)
    lefts, rights, whole = contexts(data_dir / "messages.csv", record)
    out += [(c, []) for c in whole[:5000]]
    # each address AUGMENT times, each time in another sentence and pseudonymisation
    addresses = [r for split in ADDRESS_SPLITS for r in _read_opt(data_dir / "address" / f"{split}.csv")]
    for _ in range(AUGMENT):
        for r in addresses:
            ex = _address_example(r["text"], json.loads(r["spans"]), rng, context, lefts, rights)
            if ex:
                out.append(ex)
    rng.shuffle(out)
    return out


def train(
    data_dir: Path,
    out: Path,
    seed: int = SEED,
    max_iterations: int = 60,
    exclude: list[Path] | None = None,
) -> dict[str, Any]:
    import pycrfsuite

    t0 = time.time()
    data = training_data(data_dir, seed, exclude)
    trainer = pycrfsuite.Trainer(verbose=False)
    for text, spans in data:
        trainer.append(features(text), bio(len(text), spans))
    trainer.set_params({"c1": C1, "c2": C2, "max_iterations": max_iterations, "feature.minfreq": 2})
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.crfsuite"
        trainer.train(str(raw))
        data_bytes = raw.read_bytes()
    if out.suffix == ".gz":  # CRFsuite's own format, gzip-compressed (mtime 0: same bytes every run)
        out.write_bytes(gzip.compress(data_bytes, 9, mtime=0))
    else:
        out.write_bytes(data_bytes)
    return {"sentences": len(data), "seconds": round(time.time() - t0, 1), "bytes": out.stat().st_size}


# --------------------------------------------------------------------------- inference


class LocationTagger:
    """Loads a CRFsuite model file; ``spans(text)`` → [(start, end, mean marginal)]."""

    def __init__(self, path: Path = MODEL_PATH):
        import pycrfsuite

        self.path = Path(path)
        self._tagger = pycrfsuite.Tagger()
        if self.path.suffix == ".gz":
            # CRFsuite reads the model from this buffer without copying it: keep a reference
            self._model = gzip.decompress(self.path.read_bytes())
            self._tagger.open_inmemory(self._model)
        else:
            self._tagger.open(str(self.path))

    def tag(self, text: str) -> tuple[list[str], list[float]]:
        """BIO tags and, per character, the marginal probability of being inside a place."""
        text = text[:MAX_CHARS]
        if not text:
            return [], []
        tags = list(self._tagger.tag(features(text)))
        probs = [self._tagger.marginal("O", i) for i in range(len(text))]
        return tags, [1.0 - p for p in probs]

    def spans(self, text: str) -> list[tuple[int, int, float]]:
        tags, inside = self.tag(text)
        out = []
        i = 0
        while i < len(tags):
            if tags[i] == "O":
                i += 1
                continue
            j = i + 1
            while j < len(tags) and tags[j] == "I":
                j += 1
            out.append((i, j, sum(inside[i:j]) / (j - i)))
            i = j
        return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m nlu.location_model")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the location CRF on the address + CLUENER corpora")
    t.add_argument("--data", type=Path, default=Path("../shared/data"))
    t.add_argument("--out", type=Path, default=MODEL_PATH)
    t.add_argument("--seed", type=int, default=SEED)
    t.add_argument("--iterations", type=int, default=60)
    m = sub.add_parser("mine", help=f"record which message clauses train the CRF, by the current rules ({CONTEXTS_PATH.name})")
    m.add_argument("--data", type=Path, default=Path("../shared/data"))
    m.add_argument("--out", type=Path, default=CONTEXTS_PATH)
    m.add_argument("--seed", type=int, default=SEED)
    s = sub.add_parser("tag", help="print the spans the CRF finds in a text")
    s.add_argument("text")
    s.add_argument("--model", type=Path, default=MODEL_PATH)
    a = ap.parse_args(argv)
    if a.cmd == "train":
        print(json.dumps(train(a.data, a.out, a.seed, a.iterations)))
    elif a.cmd == "mine":
        from .location_sample import EVAL_DIR

        record = mine_contexts(a.data / "messages.csv", sorted(EVAL_DIR.glob("location_*.jsonl")), a.seed)
        write_contexts(a.out, record)
        print(json.dumps({"clauses": len(record), "messages": len({m for m, _, _ in record}), "out": str(a.out)}))
    else:
        tagger = LocationTagger(a.model)
        for st, en, p in tagger.spans(a.text):
            print(f"{st}\t{en}\t{p:.2f}\t{a.text[st:en]}")


if __name__ == "__main__":
    main()
