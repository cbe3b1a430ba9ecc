"""Character n-grams of a message, found and hashed by numpy instead of a Python loop.

A parse reads a message's character 1-3-grams four times (urgency, request type, category); as
Python loops over ~600 strings each, they were about a third of a parse (round 13). Here a text
becomes one array of code points, and its n-grams integer keys (:func:`gram_keys`, looked up in a
model's vocabulary by :class:`KeyIndex`) or crc32 values (:func:`gram_crc32`, the category
model's hashing trick), computed for all of them at once.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


def code_points(s: str) -> np.ndarray:
    """The code points of ``s`` as int64 (a lone surrogate kept as itself)."""
    return np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)


def gram_keys(s: str) -> np.ndarray:
    """One int64 per character 1-3-gram of ``s`` (whitespace removed), in the order of
    :func:`grams`: the code points (+1, so no gram is a prefix of another's key) packed 21 bits
    each. Lets numpy find a text's n-grams in a vocabulary instead of a Python loop."""
    s = "".join(s.split())
    cp = code_points(s) + 1
    return np.concatenate([cp, (cp[:-1] << 21) | cp[1:], (cp[:-2] << 42) | (cp[1:-1] << 21) | cp[2:]])


def pair_keys(s: str) -> np.ndarray:
    """The :func:`gram_keys` key of every character bigram ``s[i:i+2]`` of ``s`` as written
    (whitespace kept: a bigram across a space is not a word's)."""
    cp = code_points(s) + 1
    return (cp[:-1] << 21) | cp[1:]


def vocab_keys(vocab: Sequence[str] | np.ndarray) -> np.ndarray:
    """The :func:`gram_keys` key of each n-gram of a vocabulary (1-3 characters, no whitespace),
    computed for the whole list at once (a model's vocabulary has a few hundred thousand)."""
    if not len(vocab):
        return np.zeros(0, dtype=np.int64)
    v = np.asarray(vocab, dtype="<U3")
    cp = v.view(np.uint32).reshape(-1, 3).astype(np.int64)  # 0-padded
    n = np.char.str_len(v)
    key = cp[:, 0] + 1
    for i in (1, 2):
        key = np.where(n > i, (key << 21) | (cp[:, i] + 1), key)
    return key


class KeyIndex:
    """Exact lookup of int64 keys (:func:`gram_keys`) in numpy: the keys grouped into 2^k buckets
    by a multiplicative hash (about two buckets per key), so a lookup is a few independent gathers.
    A binary search over a few hundred thousand sorted keys (np.searchsorted) cost more here: each
    of its steps waits for the memory the one before it read."""

    _MULT = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, keys: np.ndarray, ids: np.ndarray):
        bits = max(4, int(np.ceil(np.log2(max(2 * len(keys), 2)))))
        self._shift = np.uint64(64 - bits)
        h = self._hash(keys)
        order = np.argsort(h, kind="stable")
        self._keys, self._ids = keys[order], ids[order]
        self._start = np.searchsorted(h[order], np.arange((1 << bits) + 1)).astype(np.int32)

    def _hash(self, q: np.ndarray) -> np.ndarray:
        return ((q.view(np.uint64) * self._MULT) >> self._shift).astype(np.int64)

    def lookup(self, q: np.ndarray) -> np.ndarray:
        """The id of every key of ``q`` that is in the index (repeats kept, order not)."""
        b = self._hash(q)
        lo = self._start[b]
        n = self._start[b + 1] - lo
        if not len(q) or not n.any():
            return np.zeros(0, dtype=np.int64)
        # every slot of every bucket a key falls in at once (a bucket holds at most a handful)
        j = np.arange(int(n.max()))
        pos = np.minimum(lo[:, None] + j, len(self._keys) - 1)
        hit = (self._keys[pos] == q[:, None]) & (j < n[:, None])
        return self._ids[pos[hit]]


def _crc_table() -> np.ndarray:
    """The byte-at-a-time crc32 table (reflected polynomial 0xEDB88320)."""
    c = np.arange(256, dtype=np.int64)
    for _ in range(8):
        c = np.where(c & 1, (c >> 1) ^ 0xEDB88320, c >> 1)
    return c


_STEP = _crc_table()


MAX_SHIFT = 64  # bytes: a word longer than this (a URL) is hashed by zlib itself


def _zero_byte_table() -> np.ndarray:
    """Z[n, j, b]: the crc32 register ``b << 8j`` after n zero bytes (n = 0..MAX_SHIFT), flattened.

    crc32(A + B) = Z_len(B)(crc32(A)) ^ crc32(B), where Z_n, feeding n zero bytes, is linear over
    GF(2) (zlib's ``crc32_combine``), so it is the XOR of one table entry per byte of the register.
    """
    x = np.arange(256, dtype=np.int64)[None, :] << (8 * np.arange(4, dtype=np.int64))[:, None]
    out = [x]
    for _ in range(MAX_SHIFT):
        x = _STEP[x & 0xFF] ^ (x >> 8)
        out.append(x)
    return np.stack(out).reshape(-1)


_ZERO = _zero_byte_table()
_BMP: np.ndarray | None = None  # [code point * 9 + n]: the character's crc32 moved past n bytes


