"""First-level category classifier: word (1-2) + char (1-3) n-grams, hashed (crc32), sublinear
TF-IDF, class-balanced linear SVM, Platt-style multinomial calibration on cross-validated scores.

Inference is plain numpy (no scikit-learn import, ~0.3 ms per message); scikit-learn is only
used to fit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

N_FEATURES = 2**19


def word_feats(doc: str) -> list[str]:
    toks = doc.split()
    return toks + [toks[i] + " " + toks[i + 1] for i in range(len(toks) - 1)]


def char_feats(doc: str) -> list[str]:
    s = doc.replace(" ", "")
    return [s[i : i + n] for n in (1, 2, 3) for i in range(len(s) - n + 1)]


def hash_counts(feats: list[str]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for f in feats:
        i = zlib.crc32(f.encode("utf-8")) % N_FEATURES
        counts[i] = counts.get(i, 0) + 1
    return counts


def _block(counts: dict[int, int], idf: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
    val = (1.0 + np.log(tf)) * idf[idx]
    norm = float(np.sqrt(np.dot(val, val))) or 1.0
    return idx + offset, (val / norm).astype(np.float32)


def vectorize(doc: str, idf_w: np.ndarray, idf_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sparse feature vector (indices, values) of one normalised document."""
    iw, vw = _block(hash_counts(word_feats(doc)), idf_w, 0)
    ic, vc = _block(hash_counts(char_feats(doc)), idf_c, N_FEATURES)
    return np.concatenate([iw, ic]), np.concatenate([vw, vc])


