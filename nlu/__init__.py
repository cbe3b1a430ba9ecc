"""Placeholder until the builtin NLU lands: keyword intents only. Replaced by the NLU package."""

from __future__ import annotations

import re
from typing import Any

from nlu.base import Entity, Intent, Location, NluBackend, Parse

_TICKET = re.compile(r"\d{5}-\d{8}-\d{6}")
_LOC = re.compile(r"[\u4e00-\u9fa5A-Z0-9]{1,12}(?:区|县|路|街|小区|村|镇)[\u4e00-\u9fa5A-Z0-9]{0,10}")


class _Keywords:
    name = "keywords"

    def parse(self, text: str, context: dict[str, Any] | None = None) -> Parse:
        t = text.strip()
        ents: list[Entity] = []
        m = _TICKET.search(t)
        if m:
            ents.append(Entity(entity="ticket_id", value=m.group(), start=m.start(), end=m.end()))
        if m or t.startswith("查询"):
            name = "query_progress"
        elif "人工" in t:
            name = "ask_human"
        elif t in {"是", "确认", "对", "好的", "是的"}:
            name = "affirm"
        elif t in {"不是", "不对", "否", "取消"}:
            name = "deny"
        elif t in {"你好", "您好"}:
            name = "greet"
        elif t in {"满意", "基本满意", "不满意"}:
            name = "rate"
            ents.append(Entity(entity="rating", value=t, start=0, end=len(t)))
        else:
            name = "new_request"
        loc = Location()
        lm = _LOC.search(t)
        if lm:
            loc = Location(text=lm.group(), start=lm.start(), end=lm.end())
        return Parse(text=text, intent=Intent(name=name, confidence=0.9), entities=ents, location=loc,
                     subject=t[:20])


def get_backend(settings: Any = None) -> NluBackend:
    return _Keywords()


def parse(text: str, context: dict[str, Any] | None = None) -> Parse:
    return _Keywords().parse(text, context)
