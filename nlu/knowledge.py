"""The knowledge base (知识库): the hotline's standard answers (答复口径) to consultations (咨询).

A 12345 centre answers many questions from its knowledge base instead of filing them. Each entry
is a standard question (标准问), other ways citizens ask it (相似问) and the answer; the city's
editors keep them in a YAML file (``config/knowledge.yml``, docs/knowledge.md) that the process
re-reads when it changes (:func:`knowledge_for`).

Matching is lexical, after the text is normalised the way citizens vary a question: full-width,
traditional characters, case, openers (你好, 请问), particles (了, 吗, 呢), question words (咋, 如何
→ 怎么; 受不受理 → 是否受理) and a few of the service's own words (工单号, 撤回, 照片). Features are
characters and the character bigrams inside jieba's words (digit runs and Latin words are one
token), weighted by IDF over the entries. The score of an entry is precision^0.6 × recall^0.4:
precision is the share of the message (IDF-weighted) that the entry's phrasings use, together (a
paraphrase may mix two 相似问's words); recall is the share of its best phrasing that the message
says (weighted by the square root of IDF: in a large base the words of the question, 材料 or 流程,
are shared by many entries yet are what the citizen asks). Both are normalised, so scores compare
across messages, and words no entry uses weigh most against precision: a long message, or one
that says much more than a question, scores low whatever it shares. Four discounts then make the
score mean "this message asks this question": a statement matched to a phrasing that asks
("转人工" is the command, "怎么转人工" the question) or to little of one that does not ("环境污染"
of "环境污染所需材料清单"); a concrete problem the phrasing does not name (坏了, 噪音, 一周了, a
place); a word negated on one side only (不受理 / 受理); an entry's required ``keywords`` missing.

Wrongly answering a complaint is the worst failure (the citizen's problem would not be filed), so
:meth:`KnowledgeBase.answer` answers only a clear best: at or above the threshold and ahead of
every other entry by :data:`TIE_MARGIN`.
"""

from __future__ import annotations

import gc
import os
import re
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .text import clean, cut, to_simplified

if TYPE_CHECKING:
    from config.settings import Settings

log = structlog.get_logger(__name__)

DEFAULT_THRESHOLD = 0.5  # the bot's bar (HOTLINE_KNOWLEDGE_THRESHOLD): docs/knowledge.md has the figures
TIE_MARGIN = 0.05  # the best must lead every other entry by this much to be answered
SEARCH_FLOOR = 0.1  # search lists nothing weaker: below it two texts share a character or two
MAX_ANSWER = 1000
MAX_PHRASING = 100  # a question, not a paragraph
MAX_QUERY = MAX_PHRASING  # characters of a message matched (normalised): as long as a question can be
MIN_QUESTION = 4  # a message shorter than this once normalised ("工单", "人工") is searched, not answered
CHECK_EVERY_S = 2.0  # knowledge_for looks at the file's mtime at most this often
STALE_DAYS = 365  # `check` warns about an answer last checked longer ago
NEAR_DUPLICATE = 0.8  # `check` warns about a phrasing another entry scores this high on
_CANDIDATES = 32  # phrasings re-scored with the discounts, best undiscounted score first
_UNIGRAM = 0.5  # weight of a single character against a bigram: order and context matter more
RECALL_IDF = 0.5  # recall weighs grams by IDF to this power (precision: to the power 1)
# score = precision^0.6 × recall^0.4: what a message says beyond the entry (a complaint's details)
# counts more than what it leaves out of a phrasing (a paraphrase's omissions)
PRECISION_EXP = 0.6

# discounts (multiplied into the score); the first two leave at most 0.45, below the default bar
STATEMENT = 0.45  # a statement or command matched to a phrasing that asks, or to less than…
STATEMENT_RECALL = 0.7  # …this share of the grams of one that does not ("环境污染" of "环境污染所需材料清单")
NO_KEYWORD = 0.45  # none of the entry's required keywords in the message
CONCRETE = 0.6  # each concrete problem the message names and the phrasing does not (at most two)
POLARITY = 0.6  # a word negated on one side only ("不受理" against "受理")

