"""The numpy n-gram helpers must give exactly what the Python loops they replaced gave: the
category model's hashed features and the request-type / urgency vocabularies were trained on
those loops' output."""

from __future__ import annotations

import json
import random
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from nlu.builtin import BuiltinBackend
from nlu.category import N_FEATURES, Taxonomy, TermMatcher, char_hash_counts, word_hash_counts
from nlu.ngrams import KeyIndex, gram_crc32, gram_keys, pair_keys, vocab_keys, word_crc32
from nlu.request_type import grams

REAL = Path(__file__).parents[2] / "nlu" / "data" / "eval" / "request_type_real7.jsonl"
SENTENCES = [
    "A3区联丰路米兰春天G2栋320楼上漏水，物业不管",
    "我家樓下的煤氣管道漏氣了，在中山路12號",  # traditional
    "电梯又坏了😡😡，被困了 20 分钟！",  # outside the BMP
    "hello 世界 мир ١٢٣ é",  # mixed scripts, 2-byte UTF-8
    "控制字符\x00与孤立代理\ud800也不能出错",  # NUL, a lone surrogate
    "",
    "水",
    "漏水",
]


def word_feats(doc: str) -> list[str]:
    """The category model's word features, as the loop before round 13 listed them."""
    toks = doc.split()
    return toks + [toks[i] + " " + toks[i + 1] for i in range(len(toks) - 1)]


def char_feats(doc: str) -> list[str]:
    s = doc.replace(" ", "")
    return [s[i : i + n] for n in (1, 2, 3) for i in range(len(s) - n + 1)]


