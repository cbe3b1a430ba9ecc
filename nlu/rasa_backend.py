"""``HOTLINE_NLU_BACKEND=rasa``: intents and entities from a Rasa server's ``POST /model/parse``.

Rasa only knows the dialogue intents (and the entities ticket_id / rating) we export to it; the
builtin backend still fills category, request type, urgency, location, subject and departments.
If the Rasa server is down or slow (timeout), the builtin intents are used and
``rasa_error`` in the result's entities is not set — the result is simply the builtin one, so the
bot never waits longer than the timeout.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from .base import INTENTS, Entity, Intent, Parse
from .text import well_formed

log = logging.getLogger(__name__)


def map_rasa(payload: dict[str, Any], base: Parse, context: dict[str, Any] | None = None) -> Parse:
    """Merge a Rasa ``/model/parse`` response into a builtin ``Parse``.

    Rasa reads the text alone; the builtin rules also read where the conversation stands. So while
    the satisfaction survey waits, the builtin's rating (还行吧 -> 基本满意) stands, and a ticket
    number Rasa found keeps the builtin's reading of it (the ledger's form, separators aside)."""
    out = base.model_copy(deep=True)
    it = payload.get("intent") or {}
    name = str(it.get("name") or "")
    survey_answered = (context or {}).get("expecting") == "rating" and base.intent.name == "rate"
    if name in INTENTS and not survey_answered:
        out.intent = Intent(name=name, confidence=float(it.get("confidence") or 0.0))
        ranking = [
            Intent(name=str(r.get("name")), confidence=float(r.get("confidence") or 0.0))
            for r in payload.get("intent_ranking") or []
            if r.get("name") in INTENTS
        ]
        out.intent_ranking = ranking or [out.intent]
    ents: list[Entity] = []
    for e in payload.get("entities") or []:
        try:
            ents.append(
                Entity(
                    entity=str(e["entity"]),
                    value=str(e.get("value", "")),
                    start=int(e.get("start", -1)),
                    end=int(e.get("end", -1)),
                    confidence=float(e.get("confidence_entity", e.get("confidence", 1.0)) or 1.0),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    # the builtin's rule-based entities (ticket numbers, ratings) win where they cover the same
    # words, and are kept where Rasa missed them
    ruled = [e for e in base.entities if e.entity in ("ticket_id", "rating")]
    ents = [e for e in ents if not any(r.entity == e.entity and r.start < e.end and e.start < r.end for r in ruled)]
    have = {(e.entity, e.value) for e in ents}
    ents = [e for e in base.entities if (e.entity, e.value) not in have] + ents
    out.entities = ents
    return out


class RasaBackend:
    name = "rasa"

    def __init__(self, url: str, fallback: Any, timeout: float = 2.0, client: httpx.Client | None = None):
        self.url = url.rstrip("/") + "/model/parse"
        self.fallback = fallback
        self.client = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=0.5))

    def parse(self, text: str, context: dict[str, Any] | None = None) -> Parse:
        text = well_formed(text if isinstance(text, str) else str(text or ""))
        base: Parse = self.fallback.parse(text, context)
        if not (text or "").strip():
            return base
        try:
            r = self.client.post(self.url, json={"text": text[:2000]})
            r.raise_for_status()
            payload = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("rasa parse failed (%s); using builtin intents", type(exc).__name__)
            return base
        return map_rasa(payload, base, context)