_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Openers that carry nothing, stripped at the start (repeatedly): "你好，请问一下，…"
_OPENER = re.compile(
    r"^(?:你们好|你好|您好|hi|hello|哈喽|喂|在吗|在不在|有人吗|早上好|上午好|下午好|晚上好|小助手|"
    r"请教(?:一下|下)?|打扰(?:一下|了)?|麻烦(?:你|您)?|我?想(?:问|咨询|了解|知道)(?:一下|下)?|问(?:一下|下)|"
    r"咨询(?:一下|下)|了解(?:一下|下))+"
)
_FILLERS = re.compile(
    r"请问|一下|你们好|你好|您好|(?<!目)的(?![确士])|我们|咱们|我|你们|您|你|咱|呀|啊|哦|哈|啦|嘛|呢|吧|吗"
)
# 了 as a particle, not in 了解 / 为了 / 除了 / 不了了之
_LE = re.compile(r"(?<![为除])了(?!解)")
# Question words, one form each (longest alternatives first)
_QUESTION_FORMS: list[tuple[str, str]] = [
    # how is it (a state: "我的工单怎么样了") is not how to (a way: "怎样查工单")
    (r"怎么样|咋样|怎样了|如何了|咋了", "怎么样"),
    (r"应该怎么|应该如何|该怎么|该如何|要怎么|要如何|如何才能|怎么才能|怎样|如何|咋个|咋|怎麽|怎么", "怎么"),
    (r"为啥|为何|干嘛|为什么", "为什么"),
    (r"啥|甚么|什么", "什么"),
    (r"可不可以|可以不可以|能不能|能否|可否|行不行|可以|能够", "能否"),
    (r"多长时间|多少时间|多少天|多久", "多久"),
    (r"哪儿|哪里|在哪", "哪里"),
    (r"是不是|是否", "是否"),
    (r"有没有|有无", "有没有"),
    # the service's own words, as citizens vary them
    (r"工单编号|工单号码|工单号|受理编号|受理号|单号|编号", "工单号"),
    (r"撤销|撤回|撤掉|撤单", "撤回"),
    (r"图片|相片|照片", "照片"),
    (r"泄漏|泄露|外泄", "泄露"),
    (r"进展|进度", "进度"),
]
_QUESTION_FIRST = "".join(sorted({alt[0] for p, _ in _QUESTION_FORMS for alt in p.split("|")}))
# (the lookahead lets the scan skip most characters at once: 5 → 2 µs a phrasing)
_QUESTION_RE = re.compile(
    f"(?=[{_QUESTION_FIRST}])(?:" + "|".join(f"({p})" for p, _ in _QUESTION_FORMS) + ")"
)
_QUESTION_OUT = [out for _, out in _QUESTION_FORMS]
_A_NOT_A = re.compile(r"([\u4e00-\u9fff])不\1")  # 受不受理, 会不会, 管不管: a question, not a negation
# a negated word: "不受理" asks the opposite of "受理" (有没有 is a question; 没人管 is concrete)
_NEGATED = re.compile(r"(?:不|没有|没|未|非)([\u4e00-\u9fff])")
# A question: a question word or mark, "A还是B" (not 还是不亮: still), a closing 吗/呢/没/不
_ASKS = re.compile(
    r"[?？]|请问|还是(?!没|不|一样|老样子|那样|很)|怎么|如何|咋|怎样|什么|啥|为何|哪|多久|多长|多少|"
    r"几[天个时点号]|能否|能不能|可不可以|可否|可以吗|是否|是不是|有没有|会不会|要不要|需不需要|用不用|"
    r"行不行|谁|[吗么呢没不][。.!！~～\s]*$"
)
# What a complaint or a request names and a question about the service does not: a fault, a
# nuisance, money owed, how long it has lasted, a place. Counted when the phrasing lacks it.
_CONCRETE = re.compile(
    r"坏|漏水|渗水|积水|停水|停电|断电|断水|噪音|噪声|扰民|吵|臭|脏|油烟|垃圾|污染|违建|违章|占道|堵|乱|塌|裂|"
    r"破损|损坏|故障|不亮|拖欠|欠薪|工资|克扣|诈骗|骗|打人|施工|装修|偷|盗|丢|着火|失火|起火|冒烟|受伤|"
    r"没人管|没人修|没人处理|不处理|不管|不作为|推诿|投诉|举报|物业|开发商|房东|老板|公司|学校|医院|"
    r"[一二三四五六七八九十两几半\d]+(?:天|周|个星期|星期|个月|月|年|小时)|好几天|很久|"
    r"\d+(?:号|栋|幢|单元|楼|室)|[a-z]\d*区|[\u4e00-\u9fff](?:小区|路|街|巷|村|镇|县)"
)
_TOKEN = re.compile(r"[a-z]+|\d+|[\u4e00-\u9fff]")
_NOT_TOKEN = re.compile(r"[^a-z0-9\u4e00-\u9fff]+")
_HANZI_WORD = re.compile(r"[\u4e00-\u9fff]+")


