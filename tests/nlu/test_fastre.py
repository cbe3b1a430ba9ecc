"""compile_fast must find exactly what re.compile finds; the character tables of nlu.text must
clean exactly as the per-character loops did."""

from __future__ import annotations

import json
import random
import re
import unicodedata
from pathlib import Path

import pytest

from nlu import rules
from nlu.fastre import compile_fast, first_chars
from nlu.text import clean, clean_aligned

EVAL = Path(__file__).parents[2] / "nlu" / "data" / "eval"


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    out = []
    for name in ("request_type_real7.jsonl", "request_type_written_g.jsonl", "request_type_written_h.jsonl"):
        for line in (EVAL / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out.append((row.get("title") or "") + "。" + row["text"])
    return out


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"燃气|煤气", {"燃", "煤"}),
        (r"(?:很|好)?(?:燃气|煤气)味", {"很", "好", "燃", "煤"}),  # an optional part: what follows counts too
        (r"(?<!没)漏气", {"漏"}),  # a lookbehind takes no character
        (r"[0-9]号楼", set("0123456789")),
        (r"漏气|.{0,3}着火", None),  # any character
        (r"[\u4e00-\u9fff]+区", None),  # every CJK character: not worth it
        (r"[^的]+", None),
        (r"(?:漏水)?", None),  # can match the empty string
        (r"(?i)gas", None),  # case folding is left to re
    ],
)
def test_first_chars(pattern: str, expected: set[str] | None) -> None:
    got = first_chars(pattern)
    assert (set(got) if got is not None else None) == expected


def test_compile_fast_only_adds_a_lookahead() -> None:
    assert compile_fast(r"燃气|煤气").pattern == r"(?=[煤燃])(?:燃气|煤气)"  # sorted by code point
    assert compile_fast(r"漏气|.{0,3}着火").pattern == r"漏气|.{0,3}着火"
    assert compile_fast(r"(?s)燃气.*漏").pattern == r"(?s)燃气.*漏"  # a global flag must lead: kept as is
    m = compile_fast(r"(燃气|煤气)(泄漏|漏了)").search("楼道里煤气漏了")
    assert m is not None and m.groups() == ("煤气", "漏了") and m.span() == (3, 7)


def test_rule_patterns_find_the_same_matches(real_texts: list[str]) -> None:
    """Every urgency and request-type rule, fast and plain, on real and written messages."""
    patterns = [p for _, p in rules._URGENT] + [p for v in rules._RT_RULES.values() for p, _ in v]
    fast = [compile_fast(p) for p in patterns]
    assert sum(f.pattern != p for f, p in zip(fast, patterns, strict=True)) >= 15  # most are sped up
    found = 0
    for p, f in zip(patterns, fast, strict=True):
        plain = re.compile(p)
        for t in real_texts:
            spans = [m.span() for m in plain.finditer(t)]
            assert [m.span() for m in f.finditer(t)] == spans, (p[:40], t[:60])
            found += len(spans)
    assert found > 500


def _clean_by_loop(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(ch if (ch.isprintable() or ch in "\n\t") else " " for ch in text)
    return re.sub(r"[ \t\r\f\v\u3000]+", " ", text).strip()


def _clean_aligned_by_loop(text: str) -> str:
    out = []
    for ch in text or "":
        if not (ch.isprintable() or ch in "\n\t"):
            out.append(" ")
            continue
        n = unicodedata.normalize("NFKC", ch)
        out.append(n if len(n) == 1 else ch)
    return "".join(out)


def test_clean_tables_match_the_loops(real_texts: list[str]) -> None:
    rng = random.Random(13)
    pool = "中国，。！？ＡＢＣ１２３ａ\u3000\t\n\r\x00\x07\u200b\ufeff\u00a0ﬁ㍿①½\ud800😀é\u0301e\u2028\u00ad"
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 30))) for _ in range(3000)] + real_texts[
        :300
    ]
    for t in texts:
        assert clean(t) == _clean_by_loop(t), repr(t)
        assert clean_aligned(t) == _clean_aligned_by_loop(t), repr(t)
        assert len(clean_aligned(t)) == len(t)


def test_tokens_keep_the_words_the_regex_keeps(real_texts: list[str]) -> None:
    from nlu.text import _TOKEN_OK, MAX_CHARS, cut, to_simplified, tokens

    stop = frozenset({"的", "了", "我"})
    for t in [*real_texts[:300], "……，。!!", "2023年 A3区 ①②"]:
        words = cut(to_simplified(clean(t)[:MAX_CHARS]))
        assert tokens(t, stop) == [w for w in words if _TOKEN_OK.search(w) and w not in stop]
