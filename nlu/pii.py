"""Find and mask personal data in Chinese text: phone numbers, ID numbers, plates, e-mail.

Pure regular expressions, no dependencies; the gateway's logs call :func:`mask_pii`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")),
    # 18-digit resident ID: 6-digit area, birth date 19xx/20xx, 3 digits, check digit or X
    (
        "id_number",
        re.compile(
            r"(?<![0-9A-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])"
        ),
    ),
    # mainland mobile, optional +86 / 86 prefix and separators (138 1234 5678, 138-1234-5678)
    (
        "phone",
        re.compile(r"(?<!\d)(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)"),
    ),
    # landline: area code 0xx(x) + 7-8 digits, optional extension
    (
        "phone",
        re.compile(r"(?<!\d)(?:\(?0\d{2,3}\)?[ -]?)[2-9]\d{3}[ -]?\d{3,4}(?:[-转]\d{1,5})?(?!\d)"),
    ),
    # vehicle plates: 湘A12345, 湘A·12345, new-energy 湘AD12345 / 湘A12345D
    (
        "plate",
        re.compile(
            rf"[{_PROVINCES}][A-HJ-NP-Z][ ·.\-]?(?:[A-HJ-NP-Z0-9]{{5}}[DF]|[DF][A-HJ-NP-Z0-9]{{5}}|[A-HJ-NP-Z0-9]{{4}}[A-HJ-NP-Z0-9挂学警港澳])(?![A-Za-z0-9])"
        ),
    ),
]

_MASK = {"email": "[邮箱]", "id_number": "[身份证号]", "phone": "[电话]", "plate": "[车牌]"}


class PiiMatch(NamedTuple):
    kind: str
    start: int
    end: int
    value: str


def find_pii(text: str) -> list[PiiMatch]:
    """Non-overlapping matches, in text order (earlier patterns win on overlap)."""
    if not text:
        return []
    found: list[PiiMatch] = []
    taken = bytearray(len(text))
    for kind, pat in _PATTERNS:
        for m in pat.finditer(text):
            s, e = m.span()
            if any(taken[s:e]):
                continue
            taken[s:e] = b"\x01" * (e - s)
            found.append(PiiMatch(kind, s, e, m.group()))
    return sorted(found, key=lambda x: x.start)


def mask_pii(text: str) -> str:
    """Replace every match by a label such as ``[电话]`` (keeps the rest of the text intact)."""
    if not text:
        return text
    out = []
    pos = 0
    for m in find_pii(text):
        out.append(text[pos : m.start])
        out.append(_MASK[m.kind])
        pos = m.end
    out.append(text[pos:])
    return "".join(out)