class KnowledgeError(ValueError):
    """A knowledge file that cannot be used: the message names the file, the entry (index, line,
    id) and what is wrong, one problem a line."""


class Entry(BaseModel):
    """One answer (答复口径)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str  # unique, [a-z0-9-]+, stable: logs, metrics and the console name the entry by it
    question: str  # the standard question (标准问)
    also: list[str] = []  # other ways citizens ask it (相似问)
    answer: str  # what the citizen is told
    source: str = ""  # who stands behind the answer (市人社局, 12345热线)
    updated: date | None = None  # when the answer was last checked
    # if given, the message must contain one of these (after normalisation) for the bot to answer
    # with this entry: a guard for an entry whose phrasings share words with common complaints
    keywords: list[str] = []

    @field_validator("also", "keywords", mode="before")
    @classmethod
    def _numbers_as_words(cls, value: Any) -> Any:
        # `keywords: [12345, 热线]` written in Python (YAML is read as text); `also:` left empty
        if value is None or value == "":
            return []
        if isinstance(value, list):
            return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("updated", mode="before")
    @classmethod
    def _no_date(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("id")
    @classmethod
    def _id_plain(cls, value: str) -> str:
        if not _ID.fullmatch(value) or len(value) > 64:
            raise ValueError("只能由小写字母、数字和连字符组成（如 query-progress），最长64个字符")
        return value

    @field_validator("question")
    @classmethod
    def _question_usable(cls, value: str) -> str:
        return _phrasing_ok(value)

    @field_validator("also")
    @classmethod
    def _also_usable(cls, value: list[str]) -> list[str]:
        for n, phrasing in enumerate(value, 1):
            try:
                _phrasing_ok(phrasing)
            except ValueError as exc:
                raise ValueError(f"第{n}个相似问：{exc}") from None
        return value

    @field_validator("answer")
    @classmethod
    def _answer_short(cls, value: str) -> str:
        if not value:
            raise ValueError("答复不能为空")
        if len(value) > MAX_ANSWER:
            raise ValueError(f"答复有{len(value)}个字，超过{MAX_ANSWER}字的上限，请精简")
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords_usable(cls, value: list[str]) -> list[str]:
        for word in value:
            if not _normalized(word):
                raise ValueError(f"关键词“{word}”去掉问候语和语气词后为空")
        return value

    @property
    def phrasings(self) -> list[str]:
        """The standard question and its 相似问, each once."""
        return list(dict.fromkeys([self.question, *self.also]))


def _phrasing_ok(value: str) -> str:
    if not value:
        raise ValueError("问法不能为空")
    if len(value) > MAX_PHRASING:
        raise ValueError(f"问法“{value[:20]}…”超过{MAX_PHRASING}字：请写成一句问话，不要写成段落")
    if not _normalized(value):
        raise ValueError(f"问法“{value}”去掉问候语和语气词后为空")
    return value


class Hit(BaseModel):
    entry: Entry
    score: float  # 0..1, comparable across queries (the threshold applies to it)
    matched: str  # the question or 相似问 that matched best


@dataclass(frozen=True)
class Problem:
    """What `check` reports: an error makes the file unusable, a warning is advice."""

    level: Literal["error", "warning"]
    message: str
    index: int = -1  # of the entry (0-based) the problem is about; -1: the file


# --- normalisation -------------------------------------------------------------------------------
def _cleaned(text: str) -> str:
    """NFKC, simplified, lower-case: what :func:`asks` and :func:`normalize` read."""
    return to_simplified(clean(text[: MAX_QUERY * 2])).lower()


def _folded(cleaned: str) -> str:
    # (cut before the regexes below, which cost per character)
    text = _NOT_TOKEN.sub("", cleaned[: MAX_QUERY * 2])[: MAX_QUERY + 20]
    text = _OPENER.sub("", text)
    text = _QUESTION_RE.sub(lambda m: _QUESTION_OUT[(m.lastindex or 1) - 1], text)
    text = _A_NOT_A.sub(r"是否\1", text)
    text = _FILLERS.sub("", _LE.sub("", text))
    return text[:MAX_QUERY]


def normalize(text: str) -> str:
    """The text as matching sees it: NFKC, simplified, lower-case, openers, particles and
    punctuation removed, question words in one form ("您好，請問咋查詢工單呢？" → "怎么查询工单")."""
    return _folded(_cleaned(text))


@lru_cache(maxsize=32_768)  # validation, the checks and the index all read each phrasing
def _form(phrasing: str) -> tuple[str, bool]:
    """A phrasing's normalised text, and whether it asks."""
    cleaned = _cleaned(phrasing)
    return _folded(cleaned), bool(_ASKS.search(cleaned))