def hash_counts(feats: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(bucket, count) in the order buckets first occur: what the model was trained on."""
    counts = Counter([zlib.crc32(f.encode("utf-8")) % N_FEATURES for f in feats])
    return np.array(list(counts.keys()), dtype=np.int64), np.array(list(counts.values()), dtype=np.int64)


def _random_texts(n: int) -> list[str]:
    rng = random.Random(13)
    pool = "中国人民漏水噪音a1Bé\u00ff\u07ff\u0800\uffff😀\U0010ffff ,。\ud800\x00"
    return [("".join(rng.choice(pool) for _ in range(rng.randint(0, 14)))) for _ in range(n)]


@pytest.mark.parametrize("text", SENTENCES + _random_texts(300))
def test_gram_crc32_is_zlib_crc32_of_every_char_ngram(text: str) -> None:
    s = "".join(text.split())
    expected = [
        zlib.crc32(s[i : i + n].encode("utf-8", "surrogatepass"))
        for n in (1, 2, 3)
        for i in range(len(s) - n + 1)
    ]
    assert gram_crc32(s).tolist() == expected


@pytest.mark.parametrize("doc", ["楼上 漏水 物业 不管 楼上 漏水", "中山路 12 号 煤气 漏气 😀", "", "水"])
def test_char_hash_counts_are_the_python_loops_buckets(doc: str) -> None:
    idx, n = char_hash_counts(doc)
    ref_idx, ref_n = hash_counts(char_feats(doc))
    assert dict(zip(idx.tolist(), n.tolist(), strict=True)) == dict(
        zip(ref_idx.tolist(), ref_n.tolist(), strict=True)
    )
    assert idx.tolist() == sorted(idx.tolist())
    first = char_hash_counts(doc, first_seen=True)  # training: the order the loop gave
    assert (first[0].tolist(), first[1].tolist()) == (ref_idx.tolist(), ref_n.tolist())


@pytest.mark.parametrize(
    "doc",
    [
        "楼上 漏水 物业 不管 楼上 漏水",
        "中山路 12 号 煤气 漏气 😀 é",
        "https://example.gov.cn/a/very/long/path/that/is/longer/than/sixty-four/bytes 投诉",
        "长" * 30 + " 词 " + "长" * 21,  # 90 and 63 bytes: past the table and at its edge
        "",
        "水",
    ],
)
def test_word_crc32_and_counts_are_the_python_loops(doc: str) -> None:
    expected = [zlib.crc32(f.encode("utf-8")) for f in word_feats(doc)]
    assert word_crc32(doc.split()).tolist() == expected
    idx, n = word_hash_counts(doc)
    ref_idx, ref_n = hash_counts(word_feats(doc))
    assert dict(zip(idx.tolist(), n.tolist(), strict=True)) == dict(
        zip(ref_idx.tolist(), ref_n.tolist(), strict=True)
    )
    first = word_hash_counts(doc, first_seen=True)
    assert (first[0].tolist(), first[1].tolist()) == (ref_idx.tolist(), ref_n.tolist())


@pytest.mark.parametrize("text", [s for s in SENTENCES if "\x00" not in s])
def test_gram_keys_follow_grams_and_vocab_keys_agree(text: str) -> None:
    """(Not with NUL: numpy's string arrays, which the artifact's vocabularies are, drop trailing
    NULs; a parse never holds one, cleaning turns control characters into spaces.)"""
    g = grams(text)
    keys = gram_keys(text)
    assert len(keys) == len(g)
    assert vocab_keys(g).tolist() == keys.tolist()  # the same key, computed from the vocabulary side
    assert len(set(keys.tolist())) == len(set(g))  # distinct n-grams, distinct keys


def test_key_index_finds_exactly_the_keys_it_holds() -> None:
    rng = np.random.default_rng(13)
    keys = np.unique(rng.integers(0, 2**62, 5000))
    index = KeyIndex(keys, np.arange(len(keys)) * 7)
    held = rng.choice(keys, 300)
    absent = rng.integers(0, 2**62, 300)
    q = np.concatenate([held, absent, held[:5]])  # repeats are kept
    expected = sorted((np.searchsorted(keys, k) * 7) for k in q if k in set(keys.tolist()))
    assert sorted(index.lookup(q).tolist()) == expected
    assert index.lookup(np.zeros(0, dtype=np.int64)).tolist() == []
    assert KeyIndex(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)).lookup(q).tolist() == []


def test_pair_keys_keep_whitespace() -> None:
    """A bigram across a space is not a word's: "漏 水" has no "漏水"."""
    assert vocab_keys(["漏水"])[0] not in pair_keys("漏 水").tolist()
    assert vocab_keys(["漏水"])[0] in pair_keys("楼上漏水").tolist()


def _suggest_by_loop(tax: Taxonomy, level1: str, text: str) -> tuple[str, str]:
    """What Taxonomy.suggest computed before round 13, one name at a time."""
    present = Taxonomy.bigrams(text)

    def share(name: str) -> float:
        bg = Taxonomy.bigrams(name)
        return sum(1 for b in bg if (b in present if len(b) == 2 else b in text)) / len(bg)

    best, l2_best = (0.0, "", ""), {}
    for l1, l2, l3 in tax.rows:
        if l1 != level1:
            continue
        if l3 and l3 != "其他" and share(l3) > best[0]:
            best = (share(l3), l2, l3)
        l2_best[l2] = max(l2_best.get(l2, 0.0), share(l2))
    if best[0] >= 0.5:
        return best[1], best[2]
    if l2_best:
        l2, s = max(l2_best.items(), key=lambda kv: kv[1])
        if s >= 0.5:
            return l2, ""
    return "", ""


def test_suggest_reads_names_as_the_loop_did(nlu: BuiltinBackend) -> None:
    real = REAL.read_text(encoding="utf-8").splitlines()[:150]
    texts = SENTENCES + [json.loads(line)["title"] + json.loads(line)["text"] for line in real]
    tax = nlu.taxonomy
    checked = 0
    for text in texts:
        for level1 in [*tax.level1, "不存在的类"]:
            assert tax.suggest(level1, text) == _suggest_by_loop(tax, level1, text), (level1, text)
            checked += tax.suggest(level1, text) != ("", "")
    assert checked >= 100  # the comparison is not only between empty answers


def test_term_matcher_counts_repeated_bigrams_unless_distinct() -> None:
    plain, distinct = TermMatcher(["哈哈哈", "水"]), TermMatcher(["哈哈哈", "水"], distinct=True)
    assert plain.coverage("哈哈").tolist() == [1.0, 0.0]  # a one-character term: never found
    assert distinct.coverage("哈哈").tolist() == [1.0, 0.0]
    assert distinct.coverage("喝水").tolist() == [0.0, 1.0]
    assert plain.coverage("喝水").tolist() == [0.0, 0.0]
