"""The bot's Chinese texts, loaded once from ``config/texts.yml``."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEXTS_PATH = Path(__file__).resolve().parent.parent / "config" / "texts.yml"


@lru_cache
def texts() -> dict[str, Any]:
    with TEXTS_PATH.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def say(key: str, **values: Any) -> str:
    template: str = texts()[key]
    return template.format(**values) if values else template


def receipt(ticket_id: str, department: str, due: str = "") -> str:
    """What the citizen reads once their ticket is filed (by the bot's outbox or by an operator),
    with its 办理时限 as ``ticket_due`` words (``due``: ticket_client.deadlines.said; "": none)."""
    line = say("ticket_due", due=due) if due else ""
    if department:
        return say("ticket_filed", ticket_id=ticket_id, department=department, due=line)
    return say("ticket_filed_no_department", ticket_id=ticket_id, due=line)


def period_words(period: timedelta) -> str:
    """A quiet period as a citizen says it: 一天, 两天, 3天, 12小时, 30分钟."""
    minutes = round(period.total_seconds() / 60)
    if minutes and minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return {1: "一天", 2: "两天"}.get(days, f"{days}天")
    if minutes % 60 == 0:
        return f"{minutes // 60}小时"
    return f"{minutes}分钟"


def status_name(status: str, withdrawn: bool = False) -> str:
    """What the citizen reads for a status; a ticket they withdrew (撤单, closed) says so."""
    names: dict[str, str] = texts()["status_names"]
    return names["withdrawn"] if withdrawn else names.get(status, status)