def _normalized(phrasing: str) -> str:
    return _form(phrasing)[0]


def asks(text: str) -> bool:
    """The text is a question (a question word, a question mark, a closing 吗/呢/没/不), not a
    statement or a command."""
    return bool(_ASKS.search(_cleaned(text)))


def concrete(norm: str) -> set[str]:
    """The concrete problems a normalised text names (see ``_CONCRETE``); 7×24小时 is a service's
    hours, not how long a problem has lasted."""
    return {m for m in _CONCRETE.findall(norm) if not m.endswith("24小时")}


def negated(norm: str) -> frozenset[str]:
    """The words a normalised text negates, by their first character ("不受理" → {"受"})."""
    return frozenset(m.group(1) for m in _NEGATED.finditer(norm.replace("有没有", "")))


def grams(norm: str) -> set[str]:
    """Tokens (a character; a digit run or Latin word: "110" and "12345" share nothing), and the
    character bigrams inside each of jieba's words: a bigram across two words ("都受" of 都受理)
    is an accident of wording that would only count against a paraphrase."""
    out = set(_TOKEN.findall(norm))
    for word in cut(norm):
        if len(word) < 2:
            continue
        if _HANZI_WORD.fullmatch(word):
            out.update([word[i : i + 2] for i in range(len(word) - 1)])
        else:  # "a3区": tokens a, 3, 区; only bigrams with a character
            toks = _TOKEN.findall(word)
            out.update(b for b in map(str.__add__, toks, toks[1:]) if not b.isascii())
    return out


def _spans(start: np.ndarray, grams: np.ndarray) -> np.ndarray:
    """The positions of the given grams' postings, ``start[g]:start[g + 1]`` each, in one array."""
    lengths = start[grams + 1] - start[grams]
    ends = np.cumsum(lengths)
    return np.repeat(start[grams] - ends + lengths, lengths) + np.arange(ends[-1] if len(ends) else 0)


def _is_bigram(gram: str) -> bool:
    return len(gram) > 1 and not gram.isascii()


# --- the index -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Phrasing:
    entry: int  # index into entries
    text: str  # as written
    norm: str
    asks: bool
    concrete: frozenset[str]
    negated: frozenset[str]


