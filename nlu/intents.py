"""Dialogue intents: a small char n-gram classifier trained on ``nlu/data/nlu.yml`` (Rasa format)
plus exact rules for the short, fixed phrases a bot depends on (转人工, ticket numbers, ratings)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .base import INTENTS, Entity, Intent

DATA = Path(__file__).parent / "data" / "nlu.yml"
TICKET_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{2,10}-\d{8}-\d{3,8}(?!\d)")
_RATING_RE = re.compile(r"非常满意|很满意|基本满意|很不满意|非常不满意|不满意|不太满意|满意")
_ANNOT = re.compile(r"\[([^\]]+)\]\(([a-z_]+)\)")


def load_nlu_yml(path: Path = DATA) -> list[tuple[str, str, list[tuple[str, str, int, int]]]]:
    """(text, intent, entities[(entity, value, start, end)]) from a Rasa 3 nlu.yml."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    out = []
    for block in data.get("nlu", []):
        intent = block.get("intent")
        if not intent:
            continue
        for line in str(block.get("examples", "")).splitlines():
            line = line.strip()
            if not line.startswith("- "):
                continue
            ann = line[2:].strip()
            text, ents, pos, last = "", [], 0, 0
            for m in _ANNOT.finditer(ann):
                text += ann[last : m.start()]
                s = len(text)
                text += m.group(1)
                ents.append((m.group(2), m.group(1), s, len(text)))
                last = m.end()
                pos += 1
            text += ann[last:]
            out.append((text, intent, ents))
    return out


def _rating_match(text: str) -> re.Match[str] | None:
    return _RATING_RE.search(text)


def _rating(text: str) -> str:
    m = _rating_match(text)
    if not m:
        return ""
    v = m.group()
    if "不" in v:
        return "不满意"
    if "基本" in v:
        return "基本满意"
    return "满意"


def char_wb(text: str, lo: int = 1, hi: int = 3) -> list[str]:
    """scikit-learn's ``char_wb`` analyzer (lower-cased), reimplemented for inference."""
    out: list[str] = []
    for w in re.sub(r"\s\s+", " ", text.lower()).split():
        w = " " + w + " "
        for n in range(lo, hi + 1):
            offset = 0
            out.append(w[offset : offset + n])
            while offset + n < len(w):
                offset += 1
                out.append(w[offset : offset + n])
            if offset == 0:
                break
    return out


class IntentModel:
    """Char n-gram TF-IDF + multinomial logistic regression; stored as plain arrays."""

    def __init__(self) -> None:
        self.classes: list[str] = []
        self.vocab: dict[str, int] = {}
        self.idf: Any = None
        self.coef: Any = None
        self.intercept: Any = None

    def fit(self, examples: list[tuple[str, str, list[Any]]]) -> IntentModel:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        texts = [t for t, _, _ in examples]
        labels = [i for _, i, _ in examples]
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        clf = LogisticRegression(C=20.0, max_iter=2000).fit(vec.fit_transform(texts), labels)
        self.classes = [str(c) for c in clf.classes_]
        self.vocab = {str(k): int(v) for k, v in vec.vocabulary_.items()}
        self.idf, self.coef, self.intercept = (
            np.asarray(vec.idf_),
            np.asarray(clf.coef_),
            np.asarray(clf.intercept_),
        )
        return self

    def rank(self, text: str) -> list[tuple[str, float]]:
        counts: dict[int, int] = {}
        for g in char_wb(text[:300]):
            j = self.vocab.get(g)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        z = np.array(self.intercept, dtype=np.float64)
        if counts:
            idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            val = (
                1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
            ) * self.idf[idx]
            val /= np.sqrt(val @ val) or 1.0
            z = z + self.coef[:, idx] @ val
        z = z - z.max()
        p = np.exp(z) / np.exp(z).sum()
        order = np.argsort(-p)
        return [(self.classes[i], float(p[i])) for i in order]

    def to_arrays(self) -> dict[str, np.ndarray]:
        terms = sorted(self.vocab, key=lambda k: self.vocab[k])
        return {
            "intent_terms": np.array(terms, dtype=str),
            "intent_idf": self.idf,
            "intent_coef": self.coef,
            "intent_intercept": self.intercept,
        }

    @classmethod
    def from_arrays(cls, arrays: Any, classes: list[str]) -> IntentModel:
        m = cls()
        m.classes = list(classes)
        m.vocab = {str(t): i for i, t in enumerate(arrays["intent_terms"])}
        m.idf = np.asarray(arrays["intent_idf"])
        m.coef = np.asarray(arrays["intent_coef"])
        m.intercept = np.asarray(arrays["intent_intercept"])
        return m