def _shift(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Z_n(x) per element: the crc ``x`` of a prefix moved past ``n`` more bytes (n <= MAX_SHIFT)."""
    base = n * 1024
    z = _ZERO
    return (
        z[base + (x & 0xFF)]
        ^ z[base + 256 + ((x >> 8) & 0xFF)]
        ^ z[base + 512 + ((x >> 16) & 0xFF)]
        ^ z[base + 768 + (x >> 24)]
    )


def _bmp_table() -> np.ndarray:
    """Every BMP character's crc32 and its shifts by 0-8 bytes (2.4 MB, built once in a few ms):
    a 2- or 3-gram's crc is then one lookup per character."""
    global _BMP
    if _BMP is None:
        cp = np.arange(0x10000, dtype=np.int64)
        n = 1 + (cp >= 0x80) + (cp >= 0x800)  # the character's UTF-8 bytes (surrogates: 3)
        utf8 = (
            np.where(n == 1, cp, np.where(n == 2, 0xC0 | cp >> 6, 0xE0 | cp >> 12)),
            np.where(n == 2, 0x80 | cp & 0x3F, 0x80 | (cp >> 6) & 0x3F),
            0x80 | cp & 0x3F,
        )
        r = np.full(len(cp), 0xFFFFFFFF, dtype=np.int64)
        for k, b in enumerate(utf8):
            r = np.where(n > k, _STEP[(r ^ b) & 0xFF] ^ (r >> 8), r)
        crc = r ^ 0xFFFFFFFF
        _BMP = (
            np.stack([_shift(crc, np.full(len(crc), k)) for k in range(9)], axis=1)
            .astype(np.uint32)
            .reshape(-1)
        )
    return _BMP


class _CrcCache:
    """crc32 and UTF-8 length of strings seen before (characters outside the BMP, words), kept up to
    ``limit``; past it a new dict starts, so a thread reading the old one is not disturbed."""

    def __init__(self, limit: int = 200_000):
        self.limit = limit
        self._known: dict[str, int] = {}  # string -> crc32 of its UTF-8 | its length in bytes << 32

    def crc_and_length(self, items: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(crc32, length in bytes) of each string of ``items`` (a text: of each character)."""
        known = self._known
        new = set(items).difference(known)
        if new:
            if len(known) > self.limit:
                self._known = known = {}
                new = set(items)
            for x in new:
                b = x.encode("utf-8", "surrogatepass")
                known[x] = zlib.crc32(b) | len(b) << 32
        v = np.fromiter(map(known.__getitem__, items), dtype=np.int64, count=len(items))
        return v & 0xFFFFFFFF, v >> 32


_CHARS = _CrcCache()  # characters outside the BMP
_WORDS = _CrcCache()


def _gram_crc32_any(s: str) -> np.ndarray:
    """:func:`gram_crc32` for a text with characters outside the BMP (emoji): per character."""
    c1, n = _CHARS.crc_and_length(s)
    c2 = _shift(c1[:-1], n[1:]) ^ c1[1:]
    c3 = _shift(c1[:-2], n[1:-1] + n[2:]) ^ c2[1:]
    return np.concatenate([c1, c2, c3])


def gram_crc32(s: str) -> np.ndarray:
    """``zlib.crc32(g.encode())`` of every character 1-3-gram ``g`` of ``s``, in the order of
    ``[s[i:i+n] for n in (1, 2, 3) for i in ...]``: crc32(A + B) = Z_len(B)(crc32(A)) ^ crc32(B),
    so the 2- and 3-grams' come from their characters' (looked up in :func:`_bmp_table`)."""
    if not s:
        return np.zeros(0, dtype=np.int64)
    cp = code_points(s)
    if cp.max() >= 0x10000:
        return _gram_crc32_any(s)
    table = _bmp_table()
    n = 1 + (cp >= 0x80) + (cp >= 0x800)  # UTF-8 bytes per character
    base = cp * 9
    c1 = table[base].astype(np.int64)
    c2 = table[base[:-1] + n[1:]] ^ c1[1:]
    c3 = table[base[:-2] + n[1:-1] + n[2:]] ^ c2[1:]
    return np.concatenate([c1, c2, c3])


_SPACE_CRC = zlib.crc32(b" ")


def word_crc32(words: list[str]) -> np.ndarray:
    """``zlib.crc32(f.encode())`` of each word, then of each pair of neighbours joined by a space
    (the category model's word features, in that order): each word's crc is computed once and
    kept, a pair's combined from its words'."""
    c, n = _WORDS.crc_and_length(words)
    if len(n) and n[1:].max(initial=0) >= MAX_SHIFT:
        pairs = [
            zlib.crc32(f"{a} {b}".encode("utf-8", "surrogatepass"))
            for a, b in zip(words[:-1], words[1:], strict=True)
        ]
        return np.concatenate([c, np.asarray(pairs, dtype=np.int64)])
    space_then = _shift(np.full(len(c) - 1, _SPACE_CRC, dtype=np.int64), n[1:]) ^ c[1:] if len(c) else c
    return np.concatenate([c, _shift(c[:-1], n[1:] + 1) ^ space_then])