class KnowledgeBase:
    """The entries and their index. Immutable once built: :func:`knowledge_for` swaps whole bases."""

    def __init__(
        self, entries: list[Entry], threshold: float = DEFAULT_THRESHOLD, *, checked: bool = False
    ) -> None:
        if not checked:
            errors = [p.message for p in problems(entries) if p.level == "error"]
            if errors:
                raise KnowledgeError("\n".join(errors))
        self.entries = list(entries)
        self.threshold = threshold
        self._phrasings: list[_Phrasing] = []
        self._keywords: list[list[str]] = [[_normalized(k) for k in e.keywords] for e in entries]
        for i, entry in enumerate(self.entries):
            for text in entry.phrasings:
                norm, text_asks = _form(text)
                self._phrasings.append(
                    _Phrasing(i, text, norm, text_asks, frozenset(concrete(norm)), negated(norm))
                )
        self._build()

    def _build(self) -> None:
        """IDF over entries (a gram every phrasing of one entry uses is still that entry's), then
        postings sorted by gram: the phrasings that hold each gram (with its share of the
        phrasing's squared weight) and the entries whose vocabulary holds it."""
        n_phrasings, n_entries = len(self._phrasings), len(self.entries)
        by_phrasing = [grams(p.norm) for p in self._phrasings]
        flat = [g for gs in by_phrasing for g in gs]
        vocab = {g: i for i, g in enumerate(dict.fromkeys(flat))}
        self._vocab = vocab
        size = len(vocab)
        row = np.repeat(np.arange(n_phrasings, dtype=np.int64), [len(gs) for gs in by_phrasing])
        col = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
        entry_of = np.asarray([p.entry for p in self._phrasings], dtype=np.int64)
        pairs = np.unique(entry_of[row] * max(size, 1) + col)  # (entry, gram), once each
        e_entry, e_gram = pairs // max(size, 1), pairs % max(size, 1)
        idf = np.log((1 + n_entries) / (1 + np.bincount(e_gram, minlength=size))) + 1.0
        unigram = np.fromiter((not _is_bigram(g) for g in vocab), dtype=bool, count=size)
        weight = idf * np.where(unigram, _UNIGRAM, 1.0)
        self._w2 = weight**2
        self._unseen_w2 = (np.log(1 + n_entries) + 1.0) ** 2  # a gram no entry uses: the highest weight
        w2 = (idf**RECALL_IDF * np.where(unigram, _UNIGRAM, 1.0))[col] ** 2
        shares = w2 / np.bincount(row, weights=w2, minlength=n_phrasings)[row]
        order = np.argsort(col, kind="stable")
        self._p_ids, self._p_shares = row[order], shares[order]
        self._p_start = np.searchsorted(col[order], np.arange(size + 1))
        order = np.argsort(e_gram, kind="stable")
        self._e_ids = e_entry[order]
        self._e_start = np.searchsorted(e_gram[order], np.arange(size + 1))
        self._phrasing_entry = entry_of
        self._p_len = np.bincount(row, minlength=n_phrasings)

    @classmethod
    def load(cls, path: Path, threshold: float = DEFAULT_THRESHOLD) -> KnowledgeBase:
        """The file's entries (raises :class:`KnowledgeError` for any error ``check`` reports)."""
        paused = gc.isenabled()
        gc.disable()  # the many small objects made here all live on: no point walking them meanwhile
        try:
            entries, found = read(path)
            errors = [p.message for p in found if p.level == "error"]
            if errors:
                raise KnowledgeError("\n".join(errors))
            return cls(entries, threshold, checked=True)
        finally:
            if paused:
                gc.enable()

    @classmethod
    def from_entries(cls, entries: list[Entry], threshold: float = DEFAULT_THRESHOLD) -> KnowledgeBase:
        return cls(entries, threshold)

    # --- matching --------------------------------------------------------------------------------
    def _ranked(self, text: str) -> list[tuple[float, int, str]]:
        """(score, entry index, matched phrasing) of every entry with a candidate phrasing, best first."""
        cleaned = _cleaned(text or "")
        norm = _folded(cleaned)
        if len(norm) < 2 or not self._phrasings:
            return []
        vocab = self._vocab
        gs = grams(norm)
        known = np.fromiter((vocab[g] for g in gs if g in vocab), dtype=np.int64)
        if not len(known):
            return []
        unseen_bigrams = sum(1 for g in gs if g not in vocab and _is_bigram(g))
        unseen_unigrams = len(gs) - len(known) - unseen_bigrams
        q_total = float(self._w2[known].sum())
        q_total += self._unseen_w2 * (unseen_bigrams + _UNIGRAM**2 * unseen_unigrams)
        p_at, e_at = _spans(self._p_start, known), _spans(self._e_start, known)
        p_ids, p_shares, e_ids = self._p_ids[p_at], self._p_shares[p_at], self._e_ids[e_at]
        e_w2 = np.repeat(self._w2[known], self._e_start[known + 1] - self._e_start[known])
        # recall: how much of each phrasing the message says; precision: how much of the message
        # its entry's phrasings say, together
        recall = np.bincount(p_ids, weights=p_shares, minlength=len(self._phrasings))
        said = np.bincount(p_ids, minlength=len(self._phrasings))  # grams of each phrasing, unweighted
        precision = np.bincount(e_ids, weights=e_w2, minlength=len(self.entries)) / q_total
        # score = precision^e × recall^(1-e), ranked as its power 1/(1-e): one power per entry,
        # not per phrasing (a long message touches most phrasings of a large base)
        ranking = (precision ** (PRECISION_EXP / (1 - PRECISION_EXP)))[self._phrasing_entry] * recall
        k = min(_CANDIDATES, len(ranking))
        top = np.argpartition(-ranking, k - 1)[:k] if k < len(ranking) else np.arange(len(ranking))
        sims = dict(zip(top.tolist(), (ranking[top] ** (1 - PRECISION_EXP)).tolist(), strict=True))
        q_asks, q_concrete, q_negated = bool(_ASKS.search(cleaned)), concrete(norm), negated(norm)
        best: dict[int, tuple[float, str]] = {}
        for pid, score in sims.items():
            if score <= 0:
                continue
            p = self._phrasings[pid]
            if not q_asks and (p.asks or said[pid] < STATEMENT_RECALL * self._p_len[pid]):
                score *= STATEMENT
            score *= CONCRETE ** min(2, len(q_concrete - p.concrete))
            if q_negated != p.negated:
                score *= POLARITY
            keywords = self._keywords[p.entry]
            if keywords and not any(k in norm for k in keywords):
                score *= NO_KEYWORD
            score = round(min(1.0, score), 4)  # as reported: the threshold applies to what is shown
            if score > best.get(p.entry, (0.0, ""))[0]:
                best[p.entry] = (score, p.text)
        return sorted(((s, i, m) for i, (s, m) in best.items()), key=lambda t: (-t[0], t[1]))

    def _hit(self, ranked: tuple[float, int, str]) -> Hit:
        score, i, matched = ranked
        return Hit(entry=self.entries[i], score=score, matched=matched)

    def search(self, text: str, limit: int = 5) -> list[Hit]:
        """The entries most like ``text``, best first, for operators (a lower bar than the bot's)."""
        return [self._hit(r) for r in self._ranked(text)[:limit] if r[0] >= SEARCH_FLOOR]

    def answer(self, text: str, threshold: float | None = None) -> Hit | None:
        """The one entry the bot may answer ``text`` with, or None (the message goes on to be
        drafted as a request)."""
        return self.verdict(text, threshold)[0]

    def verdict(self, text: str, threshold: float | None = None) -> tuple[Hit | None, str]:
        """:meth:`answer` with its reason, for the command line and the console: ``answered``,
        ``no_match``, ``too_short`` (a bare word), ``below_threshold`` or ``tie``. Two entries
        within :data:`TIE_MARGIN` are a tie and neither is answered: the bot cannot tell which the
        citizen means, and a question filed as a request (which a person then answers) is better
        than a wrong answer."""
        bar = self.threshold if threshold is None else threshold
        ranked = self._ranked(text)[:2]
        if not ranked:
            return None, "no_match"
        if len(normalize(text)) < MIN_QUESTION:
            return None, "too_short"
        if ranked[0][0] < bar:
            return None, "below_threshold"
        if len(ranked) > 1 and ranked[0][0] - ranked[1][0] < TIE_MARGIN:
            return None, "tie"
        return self._hit(ranked[0]), "answered"


