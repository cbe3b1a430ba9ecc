"""First-level category classifier: word (1-2) + char (1-3) n-grams, hashed (crc32), sublinear
TF-IDF, class-balanced linear SVM, Platt-style multinomial calibration on cross-validated scores.

Inference is plain numpy (no scikit-learn import, ~0.3 ms per message); scikit-learn is only
used to fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ngrams import KeyIndex, gram_crc32, pair_keys, vocab_keys, word_crc32

N_FEATURES = 2**19
KNN_K = 10  # neighbours whose similarity-weighted votes feed the calibrator
KNN_TOP = 128  # each training message is kept as its 128 heaviest features (size, speed)
# Keyword fallback for the first-level classes without labelled data (points: see
# CategoryModel.fallback_points). The trained model is often sure of itself on messages of
# classes it never saw, so strong keyword evidence overrides it; weaker evidence only counts
# when it is unsure. Chosen on out-of-fold predictions of the training split, where the rule
# fires on about 6 of 5,574 labelled messages (0.1 %; all of other classes, so each is an error).
FALLBACK_STRONG_POINTS = 5  # e.g. two whole taxonomy names and a word of a third: always
FALLBACK_MIN_POINTS = 3  # e.g. a whole taxonomy name and a word of another...
FALLBACK_MODEL_MAX = 0.7  # ...when the trained model's top probability is below this
FALLBACK_BASE_P = 0.45  # its probability then (+0.05 per extra point)
FALLBACK_MAX_P = 0.55  # never reaches the 0.6 low-confidence line


def _counts(buckets: np.ndarray, first_seen: bool) -> tuple[np.ndarray, np.ndarray]:
    if not first_seen:
        return np.unique(buckets, return_counts=True)
    u, first, n = np.unique(buckets, return_index=True, return_counts=True)
    order = np.argsort(first)
    return u[order], n[order]


def word_hash_counts(doc: str, first_seen: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(bucket, count) of the document's words and pairs of neighbouring words joined by a space,
    crc32-hashed (:func:`nlu.ngrams.word_crc32`), in bucket order, or (``first_seen``, for training)
    in the order they first occur, as the Python loop before round 13 gave them: the solver sums
    a row's features in that order, and the committed artifact was fitted so (bucket order moves
    the held-out macro-F1 by ~0.001 either way)."""
    return _counts(word_crc32(doc.split()) % N_FEATURES, first_seen)


