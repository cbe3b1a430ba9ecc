"""Text normalisation shared by training and inference.

The contest team's segmented file lost stop words and punctuation. Everything the category
model sees goes through :func:`tokens`, which segments raw text with jieba and removes the same
kind of words (a stop list derived at training time from the rows that exist in both forms), so
training on segmented rows and predicting on raw messages see the same kind of text.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterable
from typing import TypeVar

import rjieba

_TOKEN_OK = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
_lock = threading.Lock()
_tokenizer = None
MAX_CHARS = 1200  # longer messages are cut for classification (keeps p99 bounded)


def _jieba():  # type: ignore[no-untyped-def]
    """The process-wide Python jieba tokenizer, initialised once, quietly: only training uses it,
    for its dictionary frequencies (:func:`derive_stopwords`)."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    logging.getLogger("jieba").setLevel(logging.WARNING)
                    tok = jieba.Tokenizer()
                    tok.initialize()
                _tokenizer = tok
    return _tokenizer


_V = TypeVar("_V")


class _Memo(dict[str, _V]):
    """What a function of one string makes of it, computed on first sight (at most ``LIMIT``
    kept): characters and jieba words recur across messages, so a lookup replaces a call."""

    LIMIT = 100_000

    def __init__(self, one: Callable[[str], _V]):
        super().__init__()
        self._one = one

    def __missing__(self, key: str) -> _V:
        out = self._one(key)
        if len(self) < self.LIMIT:
            self[key] = out
        return out


class _CharMap(_Memo[str]):
    """A per-character mapping. :meth:`apply` calls it only for the characters outside printable
    ASCII and the CJK ideographs, which every mapping here leaves as they are: a message is cleaned
    by one regex scan in C and a few lookups instead of a Python loop over its characters
    (round 13)."""

    _RARE = re.compile(r"[^\x20-\x7e\u4e00-\u9fff]")

    def apply(self, text: str) -> str:
        return self._RARE.sub(lambda m: self[m.group()], text)


def _printable(ch: str) -> str:
    return ch if (ch.isprintable() or ch in "\n\t") else " "


def _aligned(ch: str) -> str:
    if not (ch.isprintable() or ch in "\n\t"):
        return " "
    n = unicodedata.normalize("NFKC", ch)
    return n if len(n) == 1 else ch


_PRINTABLE = _CharMap(_printable)
_ALIGNED = _CharMap(_aligned)
_NFKC = _CharMap(lambda ch: unicodedata.normalize("NFKC", ch))
_WORDLIKE = _Memo(lambda w: _TOKEN_OK.search(w) is not None)  # a word with a letter, digit or hanzi


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """``text`` with every lone surrogate (half of an emoji, cut by a client that counts UTF-16
    units; JSON's ``\\ud83d`` escape decodes to one) replaced by U+FFFD, one for one: positions
    do not move, and the text, its spans and its subject can be written as UTF-8 (JSON, Redis,
    logs), which a lone surrogate cannot."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def clean(text: str) -> str:
    """NFKC (full-width → half-width), drop control characters, collapse whitespace.

    Each character is normalised first (through :class:`_CharMap`), then the whole text: NFKC of
    the per-character NFKC is the text's NFKC (NFKD(NFKC(c)) = NFKD(c), and a text's decomposition
    is its characters' decompositions, reordered), and on text already normalised ``unicodedata``
    only checks (a board message: ~175 -> ~40 µs)."""
    text = _PRINTABLE.apply(unicodedata.normalize("NFKC", _NFKC.apply(text or "")))
    return re.sub(r"[ \t\r\f\v\u3000]+", " ", text).strip()


def clean_aligned(text: str) -> str:
    """Like :func:`clean` but keeps every character's position (1:1), so spans found in the
    result index the original text: NFKC per character only where it yields one character,
    control characters become spaces, nothing is collapsed or stripped."""
    return _ALIGNED.apply(text or "")


_trad_only: frozenset[str] | None = None


def _zhconv():  # type: ignore[no-untyped-def]
    global _trad_only
    import zhconv
    import zhconv.zhconv as zc

    if _trad_only is None:
        if zc.zhcdicts is None:
            zc.loaddict()
        _trad_only = frozenset(zc.zhcdicts["TRADONLY"])
    return zhconv


def has_traditional(text: str) -> bool:
    """True if the text has a character that exists only in Traditional Chinese."""
    _zhconv()
    assert _trad_only is not None
    return not _trad_only.isdisjoint(text)


def to_simplified(text: str) -> str:
    """Traditional → Simplified (zhconv, mainland variant `zh-cn`); text without any
    traditional-only character is returned unchanged (and costs only a set check)."""
    if not text or not has_traditional(text):
        return text
    return str(_zhconv().convert(text, "zh-cn"))


def to_simplified_aligned(text: str) -> str:
    """Like :func:`to_simplified` but character by character, so positions stay valid (spans
    found in the result index the original text)."""
    if not text or not has_traditional(text):
        return text
    zh = _zhconv()
    out = []
    for ch in text:
        if ch in _trad_only:  # type: ignore[operator]
            s = str(zh.convert(ch, "zh-hans"))
            out.append(s if len(s) == 1 else ch)
        else:
            out.append(ch)
    return "".join(out)


def cut(text: str) -> list[str]:
    """jieba's segmentation (same dictionary, same HMM for unknown words) computed by jieba-rs
    through ``rjieba``: about 30 times faster than jieba in Python, which was the largest
    single cost of a parse. Tokens differ from jieba's only in rare cases (``4-5`` stays one)."""
    return rjieba.cut(text)


def tokens(text: str, stop: Iterable[str] | frozenset[str] = frozenset()) -> list[str]:
    """Segmented, stop-word-free tokens (the form of ``text_segmented``); Traditional Chinese is
    converted to Simplified first (the training data is Simplified)."""
    stop_set = stop if isinstance(stop, frozenset | set) else frozenset(stop)
    text = to_simplified(clean(text)[:MAX_CHARS])
    return [w for w in cut(text) if _WORDLIKE[w] and w not in stop_set]


def derive_stopwords(
    pairs: Iterable[tuple[str, str]], min_count: int = 3, keep_ratio: float = 0.25
) -> list[str]:
    """Words that jieba produces on the raw text but the published segmentation removed.

    Only dictionary words (or single characters / digits) are kept, so no personal name from the
    data ends up in the list.
    """
    from collections import Counter

    raw_c: Counter[str] = Counter()
    seg_c: Counter[str] = Counter()
    for raw, seg in pairs:
        raw_c.update(w for w in cut(clean(raw)) if _TOKEN_OK.search(w))
        seg_c.update(seg.split())
    freq = _jieba().FREQ
    out = []
    for w, c in raw_c.items():
        if c >= min_count and seg_c[w] / c < keep_ratio and (freq.get(w, 0) >= 50 or len(w) == 1):
            out.append(w)
    return sorted(out)
