"""A short ticket title (≤ 20 characters) saying what and where, like a citizen's 留言主题.

Candidates are the first clauses of the message (greetings and self-introductions stripped), each
prefixed with the short location when the clause does not already name it. A linear model over
hashed clause features (position, length, character bigrams, problem words) — trained on the
citizens' own (title, detail) pairs in messages.csv to predict ROUGE-L against the title — picks
the best candidate. Without a trained model the first clause that states a problem is used.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np

from .base import Location

MAX_LEN = 20
N_FEATURES = 2**16
MAX_CANDIDATES = 12
_CLAUSE = re.compile(r"[^，,。.！!？?；;：:\n、]+")
_OPENERS = re.compile(
    r"^(?:尊敬的[^，,。]{0,12}(?:领导|书记|市长|县长|区长|局长|主任|同志|工作人员)?(?:[，,：:]?(?:你们|您)?好)?|"
    r"(?:各位)?领导(?:你们|您)?好|(?:你们|您|你)好|我是[^，,。]{0,20}|本人[^，,。]{0,10}|我们是[^，,。]{0,20}|"
    r"现(?:向|将)?.{0,6}反映.{0,6}|特此反映|在此|今天|昨天|最近|近日|近期|目前|现在)"
)
_PROBLEM = re.compile(
    r"投诉|举报|反映|咨询|建议|求助|请求|问题|乱|违|噪|扰民|污染|拖欠|不|没有|未|无法|难|坏|破|堵|漏|臭|脏|占|"
    r"收费|补贴|补偿|工资|社保|医保|公积金|学校|入学|户口|拆迁|物业|停车|施工|垃圾|油烟|安全|隐患|怎么|如何|能否|是否"
)
_FILLER = re.compile(r"^(?:请问|你好|您好|我想|我要|想|关于|有关)|(?:的问题|问题|的情况|情况|一事|事宜)$")


# a space between two Chinese characters separates clauses as a comma does: chat lines are
# written "停水两天了 也没通知 打电话一直占线"
_SPACE_BREAK = re.compile(r"(?<=[\u4e00-\u9fff])[ \t\u3000]+(?=[\u4e00-\u9fff])")


def _clauses(text: str, spaces: bool = True) -> list[str]:
    if spaces:
        text = _SPACE_BREAK.sub("，", text)
    return [c.strip() for c in _CLAUSE.findall(text) if len(c.strip()) >= 4]


def first_clause(text: str) -> str:
    """The baseline: the first clause of the detail (up to its first punctuation mark), cut to 20
    characters."""
    cs = _clauses(text, spaces=False)
    return (cs[0] if cs else text.strip())[:MAX_LEN]


def _where(location: Location | None) -> str:
    if not location or not location.found:
        return ""
    where = location.district or location.city
    place = location.community or location.landmark or location.road or location.town
    if place:
        where = (where + place) if where and len(where + place) <= 12 else place
    return where


def with_place(subject: str, location: Location | None) -> str:
    """``subject`` with where it happened in front, unless it says so already: for a place the
    citizen gave after describing the problem (the bot asked where)."""
    return _prefixed(subject, _where(location), location)


def _prefixed(subject: str, where: str, location: Location | None) -> str:
    if not location or not where or where in subject or location.text in subject:
        return subject[:MAX_LEN]
    return (where + subject)[:MAX_LEN]


def candidates(text: str, location: Location | None = None) -> list[tuple[str, str, int]]:
    """(subject, clause, position) candidates of a message."""
    text = (text or "").strip()[:2000]
    where = _where(location)
    out: list[tuple[str, str, int]] = []
    for i, c in enumerate(_clauses(text)[:MAX_CANDIDATES]):
        c2 = _OPENERS.sub("", c).strip()
        c2 = _FILLER.sub("", c2).strip() or c2
        if len(c2) < 4:
            continue
        out.append((_prefixed(c2, where, location), c2, i))
    return out


def features(subj: str, clause: str, pos: int, n: int) -> list[str]:
    f = [
        f"pos={min(pos, 8)}",
        f"rel={int(4 * pos / max(n, 1))}",
        f"len={min(len(clause) // 4, 8)}",
        f"first2={clause[:2]}",
        f"last2={clause[-2:]}",
    ]
    f += ["b:" + clause[i : i + 2] for i in range(len(clause) - 1)]
    if subj != clause[:MAX_LEN]:
        f.append("has_where_prefix")
    if _PROBLEM.search(clause):
        f.append("problem_word")
    if re.search(r"\d{4}年|\d+月|\d+日", clause):
        f.append("has_date")
    if re.search(r"[A-Z]\d*[市区县]|[区县镇村路街]", clause):
        f.append("has_place")
    return f


def _hash(feats: list[str]) -> tuple[np.ndarray, np.ndarray]:
    counts: dict[int, float] = {}
    for x in feats:
        i = zlib.crc32(x.encode("utf-8")) % N_FEATURES
        counts[i] = counts.get(i, 0.0) + 1.0
    idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    val = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
    return idx, val / np.sqrt(val @ val)


class SubjectModel:
    def __init__(self, coef: Any = None, intercept: float = 0.0):
        self.coef = coef
        self.intercept = intercept

    def score(self, feats: list[str]) -> float:
        idx, val = _hash(feats)
        return float(val @ self.coef[idx]) + self.intercept

    def fit(self, pairs: list[tuple[str, str]], locate: Any) -> SubjectModel:
        """``pairs``: (title, detail). ``locate(text) -> Location``."""
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import Ridge

        from .evaluate import rouge_l

        rows_i: list[np.ndarray] = []
        rows_v: list[np.ndarray] = []
        y: list[float] = []
        for title, detail in pairs:
            cands = candidates(detail, locate(detail))
            for subj, clause, pos in cands:
                idx, val = _hash(features(subj, clause, pos, len(cands)))
                rows_i.append(idx)
                rows_v.append(val)
                y.append(rouge_l(subj, title))
        indptr = np.cumsum([0] + [len(i) for i in rows_i])
        x = csr_matrix((np.concatenate(rows_v), np.concatenate(rows_i), indptr), shape=(len(y), N_FEATURES))
        m = Ridge(alpha=3.0).fit(x, np.asarray(y))
        self.coef = m.coef_.astype(np.float32)
        self.intercept = float(m.intercept_)
        return self


def make_subject(
    text: str, location: Location | None = None, title: str = "", model: SubjectModel | None = None
) -> str:
    """Title if the channel gave one; else the best candidate clause (with where it happened)."""
    if title and title.strip():
        return title.strip()[:MAX_LEN]
    text = (text or "").strip()[:2000]
    if not text:
        return ""
    cands = candidates(text, location)
    if not cands:
        return text[:MAX_LEN]
    if model is not None and model.coef is not None:
        best = max(cands, key=lambda c: model.score(features(c[0], c[1], c[2], len(cands))))
        return best[0]
    return next((c[0] for c in cands if _PROBLEM.search(c[1])), cands[0][0])