@dataclass
class CategoryModel:
    """Takes the normalised token string (tokens joined by spaces, see :func:`nlu.text.tokens`)."""

    c: float = 0.5
    classes: list[str] = field(default_factory=list)
    idf_w: Any = None
    idf_c: Any = None
    coef: Any = None  # (n_classes, 2 * N_FEATURES)
    intercept: Any = None
    calib_coef: Any = None
    calib_intercept: Any = None
    _w: Any = None

    # ---- fitting (scikit-learn) ----
    def _matrix(self, docs: list[str], fit: bool = False) -> Any:
        from scipy.sparse import csr_matrix

        wc = [hash_counts(word_feats(d)) for d in docs]
        cc = [hash_counts(char_feats(d)) for d in docs]
        if fit:
            n = len(docs)
            for name, counts in (("idf_w", wc), ("idf_c", cc)):
                df = np.zeros(N_FEATURES, dtype=np.float64)
                for cnt in counts:
                    df[np.fromiter(cnt.keys(), dtype=np.int64, count=len(cnt))] += 1
                setattr(self, name, (np.log((1 + n) / (1 + df)) + 1).astype(np.float32))
        indptr = [0]
        indices: list[np.ndarray] = []
        data: list[np.ndarray] = []
        for a, b in zip(wc, cc, strict=True):
            iw, vw = _block(a, self.idf_w, 0)
            ic, vc = _block(b, self.idf_c, N_FEATURES)
            indices += [iw, ic]
            data += [vw, vc]
            indptr.append(indptr[-1] + len(iw) + len(ic))
        return csr_matrix(
            (
                np.concatenate(data) if data else np.zeros(0),
                np.concatenate(indices) if indices else np.zeros(0, int),
                indptr,
            ),
            shape=(len(docs), 2 * N_FEATURES),
            dtype=np.float64,
        )

    def fit(self, docs: list[str], labels: list[str], progress: Any = None) -> CategoryModel:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import LinearSVC

        y = np.asarray(labels)
        x = self._matrix(docs, fit=True)
        self.classes = sorted(set(labels))
        scores = np.zeros((len(docs), len(self.classes)))
        n_splits = max(2, min(5, int(min(np.unique(y, return_counts=True)[1]))))
        for tr, te in StratifiedKFold(n_splits, shuffle=True, random_state=0).split(x, y):
            m = LinearSVC(C=self.c, class_weight="balanced").fit(x[tr], y[tr])
            s = m.decision_function(x[te])
            scores[te] = s if s.ndim == 2 else np.column_stack([-s, s])
            if progress:
                progress("fold")
        cal = LogisticRegression(C=10.0, max_iter=1000).fit(scores, y)
        coef = (
            cal.coef_ if cal.coef_.shape[0] == len(self.classes) else np.vstack([-cal.coef_, cal.coef_]) / 2
        )
        icp = (
            cal.intercept_
            if cal.intercept_.shape[0] == len(self.classes)
            else np.r_[-cal.intercept_, cal.intercept_] / 2
        )
        self.calib_coef, self.calib_intercept = coef, icp
        svm = LinearSVC(C=self.c, class_weight="balanced").fit(x, y)
        w = svm.coef_ if svm.coef_.shape[0] == len(self.classes) else np.vstack([-svm.coef_, svm.coef_])
        b = (
            svm.intercept_
            if svm.intercept_.shape[0] == len(self.classes)
            else np.r_[-svm.intercept_, svm.intercept_]
        )
        self.coef = w.astype(np.float16)  # stored compactly; float32 at inference
        self.intercept = b.astype(np.float32)
        self._w = None
        return self

    # ---- inference (numpy only) ----
    def weights(self) -> np.ndarray:
        if self._w is None:
            self._w = np.ascontiguousarray(np.asarray(self.coef, dtype=np.float32).T)
        return np.asarray(self._w)

    def decision_one(self, doc: str) -> np.ndarray:
        idx, val = vectorize(doc, self.idf_w, self.idf_c)
        return np.asarray(val @ self.weights()[idx], dtype=np.float64) + self.intercept

    def proba_one(self, doc: str) -> np.ndarray:
        z = self.decision_one(doc) @ np.asarray(self.calib_coef).T + self.calib_intercept
        z = z - z.max()
        p = np.exp(z)
        return np.asarray(p / p.sum())

    def predict_proba(self, docs: list[str]) -> np.ndarray:
        return np.vstack([self.proba_one(d) for d in docs])

    # ---- storage (plain arrays: np.savez, no pickle) ----
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "cat_idf_w": self.idf_w.astype(np.float16),
            "cat_idf_c": self.idf_c.astype(np.float16),
            "cat_coef": np.asarray(self.coef, dtype=np.float16),
            "cat_intercept": np.asarray(self.intercept, dtype=np.float32),
            "cat_calib_coef": np.asarray(self.calib_coef, dtype=np.float64),
            "cat_calib_intercept": np.asarray(self.calib_intercept, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: Any, classes: list[str]) -> CategoryModel:
        return cls(
            classes=list(classes),
            idf_w=np.asarray(arrays["cat_idf_w"], dtype=np.float32),
            idf_c=np.asarray(arrays["cat_idf_c"], dtype=np.float32),
            coef=arrays["cat_coef"],
            intercept=np.asarray(arrays["cat_intercept"], dtype=np.float32),
            calib_coef=np.asarray(arrays["cat_calib_coef"]),
            calib_intercept=np.asarray(arrays["cat_calib_intercept"]),
        )


class Taxonomy:
    """Three-level taxonomy; suggests level 2/3 under a level-1 class when the text names it."""

    def __init__(self, rows: list[tuple[str, str, str]]):
        self.rows = rows
        self.level1 = sorted({r[0] for r in rows})

    @staticmethod
    def _bigrams(s: str) -> set[str]:
        return {s[i : i + 2] for i in range(len(s) - 1)} or {s}

    def suggest(self, level1: str, text: str) -> tuple[str, str]:
        best: tuple[float, str, str] = (0.0, "", "")
        l2_best: dict[str, float] = {}
        for l1, l2, l3 in self.rows:
            if l1 != level1:
                continue
            if l3 and l3 != "其他":
                bg = self._bigrams(l3)
                s = sum(1 for b in bg if b in text) / len(bg)
                if s > best[0]:
                    best = (s, l2, l3)
            bg2 = self._bigrams(l2)
            l2_best[l2] = max(l2_best.get(l2, 0.0), sum(1 for b in bg2 if b in text) / len(bg2))
        if best[0] >= 0.5:
            return best[1], best[2]
        if l2_best:
            l2, s = max(l2_best.items(), key=lambda kv: kv[1])
            if s >= 0.5:
                return l2, ""
        return "", ""
