"""The eight first-level classes the contest data never labels (政法, 民政, 农村农业, 党务政务, 国土资源,
科技与信息产业, 纪检监察, 经济管理), learned from hand-annotated board messages.

The category model knows 7 of the taxonomy's 15 classes. On a real message board one message in
six belongs to the other eight (annotated sample of ``messages.csv``, docs/nlu.md) — police and
public-security matters alone are one in eleven — and the keyword fallback of :mod:`nlu.category`
catches almost none of them: citizens write 派出所, 交警, 诈骗, not the taxonomy's 治安案件 or
警务执法. This gate is a logistic regression over character 1-3-grams of the title and the first
300 characters of the detail, with nine outputs: the eight classes and "one of the seven". It is
trained on ``nlu/data/category_messages.csv`` (board messages annotated with all 15 classes)
and on the contest training split (all "one of the seven", which also teaches it the contest's
conventions, e.g. traffic police under 交通运输), the eight classes weighted ``CLASS_WEIGHT``.

It names a class only when its probability reaches ``THRESHOLD``, and then with low confidence
(the bot asks or hands over). Off by default (``HOTLINE_NLU_OTHER_CLASSES``): a deployment that
serves a whole board stream turns it on; on a 7-class evaluation set every such answer is an error
and adds a class with F1 0 to the macro average. Inference is plain numpy and dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .request_type import TfidfBlock, grams, title_then_detail

OTHER = "其他七类"  # the gate's label for "one of the seven classes the category model knows"
THRESHOLD = 0.6
CLASS_WEIGHT = 20.0
C = 10.0
MAX_FEATURES = 50_000
DETAIL_CHARS = 300


def gate_text(text: str, title: str = "") -> str:
    return title_then_detail(text, title, DETAIL_CHARS)


class OtherClassGate:
    def __init__(
        self,
        classes: list[str],
        vocab: Sequence[str] | np.ndarray,
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
    ):
        self.classes = classes
        self.vocab = vocab
        self.idf = np.asarray(idf, dtype=np.float32)
        self.coef = np.asarray(coef, dtype=np.float32)  # (classes, features)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self._block = TfidfBlock(vocab, self.idf, 0)

    @classmethod
    def fit(cls, texts: list[str], labels: list[str]) -> OtherClassGate:
        """``texts`` as :func:`gate_text` makes them; ``labels``: one of the eight classes or OTHER."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vec = TfidfVectorizer(
            analyzer=grams, lowercase=False, sublinear_tf=True, min_df=2, max_features=MAX_FEATURES
        )
        x = vec.fit_transform(texts)
        weights = {c: (1.0 if c == OTHER else CLASS_WEIGHT) for c in set(labels)}
        lr = LogisticRegression(C=C, max_iter=3000, class_weight=weights).fit(x, labels)
        vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
        coef, intercept = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # two classes: one logit, as a softmax over (-z/2, z/2)
            coef, intercept = np.vstack([-coef, coef]) / 2, np.r_[-intercept, intercept] / 2
        return cls([str(c) for c in lr.classes_], vocab, vec.idf_, coef, intercept)

    def proba(self, text: str, title: str = "") -> dict[str, float]:
        idx, val = self._block.transform(gate_text(text, title))
        z = self.intercept.astype(np.float64).copy()
        if len(idx):
            z += self.coef[:, idx].astype(np.float64) @ val
        p = np.exp(z - z.max())
        p /= p.sum()
        return {c: float(v) for c, v in zip(self.classes, p, strict=True)}

    def best(self, text: str, title: str = "", threshold: float = THRESHOLD) -> tuple[str, float]:
        """(class, probability) of the likeliest of the eight when it reaches ``threshold``, else ("", p)."""
        p = self.proba(text, title)
        k, v = max(((c, v) for c, v in p.items() if c != OTHER), key=lambda kv: kv[1], default=("", 0.0))
        return (k, v) if v >= threshold else ("", v)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "og_classes": np.array(self.classes),
            "og_vocab": np.array(self.vocab),
            "og_idf": self.idf,
            "og_coef": self.coef.astype(np.float16),
            "og_intercept": self.intercept,
        }

    @classmethod
    def from_arrays(cls, a: Any) -> OtherClassGate | None:
        if "og_coef" not in a:
            return None  # an artifact from before the gate
        return cls(
            [str(x) for x in a["og_classes"]],
            a["og_vocab"],
            a["og_idf"],
            np.asarray(a["og_coef"], dtype=np.float32),
            a["og_intercept"],
        )
