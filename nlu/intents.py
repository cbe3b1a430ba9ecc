"""Dialogue intents: a small char n-gram classifier trained on ``nlu/data/nlu.yml`` (Rasa format)
plus exact rules for the short, fixed phrases a bot depends on (转人工, ticket numbers, ratings)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .base import INTENTS, Entity, Intent
from .dialogue_rules import (
    GIVE_UP,
    SHORTHAND,
    after_greeting,
    asks_progress,
    asks_who,
    corrects,
    raises_another_matter,
    rating_of,
    ticket_ids,
)

DATA = Path(__file__).parent / "data" / "nlu.yml"
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


_AFFIRM = re.compile(
    r"(?:是|是的|对|对的|对啊|对头|没错|确认|确定|好的?|好滴|好嘞|可以|行|中|要得|系|系啊|嗯+|ok|OK|Ok|没问题|冇问题|"
    r"确认提交|提交)(?:吧|的|啊|呀)?"
)
_DENY = re.compile(
    r"(?:不是|不对|不是的|错了|取消|不用了?|算了|不要|否|不行|不需要|先不|不提交|唔使|唔要|no|No|NO|nope)(?:吧|了|的|啦)?"
)
# how a confirmation that goes on ("对，就是这么个事，谢谢") starts
_AFFIRM_START = re.compile(r"^(?:是的|是啊|对|没错|确认|确定|好的|可以|行|没问题|嗯|ok|OK|系|要得|对头)")
_NEGATION = re.compile(r"不|没|错|唔|冇|别")
# how giving up the draft starts ("算啦 唔报啦…", "不要了 人家已经修好了")
_DENY_START = GIVE_UP
# what opens a new request, not a question about an old one
_REQUEST_OPENER = re.compile(r"(?:建议|投诉|举报|求助)(?![的过了])(?!.*(?:工单|单子|单号))")
_THANKS = re.compile(r"谢|唔该|thx|thanks|3q|辛苦", re.I)
_THUMBS_UP = re.compile(r"[👍👌✅🆗🙆]")
_THUMBS_DOWN = re.compile(r"[👎❌🙅]")


def _forced(
    compact: str,
    entities: list[Entity],
    rated: tuple[str, int, int] | None,
    context: dict[str, Any],
) -> str | None:
    """The intent an exact rule decides, if one does (the classifier ranks the rest)."""
    expecting = context.get("expecting")
    drafting = bool(context.get("drafting"))
    if re.search(r"转人工|人工客服|人工服务|找人工|转接人工|真人|话务员|接线员|人工坐席|^人工$", compact):
        return "ask_human"
    if entities and len(compact) <= 40 and not re.search(r"补充|另外", compact):
        return "query_progress"
    answers_survey = expecting == "rating" and len(compact) <= 30
    if rated and (answers_survey or ((len(compact) <= 8 or "评" in compact) and len(compact) <= 20)):
        return "rate"
    if shorthand := SHORTHAND.get(compact.lower()):
        return shorthand
    if len(compact) <= 20 and asks_who(compact):
        return "greet"
    if _AFFIRM.fullmatch(compact):
        return "affirm"
    if _DENY.fullmatch(compact):
        return "deny"
    if len(compact) <= 30 and asks_progress(compact):
        return "query_progress"
    if drafting and raises_another_matter(compact):
        return "new_request"
    if drafting and _DENY_START.search(compact) and not corrects(compact):
        return "deny"
    if (
        context.get("step") == "confirming"
        and _AFFIRM_START.search(compact)
        and not _NEGATION.search(compact)
        and not corrects(compact)
    ):
        return "affirm"
    return None


def classify(
    model: IntentModel | None, text: str, context: dict[str, Any]
) -> tuple[list[Intent], list[Entity]]:
    """Intent ranking (best first) and the entities ticket_id / rating."""
    t = text.strip()
    entities = [Entity(entity="ticket_id", value=v, start=s, end=e) for v, s, e in ticket_ids(text)]
    rated = rating_of(text, context.get("expecting") == "rating")
    compact = re.sub(r"[\s，,。.！!？?~～、]+", "", t)
    if not re.search(r"[\u4e00-\u9fffA-Za-z0-9]", compact):
        # nothing to read (empty, punctuation, emoji): a valid, zero-confidence result, unless a
        # thumb answers the question the bot asked
        if rated and context.get("expecting") == "rating":
            forced_emoji = "rate"
        elif context.get("step") == "confirming" and (_THUMBS_UP.search(t) or _THUMBS_DOWN.search(t)):
            forced_emoji = "deny" if _THUMBS_DOWN.search(t) else "affirm"
        else:
            return [Intent(name="new_request", confidence=0.0)], entities
        if forced_emoji == "rate" and rated:
            entities.append(Entity(entity="rating", value=rated[0], start=rated[1], end=rated[2]))
        return [Intent(name=forced_emoji, confidence=0.9)], entities
    long_text = len(t) > 80
    rank = dict(model.rank(t)) if (model and t and not long_text) else {"new_request": 0.5, "add_info": 0.2}
    forced = _forced(compact, entities, rated, context)
    if forced is None:
        best = max(rank, key=lambda k: rank[k])
        drafting = bool(context.get("drafting"))
        if drafting and best in ("deny", "affirm") and corrects(compact):
            best = _promote(rank, "add_info")  # "不是3栋 是5栋": a correction, not a refusal
        elif drafting and best == "query_progress" and not entities:
            best = _promote(rank, "add_info")  # a phone number is not a ticket number
        elif context.get("step") == "awaiting_location" and best in ("affirm", "deny", "greet", "thanks_bye"):
            best = _promote(rank, "add_info")  # asked where, "铁西" is the answer
        elif not drafting and best == "affirm" and _THANKS.search(compact):
            best = _promote(rank, "thanks_bye")  # "好 唔该晒": nothing was asked, so it is thanks
        elif not drafting and best in ("affirm", "deny") and len(compact) >= 6:
            best = _promote(rank, "new_request")  # a described problem ("房东不退押金"), however it opens
        elif best == "greet" and len(after_greeting(compact)) >= 8:
            best = _promote(rank, "add_info" if drafting else "new_request")  # "你好，请问公租房咋申请"
        elif not drafting and best == "thanks_bye" and len(compact) > 24:
            best = _promote(rank, "new_request")  # thanks that tell a story ("昨晚…消防员…真的感谢"): praise
        elif not drafting and best == "rate" and context.get("expecting") != "rating" and not rated:
            best = _promote(rank, "new_request")  # praise of its own ("三天就修好了 点赞"), no survey open
        elif (
            not drafting
            and best == "query_progress"
            and not entities
            and (len(compact) > 20 or _REQUEST_OPENER.match(compact))
            and not asks_progress(compact)
        ):
            # long, or opened as a request ("建议12345公众号加个…"), with no number and no "how is it
            # going": a request
            best = _promote(rank, "new_request")
        # while a ticket is being drafted, a message not marked as another matter adds detail to it
        if drafting and best == "new_request":
            rank["add_info"] = max(rank.get("add_info", 0.0), rank[best] + 0.05)
        if not drafting and best in ("new_request", "add_info") and len(compact) > 12:
            # with no draft open, "more detail" is really the start of a new request
            moved = 0.8 * rank.get("add_info", 0.0)
            rank["new_request"] = max(rank.get("new_request", 0.0) + moved, rank.get("add_info", 0.0) + 0.05)
            rank["add_info"] = rank.get("add_info", 0.0) - moved
        if len(compact) > 60:  # long free text is a problem description
            forced = "add_info" if drafting else "new_request"
    if forced:
        rank[forced] = max(rank.values(), default=0.0) + 0.5
    total = sum(rank.values()) or 1.0
    ranking = sorted(
        (Intent(name=k, confidence=round(v / total, 4)) for k, v in rank.items() if k in INTENTS),
        key=lambda i: -i.confidence,
    )
    if ranking and ranking[0].name == "rate" and rated:
        entities.append(Entity(entity="rating", value=rated[0], start=rated[1], end=rated[2]))
    return ranking[:10], entities


def _promote(rank: dict[str, float], name: str) -> str:
    """Make ``name`` the best of the classifier's ranking (a rule overrules it)."""
    rank[name] = max(rank.values(), default=0.0) + 0.05
    return name