# --- the file ------------------------------------------------------------------------------------
def _where(path: Path | None, index: int, line: int | None, entry_id: object) -> str:
    where = f"第{index + 1}条"
    if line:
        where += f"（第{line}行"
        where += f"，id: {entry_id}）" if entry_id else "）"
    elif entry_id:
        where += f"（id: {entry_id}）"
    return f"{path}: {where}" if path else where


@lru_cache(maxsize=1)
def _loader() -> Any:
    """libyaml's base loader, where every scalar but null is text (2,000 entries parse in ~0.15 s,
    half the safe loader's time). Pydantic reads dates and the rest, so a wrong value
    ("2025-13-01") is reported with its entry, and `keywords: [12345]` is the word 12345."""
    import yaml

    base: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
    loader: Any = type("KnowledgeLoader", (base,), {})
    null = "tag:yaml.org,2002:null"
    loader.add_implicit_resolver(null, re.compile(r"^(?:~|null|Null|NULL)$"), list("~nN"))
    loader.add_constructor(null, lambda _loader, _node: None)
    return loader


def read(path: Path) -> tuple[list[Entry], list[Problem]]:
    """The file's valid entries and every problem found in it (errors and warnings)."""
    import yaml

    loader_cls = _loader()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem("error", f"{path}: 无法读取：{exc}")]
    try:
        node = yaml.compose(text, Loader=loader_cls)
        data = loader_cls("").construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        return [], [Problem("error", f"{path}: 不是有效的 YAML：{exc}")]
    if data is None:
        return [], []
    if not isinstance(data, list) or node is None:
        return [], [Problem("error", f"{path}: 文件应是条目的列表（每条以“- id: …”开头）")]
    lines = [item.start_mark.line + 1 for item in node.value]
    entries: list[Entry] = []
    found: list[Problem] = []
    positions: list[tuple[int, int | None]] = []
    for i, (raw, line) in enumerate(zip(data, lines, strict=True)):
        entry_id = raw.get("id") if isinstance(raw, dict) else None
        where = _where(path, i, line, entry_id)
        if not isinstance(raw, dict):
            found.append(Problem("error", f"{where}：应是一组“键: 值”（id、question、also、answer…）", i))
            continue
        try:
            entries.append(Entry.model_validate(raw))
            positions.append((i, line))
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(part) for part in err["loc"]) or "?"
                msg = str(err["msg"]).removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    msg = "不认识的键（可用的键：" + "、".join(Entry.model_fields) + "）"
                elif err["type"] == "missing":
                    msg = "缺少此项"
                found.append(Problem("error", f"{where}：{field}：{msg}", i))
    found += problems(entries, path, positions)
    return entries, sorted(found, key=lambda p: p.index)