def classify(
    model: IntentModel | None, text: str, context: dict[str, Any]
) -> tuple[list[Intent], list[Entity]]:
    """Intent ranking (best first) and the entities ticket_id / rating."""
    t = text.strip()
    entities: list[Entity] = []
    for m in TICKET_RE.finditer(text):
        entities.append(Entity(entity="ticket_id", value=m.group(), start=m.start(), end=m.end()))
    rating = _rating(t)
    long_text = len(t) > 80
    rank = dict(model.rank(t)) if (model and t and not long_text) else {"new_request": 0.5, "add_info": 0.2}
    forced: str | None = None
    compact = re.sub(r"[\s，,。.！!？?~～、]+", "", t)
    if not re.search(r"[\u4e00-\u9fffA-Za-z0-9]", compact):
        # nothing to read (empty, punctuation, emoji): a valid, zero-confidence result
        return [Intent(name="new_request", confidence=0.0)], entities
    if re.search(r"转人工|人工客服|人工服务|找人工|转接人工|真人|话务员|接线员|人工坐席|^人工$", compact):
        forced = "ask_human"
    elif entities and len(compact) <= 40 and not re.search(r"补充|另外", compact):
        forced = "query_progress"
    elif (
        rating
        and len(compact) <= 20
        and (context.get("expecting") == "rating" or len(compact) <= 8 or "评" in compact)
    ):
        forced = "rate"
    elif re.fullmatch(
        r"(?:是|是的|对|对的|对啊|没错|确认|确定|好的?|好滴|可以|行|嗯+|ok|OK|没问题|确认提交|提交)(?:吧|的|啊)?",
        compact,
    ):
        forced = "affirm"
    elif re.fullmatch(
        r"(?:不是|不对|不是的|错了|取消|不用了?|算了|不要|否|不行|不需要|先不|不提交)(?:吧|了|的)?", compact
    ):
        forced = "deny"
    if forced is None:
        best = max(rank, key=lambda k: rank[k])
        # while a ticket is being drafted, a short message that isn't a new complaint adds detail
        if context.get("drafting") and best == "new_request" and len(compact) <= 40:
            rank["add_info"] = max(rank.get("add_info", 0.0), rank[best] + 0.05)
        if not context.get("drafting") and best in ("new_request", "add_info") and len(compact) > 12:
            # with no draft open, "more detail" is really the start of a new request
            moved = 0.8 * rank.get("add_info", 0.0)
            rank["new_request"] = max(rank.get("new_request", 0.0) + moved, rank.get("add_info", 0.0) + 0.05)
            rank["add_info"] = rank.get("add_info", 0.0) - moved
        if len(compact) > 60:  # long free text is a problem description
            forced = "add_info" if context.get("drafting") else "new_request"
    if forced:
        rank[forced] = max(rank.values(), default=0.0) + 0.5
    total = sum(rank.values()) or 1.0
    ranking = sorted(
        (Intent(name=k, confidence=round(v / total, 4)) for k, v in rank.items() if k in INTENTS),
        key=lambda i: -i.confidence,
    )
    rm = _rating_match(text)
    if ranking and ranking[0].name == "rate" and rm:
        entities.append(Entity(entity="rating", value=rating, start=rm.start(), end=rm.end()))
    return ranking[:10], entities
