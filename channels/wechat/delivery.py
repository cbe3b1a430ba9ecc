"""How an ``OutboundMessage`` becomes WeChat API calls: customer-service payloads and subscribe data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from channels.base import OutboundMessage, split_text

CHUNK_CHARS = 600  # the customer-service API takes about 2 KB of text per message
CHINA = timezone(timedelta(hours=8))
DEFAULT_SUBSCRIBE_FIELDS = {"character_string1": "ticket_id", "phrase2": "status", "time3": "at", "thing4": "text"}
# WeChat's limits per template keyword type (订阅消息参数值内容限制)
LIMITS = {"thing": 20, "phrase": 5, "character_string": 32, "number": 32, "letter": 32, "symbol": 5, "name": 10}
TEXTS = Path(__file__).resolve().parents[2] / "config" / "texts.yml"


@lru_cache
def status_names() -> dict[str, str]:
    with TEXTS.open(encoding="utf-8") as fh:
        names: dict[str, str] = (yaml.safe_load(fh) or {}).get("status_names", {})
    return names


def custom_payloads(out: OutboundMessage, kind: str) -> list[dict[str, Any]]:
    """Customer-service message bodies for ``out``: text chunks; buttons as a tappable menu on an
    official account (a tap sends the option's text back), as a hint line on a mini-program."""
    text = out.text
    if out.buttons and kind == "oa" and len(text) <= CHUNK_CHARS:
        menu = [{"id": str(i + 1), "content": b} for i, b in enumerate(out.buttons)]
        return [{"msgtype": "msgmenu", "msgmenu": {"head_content": text, "list": menu, "tail_content": ""}}]
    if out.buttons:
        text = f"{text}\n\n请回复：" + " / ".join(out.buttons)
    return [{"msgtype": "text", "text": {"content": chunk}} for chunk in split_text(text, CHUNK_CHARS)]


def _at(out: OutboundMessage) -> str:
    raw = out.fields.get("at")
    try:
        at = datetime.fromisoformat(raw) if raw else out.created_at
    except ValueError:
        at = out.created_at
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def subscribe_data(out: OutboundMessage, mapping: dict[str, str]) -> dict[str, str]:
    """The template keywords for ``out``; ``mapping`` is keyword → source (``ticket_id``, ``status``,
    ``status_code``, ``text``, ``at``, any key of ``out.fields``, or ``=literal``).

    ``text`` is the whole message, except for a progress note (``fields.progress``): there it is
    the note itself, since the message around it only repeats the ticket number, and a ``thing``
    keyword keeps twenty characters."""
    data: dict[str, str] = {}
    for key, source in (mapping or DEFAULT_SUBSCRIBE_FIELDS).items():
        if source.startswith("="):
            value = source[1:]
        elif source == "ticket_id":
            value = out.ticket_id or ""
        elif source == "status":
            code = "withdrawn" if out.fields.get("withdrawn") == "1" else out.fields.get("status", "")
            value = status_names().get(code, code)
        elif source == "status_code":
            value = out.fields.get("status", "")
        elif source == "text":
            value = out.fields.get("note", "") if out.fields.get("progress") == "1" else out.text
        elif source == "at":
            value = _at(out)
        else:
            value = out.fields.get(source, "")
        kind = key.rstrip("0123456789")
        limit = LIMITS.get(kind)
        if limit and len(value) > limit:
            if kind == "thing":
                value = value[: limit - 1] + "…"
            else:  # a phrase keeps its first clause: 已派单，承办部门已接收 → 已派单
                value = value.split("，")[0][:limit]
        data[key] = value or "-"
    return data