def problems(
    entries: list[Entry], path: Path | None = None, positions: list[tuple[int, int | None]] | None = None
) -> list[Problem]:
    """What is wrong with entries taken together: duplicate ids and phrasings (errors: matching
    would be ambiguous), and advice (warnings)."""
    positions = positions or [(i, None) for i in range(len(entries))]
    out: list[Problem] = []
    first_id: dict[str, str] = {}
    first_phrasing: dict[str, tuple[int, str, str]] = {}
    today = date.today()
    for entry, (i, line) in zip(entries, positions, strict=True):
        where = _where(path, i, line, entry.id)
        if entry.id in first_id:
            out.append(Problem("error", f"{where}：id 与{first_id[entry.id]}重复", i))
        else:
            first_id[entry.id] = _where(None, i, line, entry.id)
        seen_here: set[str] = set()
        for text in [entry.question, *entry.also]:
            norm = _normalized(text)
            if norm in seen_here:
                out.append(Problem("warning", f"{where}：问法“{text}”与本条的另一问法相同", i))
                continue
            seen_here.add(norm)
            if norm in first_phrasing and first_phrasing[norm][0] != i:
                _, other_id, other_text = first_phrasing[norm]
                out.append(
                    Problem(
                        "error",
                        f"{where}：问法“{text}”与 {other_id} 的“{other_text}”相同，无法判断答哪一条",
                        i,
                    )
                )
            else:
                first_phrasing.setdefault(norm, (i, entry.id, text))
        if not entry.also:
            out.append(Problem("warning", f"{where}：没有相似问（also），群众换个说法可能就匹配不到", i))
        if entry.updated and (today - entry.updated).days > STALE_DAYS:
            out.append(
                Problem("warning", f"{where}：答复口径上次核对于{entry.updated}，已超过一年，请核对", i)
            )
    return out