def char_hash_counts(doc: str, first_seen: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(bucket, count) of the document's character 1-3-grams, spaces removed, crc32-hashed
    (:func:`nlu.ngrams.gram_crc32`); ``first_seen`` as in :func:`word_hash_counts`."""
    return _counts(gram_crc32(doc.replace(" ", "")) % N_FEATURES, first_seen)


def _block(
    counts: tuple[np.ndarray, np.ndarray], idf: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    idx, n = counts
    if not len(idx):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    val = (1.0 + np.log(n.astype(np.float32))) * idf[idx]
    norm = float(np.sqrt(np.dot(val, val))) or 1.0
    return idx + offset, (val / norm).astype(np.float32)


def vectorize(doc: str, idf_w: np.ndarray, idf_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sparse feature vector (indices, values) of one normalised document."""
    iw, vw = _block(word_hash_counts(doc), idf_w, 0)
    ic, vc = _block(char_hash_counts(doc), idf_c, N_FEATURES)
    return np.concatenate([iw, ic]), np.concatenate([vw, vc])


def knn_votes(sim: np.ndarray, labels: np.ndarray, n_classes: int, k: int = KNN_K) -> np.ndarray:
    """Similarity-weighted class votes of the ``k`` most similar training messages, as shares."""
    k = min(k, len(sim))
    if k <= 0:
        return np.zeros(n_classes)
    top = np.argpartition(-sim, k - 1)[:k]
    votes = np.bincount(labels[top], weights=np.maximum(sim[top], 0.0), minlength=n_classes)
    total = votes.sum()
    return np.asarray(votes / total if total > 0 else votes, dtype=np.float64)


class TermMatcher:
    """Finds many short terms in a text fast: the share of each term's character bigrams present
    (the text's bigrams looked up by numpy, :class:`nlu.ngrams.KeyIndex`), then a substring check
    only for the terms whose bigrams are all there. ``distinct``: each distinct bigram of a term
    counts once and a one-character term is looked for as a substring (how
    :meth:`Taxonomy.suggest` reads names); otherwise a term's bigrams count as often as they occur
    and a one-character term is never found (how the classifier's features were trained)."""

    def __init__(self, terms: list[str], distinct: bool = False):
        self.terms = terms
        if distinct:
            grams = [sorted(Taxonomy.bigrams(t)) for t in terms]
        else:
            grams = [[t[i : i + 2] for i in range(len(t) - 1)] or [t] for t in terms]
        self.vocab = sorted({g for gs in grams for g in gs})
        pos = {g: i for i, g in enumerate(self.vocab)}
        self._flat = np.asarray([pos[g] for gs in grams for g in gs], dtype=np.int64)
        self._lens = np.asarray([len(gs) for gs in grams], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(self._lens)[:-1]]).astype(np.int64)
        pairs = [(g, i) for g, i in pos.items() if len(g) == 2]
        self._pairs = KeyIndex(
            vocab_keys([g for g, _ in pairs]), np.array([i for _, i in pairs], dtype=np.int64)
        )
        self._short = [(i, g) for g, i in pos.items() if len(g) < 2] if distinct else []

    def coverage(self, s: str, keys: np.ndarray | None = None) -> np.ndarray:
        """Per term, the share of its bigrams in ``s`` (``keys``: :func:`nlu.ngrams.pair_keys`
        of ``s``, when the caller has them)."""
        if not self.terms:
            return np.zeros(0)
        pv = np.zeros(len(self.vocab), dtype=np.int64)
        pv[self._pairs.lookup(pair_keys(s) if keys is None else keys)] = 1
        for i, g in self._short:
            pv[i] = g in s
        return np.asarray(np.add.reduceat(pv[self._flat], self._starts) / self._lens)

    def whole(self, s: str, cov: np.ndarray) -> np.ndarray:
        """Boolean per term: found as written (``cov`` from :meth:`coverage` on the same text)."""
        out = np.zeros(len(self.terms), dtype=bool)
        for i in np.flatnonzero(cov >= 1.0):
            out[i] = self.terms[i] in s
        return out


class TaxonomyFeatures:
    """Evidence per first-level class from the official taxonomy's level-2/3 names: for each
    class, the best share of a name's character bigrams found in the text, and log(1 + number of
    its names found whole). Fed to the calibrator beside the SVM scores."""

    def __init__(self, terms: list[str], owners: list[list[int]], level1: list[str]):
        self.terms, self.owners, self.level1 = terms, owners, level1
        self.matcher = TermMatcher(terms)
        self._pair_term = np.asarray([i for i, o in enumerate(owners) for _ in o], dtype=np.int64)
        self._pair_owner = np.asarray([k for o in owners for k in o], dtype=np.int64)

    @classmethod
    def from_taxonomy(cls, taxonomy: list[tuple[str, str, str]]) -> TaxonomyFeatures:
        level1 = sorted({r[0] for r in taxonomy})
        owners: dict[str, set[int]] = {}
        for l1, l2, l3 in taxonomy:
            for name in (l2, l3):
                if name and "其他" not in name:
                    owners.setdefault(name, set()).add(level1.index(l1))
        terms = sorted(owners)
        return cls(terms, [sorted(owners[t]) for t in terms], level1)

    @property
    def size(self) -> int:
        return 2 * len(self.level1)

    def one(self, doc: str) -> np.ndarray:
        s = doc.replace(" ", "")
        n = len(self.level1)
        f = np.zeros(2 * n)
        if not self.terms:
            return f
        cov = self.matcher.coverage(s)
        whole = self.matcher.whole(s, cov)
        np.maximum.at(f, self._pair_owner, cov[self._pair_term])
        np.add.at(f, n + self._pair_owner, whole[self._pair_term].astype(np.float64))
        f[n:] = np.log1p(f[n:])
        return f

    def many(self, docs: list[str]) -> np.ndarray:
        return np.vstack([self.one(d) for d in docs]) if docs else np.zeros((0, self.size))

    def to_arrays(self) -> dict[str, np.ndarray]:
        flat = [f"{t}\t{','.join(map(str, o))}" for t, o in zip(self.terms, self.owners, strict=True)]
        return {"cat_tax_terms": np.asarray(flat, dtype=str), "cat_tax_level1": np.asarray(self.level1)}

    @classmethod
    def from_arrays(cls, arrays: Any) -> TaxonomyFeatures:
        terms, owners = [], []
        for row in arrays["cat_tax_terms"]:
            t, o = str(row).split("\t")
            terms.append(t)
            owners.append([int(k) for k in o.split(",")])
        return cls(terms, owners, [str(x) for x in arrays["cat_tax_level1"]])


