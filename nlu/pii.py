"""Placeholder PII masking (replaced by the NLU package's full version)."""

import re

_PATTERNS = [
    re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"),
    re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"),
    re.compile(r"(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)"),
    re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
]


def mask_pii(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group()[:3] + "*" * max(len(m.group()) - 5, 1) + m.group()[-2:], text)
    return text