def near_duplicates(
    kb: KnowledgeBase, bar: float = NEAR_DUPLICATE, ids: Collection[str] | None = None
) -> list[Problem]:
    """Phrasings another entry scores ``bar`` or more on (warnings for ``check``): the two entries
    compete for the same questions, and the bot answers neither when they tie.

    ``ids`` narrows it to pairs involving those entries (one just saved in the console): their
    phrasings, and those of the entries their phrasings come near. Searching every phrasing takes
    seconds in a base of 2,000 entries; this takes milliseconds, and misses only a rival that none
    of the entry's own phrasings finds among its best matches."""
    out: list[Problem] = []
    entries = kb.entries
    wanted = set(ids) if ids is not None else set()
    if ids is not None:
        near = {
            hit.entry.id for e in kb.entries if e.id in wanted for t in e.phrasings for hit in kb.search(t, 10)
        }
        entries = [e for e in kb.entries if e.id in wanted | near]
    for entry in entries:
        for text in entry.phrasings:
            for hit in kb.search(text, limit=3):
                if ids is not None and entry.id not in wanted and hit.entry.id not in wanted:
                    continue
                if hit.entry.id != entry.id and hit.score >= bar:
                    out.append(
                        Problem(
                            "warning",
                            f"{entry.id}：问法“{text}”也很像 {hit.entry.id} 的“{hit.matched}”"
                            f"（{hit.score:.2f}），两条可能互相抢答",
                        )
                    )
    return out


# --- the process's knowledge base ----------------------------------------------------------------
@dataclass
class _Watched:
    kb: KnowledgeBase | None
    signature: tuple[int, int, int] | None  # of the file last read, good or bad
    checked: float  # time.monotonic() of the last look
    error: str = ""  # why the file as it is now is not in use ("" when it is)


@dataclass(frozen=True)
class FileState:
    """The process's view of ``HOTLINE_KNOWLEDGE_FILE``: the base in use, and why the file as it
    is now is not (missing, unreadable, invalid; ``""`` when it is, when it is empty, and when the
    knowledge base is turned off). With an error, ``kb`` is the last good version (None if the
    file was never good in this process): it is not what the file says now."""

    kb: KnowledgeBase | None
    error: str = ""


_watched: dict[tuple[str, float], _Watched] = {}
_lock = threading.Lock()


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino  # a file replaced by rename has a new inode


def knowledge_for(settings: Settings) -> KnowledgeBase | None:
    """The process's knowledge base from ``HOTLINE_KNOWLEDGE_FILE``; None when turned off, empty,
    or invalid from the start. The file is looked at (stat) at most every :data:`CHECK_EVERY_S`
    and re-read when it changed, so editors need no restart; a file that became invalid keeps the
    last good base and is logged once (per version of the file)."""
    return knowledge_state(settings).kb


def knowledge_state(settings: Settings, *, fresh: bool = False) -> FileState:
    """:func:`knowledge_for` with the file's error, if any. ``fresh`` looks at the file now rather
    than trusting a look less than :data:`CHECK_EVERY_S` old (an action that must compare with the
    file as it is at that moment: the console's 清除已并入文件的修改)."""
    path = getattr(settings, "knowledge_file", None)
    if path is None:
        return FileState(None)
    threshold = float(getattr(settings, "knowledge_threshold", DEFAULT_THRESHOLD))
    key = (str(path), threshold)
    now = time.monotonic()
    seen = _watched.get(key)
    if seen is not None and not fresh and now - seen.checked < CHECK_EVERY_S:
        return FileState(seen.kb, seen.error)
    with _lock:
        seen = _watched.get(key)
        if seen is not None and not fresh and now - seen.checked < CHECK_EVERY_S:
            return FileState(seen.kb, seen.error)
        signature = _signature(Path(path))
        if seen is not None and signature == seen.signature:
            seen.checked = now
            return FileState(seen.kb, seen.error)
        kept = seen.kb if seen is not None else None
        try:
            kb: KnowledgeBase | None = KnowledgeBase.load(Path(path), threshold)
        except KnowledgeError as exc:
            kept_entries = len(kept.entries) if kept else 0
            log.error("knowledge_invalid", file=str(path), error=str(exc), kept_entries=kept_entries)
            _watched[key] = _Watched(kept, signature, now, str(exc))
            return FileState(kept, str(exc))
        assert kb is not None
        log.info("knowledge_loaded", file=str(path), entries=len(kb.entries))
        kb = kb if kb.entries else None
        _watched[key] = _Watched(kb, signature, now)
        return FileState(kb)


def forget() -> None:
    """Drop what :func:`knowledge_for` keeps (tests; a process that changed its settings)."""
    with _lock:
        _watched.clear()