@dataclass
class CategoryModel:
    """Takes the normalised token string (tokens joined by spaces, see :func:`nlu.text.tokens`)."""

    c: float = 0.5
    classes: list[str] = field(default_factory=list)
    taxonomy_features: TaxonomyFeatures | None = None
    # nearest neighbours: the training messages' pruned vectors as postings sorted by feature
    knn_feat: Any = None  # feature index of each posting (sorted)
    knn_doc: Any = None  # training message of each posting
    knn_w: Any = None  # its weight
    knn_labels: Any = None  # class index of each training message
    idf_w: Any = None
    idf_c: Any = None
    coef: Any = None  # (n_classes, 2 * N_FEATURES)
    intercept: Any = None
    calib_coef: Any = None
    calib_intercept: Any = None
    # ``classes`` = the trained classes, then the keyword-only fallback classes (see add_fallback)
    n_trained: int = 0
    fallback_terms: list[str] = field(default_factory=list)
    fallback_term_class: Any = None  # index into fallback_classes, one per term
    fallback_term_whole: Any = None  # the term is a whole taxonomy name (not a word of one)
    _w: Any = None
    _fb_matcher: Any = None
    _knn_start: Any = None

    @property
    def trained_classes(self) -> list[str]:
        return self.classes[: self.n_trained]

    @property
    def fallback_classes(self) -> list[str]:
        """First-level classes without labelled data, predicted only from taxonomy keywords."""
        return self.classes[self.n_trained :]

    # ---- fitting (scikit-learn) ----
    def _matrix(self, docs: list[str], fit: bool = False) -> Any:
        from scipy.sparse import csr_matrix

        wc = [word_hash_counts(d, first_seen=True) for d in docs]
        cc = [char_hash_counts(d, first_seen=True) for d in docs]
        if fit:
            n = len(docs)
            for name, counts in (("idf_w", wc), ("idf_c", cc)):
                df = np.zeros(N_FEATURES, dtype=np.float64)
                for idx, _ in counts:
                    df[idx] += 1
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

    def _calib_input(self, scores: np.ndarray, docs: list[str], knn: np.ndarray | None) -> np.ndarray:
        parts = [scores]
        if self.taxonomy_features is not None:
            parts.append(self.taxonomy_features.many(docs))
        if knn is not None:
            parts.append(knn)
        return np.hstack(parts)

    @staticmethod
    def _prune(x: Any, top: int) -> Any:
        """Each row keeps its ``top`` largest entries (not re-normalised)."""
        from scipy.sparse import csr_matrix

        x = x.tocsr()
        rows, cols, vals = [], [], []
        for i in range(x.shape[0]):
            a, b = x.indptr[i], x.indptr[i + 1]
            v, c = x.data[a:b], x.indices[a:b]
            if len(v) > top:
                keep = np.argpartition(-v, top - 1)[:top]
                v, c = v[keep], c[keep]
            rows.append(np.full(len(v), i))
            cols.append(c)
            vals.append(v)
        return csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=x.shape)

    def _knn_oof(self, x: Any, xp: Any, y_idx: np.ndarray, folds: list[Any]) -> np.ndarray:
        out = np.zeros((x.shape[0], len(self.classes)))
        for tr, te in folds:
            sim = (x[te] @ xp[tr].T).toarray()
            for j, i in enumerate(te):
                out[i] = knn_votes(sim[j], y_idx[tr], len(self.classes))
        return out

    def _set_postings(self, xp: Any, y_idx: np.ndarray) -> None:
        c = xp.tocoo()
        order = np.lexsort((c.row, c.col))
        self.knn_feat = c.col[order].astype(np.int32)
        self.knn_doc = c.row[order].astype(np.uint16 if xp.shape[0] < 2**16 else np.int32)
        self.knn_w = c.data[order].astype(np.float16)
        self.knn_labels = y_idx.astype(np.int8)
        self._knn_start = None

    def fit(
        self,
        docs: list[str],
        labels: list[str],
        progress: Any = None,
        taxonomy: list[tuple[str, str, str]] | None = None,
        groups: list[int] | None = None,
        knn: bool = True,
    ) -> CategoryModel:
        """``taxonomy``: add :class:`TaxonomyFeatures` to the calibrator's input. ``knn``: add the
        votes of the nearest training messages. ``groups`` (near-duplicate clusters): the
        out-of-fold scores the calibrator learns from never see a message's near-duplicates
        (without them the neighbours' votes would look better than they are on new messages)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
        from sklearn.svm import LinearSVC

        y = np.asarray(labels)
        x = self._matrix(docs, fit=True)
        self.classes = sorted(set(labels))
        self.n_trained = len(self.classes)
        self.fallback_terms, self.fallback_term_class, self.fallback_term_whole = [], [], []
        scores = np.zeros((len(docs), len(self.classes)))
        n_splits = max(2, min(5, int(min(np.unique(y, return_counts=True)[1]))))
        if groups is not None:
            folds = list(StratifiedGroupKFold(n_splits, shuffle=True, random_state=0).split(x, y, groups))
        else:
            folds = list(StratifiedKFold(n_splits, shuffle=True, random_state=0).split(x, y))
        for tr, te in folds:
            m = LinearSVC(C=self.c, class_weight="balanced", random_state=0).fit(x[tr], y[tr])
            s = m.decision_function(x[te])
            scores[te] = s if s.ndim == 2 else np.column_stack([-s, s])
            if progress:
                progress("fold")
        self.taxonomy_features = TaxonomyFeatures.from_taxonomy(taxonomy) if taxonomy else None
        y_idx = np.searchsorted(self.classes, y)
        oof_knn = None
        self.knn_feat = self.knn_doc = self.knn_w = self.knn_labels = None
        if knn:
            xp = self._prune(x, KNN_TOP)
            oof_knn = self._knn_oof(x, xp, y_idx, folds)
            self._set_postings(xp, y_idx)
        cal = LogisticRegression(C=10.0, max_iter=3000).fit(self._calib_input(scores, docs, oof_knn), y)
        coef = (
            cal.coef_ if cal.coef_.shape[0] == len(self.classes) else np.vstack([-cal.coef_, cal.coef_]) / 2
        )
        icp = (
            cal.intercept_
            if cal.intercept_.shape[0] == len(self.classes)
            else np.r_[-cal.intercept_, cal.intercept_] / 2
        )
        self.calib_coef, self.calib_intercept = coef, icp
        svm = LinearSVC(C=self.c, class_weight="balanced", random_state=0).fit(x, y)
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

    def knn_one(self, idx: np.ndarray, val: np.ndarray) -> np.ndarray:
        """Neighbours' votes for one vectorised message (postings lookup, numpy only)."""
        if self._knn_start is None:  # where each feature's postings start (built once, 8 MB)
            self._knn_start = np.searchsorted(self.knn_feat, np.arange(2 * N_FEATURES + 1))
        lo = self._knn_start[idx]
        n = self._knn_start[idx + 1] - lo
        keep = n > 0
        lo, n, q = lo[keep], n[keep], val[keep]
        if not len(n):
            return np.zeros(self.n_trained)
        starts = np.repeat(lo - np.cumsum(n) + n, n)
        pos = starts + np.arange(int(n.sum()))
        weights = self.knn_w[pos].astype(np.float64) * np.repeat(q, n)
        sim = np.bincount(self.knn_doc[pos], weights=weights, minlength=len(self.knn_labels))
        return knn_votes(sim, self.knn_labels, self.n_trained)

    def proba_one(self, doc: str) -> np.ndarray:
        """Probabilities over :attr:`classes` (trained classes first, then fallback classes)."""
        idx, val = vectorize(doc, self.idf_w, self.idf_c)
        x = np.asarray(val @ self.weights()[idx], dtype=np.float64) + self.intercept
        if self.taxonomy_features is not None:
            x = np.concatenate([x, self.taxonomy_features.one(doc)])
        if self.knn_feat is not None:
            x = np.concatenate([x, self.knn_one(idx, val)])
        z = x @ np.asarray(self.calib_coef).T + self.calib_intercept
        z = z - z.max()
        p = np.exp(z)
        p = p / p.sum()
        if not self.fallback_classes:
            return np.asarray(p)
        extra = np.zeros(len(self.fallback_classes))
        points = self.fallback_points(doc)
        if points:
            k, n = max(points.items(), key=lambda kv: kv[1])
            if n >= FALLBACK_STRONG_POINTS or (n >= FALLBACK_MIN_POINTS and p.max() < FALLBACK_MODEL_MAX):
                # a keyword-only guess is never confident: below the 0.6 low-confidence line
                extra[k] = min(FALLBACK_MAX_P, FALLBACK_BASE_P + 0.05 * (n - FALLBACK_MIN_POINTS))
        return np.asarray(np.concatenate([p * (1.0 - extra.sum()), extra]))

    def fallback_points(self, doc: str) -> dict[int, int]:
        """Keyword evidence per fallback class: a whole taxonomy name found in the text counts 2,
        a word of one counts 1; a keyword inside a longer one found too is not counted again."""
        s = doc.replace(" ", "")
        if self._fb_matcher is None:
            self._fb_matcher = TermMatcher(self.fallback_terms)
        m = self._fb_matcher
        found = np.flatnonzero(m.whole(s, m.coverage(s))).tolist()
        terms = self.fallback_terms
        points: dict[int, int] = {}
        for i in found:
            if any(j != i and terms[i] in terms[j] for j in found):
                continue
            k = int(self.fallback_term_class[i])
            points[k] = points.get(k, 0) + (2 if self.fallback_term_whole[i] else 1)
        return points

    def add_fallback(
        self, taxonomy: list[tuple[str, str, str]], docs: list[str], max_df: float = 0.002
    ) -> CategoryModel:
        """Keywords for the first-level classes that have no labelled data: the level-2/3 names
        under them in the taxonomy, plus their jieba words of >= 2 characters, kept only when
        specific — found in at most ``max_df`` of the labelled documents (all of which belong to
        other classes, so any occurrence there is a false alarm) and named under one class only."""
        from .text import cut

        trained = set(self.trained_classes)
        cand: dict[str, set[str]] = {}
        whole: set[str] = set()
        for l1, l2, l3 in taxonomy:
            for name in (l2, l3):
                if not name or "其他" in name:
                    continue
                whole.add(name)
                words = [name] + [w for w in cut(name) if len(w) >= 2 and w != name]
                for w in words:
                    cand.setdefault(w, set()).add(l1)
        squashed = [d.replace(" ", "") for d in docs]
        limit = max(1, int(max_df * len(docs)))
        terms: list[tuple[str, str]] = []
        for w, owners in sorted(cand.items()):
            if len(owners) != 1:
                continue
            (owner,) = owners
            if owner in trained or len(w) < 2:
                continue
            if sum(1 for d in squashed if w in d) > limit:
                continue
            terms.append((w, owner))
        fallback = sorted({o for _, o in terms})
        self.classes = self.trained_classes + fallback
        idx = {c: i for i, c in enumerate(fallback)}
        self.fallback_terms = [w for w, _ in terms]
        self.fallback_term_class = [idx[o] for _, o in terms]
        self.fallback_term_whole = [w in whole for w, _ in terms]
        self._fb_matcher = None
        return self

    def predict_proba(self, docs: list[str]) -> np.ndarray:
        """Probabilities over :attr:`classes`."""
        return np.vstack([self.proba_one(d) for d in docs])

    # ---- storage (plain arrays: np.savez, no pickle) ----
    def to_arrays(self) -> dict[str, np.ndarray]:
        tax = self.taxonomy_features.to_arrays() if self.taxonomy_features is not None else {}
        knn = (
            {
                "cat_knn_feat": self.knn_feat,
                "cat_knn_doc": self.knn_doc,
                "cat_knn_w": self.knn_w,
                "cat_knn_labels": self.knn_labels,
            }
            if self.knn_feat is not None
            else {}
        )
        return {
            **tax,
            **knn,
            "cat_idf_w": self.idf_w.astype(np.float16),
            "cat_idf_c": self.idf_c.astype(np.float16),
            "cat_coef": np.asarray(self.coef, dtype=np.float16),
            "cat_intercept": np.asarray(self.intercept, dtype=np.float32),
            "cat_calib_coef": np.asarray(self.calib_coef, dtype=np.float64),
            "cat_calib_intercept": np.asarray(self.calib_intercept, dtype=np.float64),
            "cat_n_trained": np.asarray(self.n_trained),
            "cat_fb_terms": np.asarray(self.fallback_terms, dtype=str),
            "cat_fb_class": np.asarray(self.fallback_term_class or [], dtype=np.int16),
            "cat_fb_whole": np.asarray(self.fallback_term_whole or [], dtype=bool),
        }

    @classmethod
    def from_arrays(cls, arrays: Any, classes: list[str]) -> CategoryModel:
        """``classes`` as saved (trained first, then fallback classes)."""
        n = int(arrays["cat_n_trained"]) if "cat_n_trained" in arrays else len(classes)
        has_fb = "cat_fb_terms" in arrays
        return cls(
            classes=list(classes),
            n_trained=n,
            taxonomy_features=TaxonomyFeatures.from_arrays(arrays) if "cat_tax_terms" in arrays else None,
            knn_feat=np.asarray(arrays["cat_knn_feat"]) if "cat_knn_feat" in arrays else None,
            knn_doc=np.asarray(arrays["cat_knn_doc"]) if "cat_knn_feat" in arrays else None,
            knn_w=np.asarray(arrays["cat_knn_w"]) if "cat_knn_feat" in arrays else None,
            knn_labels=np.asarray(arrays["cat_knn_labels"]) if "cat_knn_feat" in arrays else None,
            fallback_terms=[str(t) for t in arrays["cat_fb_terms"]] if has_fb else [],
            fallback_term_class=[int(k) for k in arrays["cat_fb_class"]] if has_fb else [],
            fallback_term_whole=[bool(k) for k in arrays["cat_fb_whole"]] if has_fb else [],
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
        # per level 1: its level-3 names (with their level 2) and its distinct level-2 names, in
        # the taxonomy's order, each set's bigrams indexed once (suggest runs on every parse)
        self._l3: dict[str, tuple[list[tuple[str, str]], TermMatcher]] = {}
        self._l2: dict[str, tuple[list[str], TermMatcher]] = {}
        for l1 in self.level1:
            mine = [r for r in rows if r[0] == l1]
            l3s = [(l2, l3) for _, l2, l3 in mine if l3 and l3 != "其他"]
            l2s = list(dict.fromkeys(l2 for _, l2, _ in mine))
            self._l3[l1] = (l3s, TermMatcher([l3 for _, l3 in l3s], distinct=True))
            self._l2[l1] = (l2s, TermMatcher(l2s, distinct=True))

    @staticmethod
    def bigrams(s: str) -> set[str]:
        return {s[i : i + 2] for i in range(len(s) - 1)} or {s}

    def suggest(self, level1: str, text: str) -> tuple[str, str]:
        """The level-3 name (and its level 2) with the largest share of its bigrams in the text,
        if at least half; else the level-2 name so; else nothing. Ties: the taxonomy's order."""
        if level1 not in self._l3:
            return "", ""
        keys = pair_keys(text)
        l3s, m3 = self._l3[level1]
        s3 = m3.coverage(text, keys)
        if len(s3) and s3.max() >= 0.5:
            return l3s[int(np.argmax(s3))]
        l2s, m2 = self._l2[level1]
        s2 = m2.coverage(text, keys)
        if len(s2) and s2.max() >= 0.5:
            return l2s[int(np.argmax(s2))], ""
        return "", ""
