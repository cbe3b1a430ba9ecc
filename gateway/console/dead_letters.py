"""Dead letters as a supervisor reads them: what kept failing, for whom, and why.

A filing the ticket platform kept refusing, a reply a channel would not take (a blocked bot, a
source's 4xx), a turn the bot failed on again and again: each lands in the dead-letter list
(``hl:dead``) instead of looping for ever. The 班长视图 shows them and can retry one (put back on
its stream: a filing starts its attempts again) or discard it, both audited.
"""

from __future__ import annotations

import json
from typing import Any

from gateway import keys

KINDS = {keys.OUTBOX: "filing", keys.OUTBOUND: "delivery", keys.INBOUND: "turn"}


def view(record: dict[str, Any]) -> dict[str, Any]:
    """One dead letter for the console: its kind, the conversation, what it said, the reason."""
    stream = record.get("stream", "")
    try:
        data = json.loads(record.get("data") or "{}")
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    if stream == keys.OUTBOX:
        draft = data.get("draft") or {}
        key, channel = draft.get("conversation_key", ""), draft.get("channel", "")
        text, ticket_id = draft.get("title") or draft.get("description", ""), ""
    else:  # an outbound message or an inbound one: both carry their conversation and words
        key, channel = data.get("conversation_key", ""), data.get("channel", "")
        text, ticket_id = data.get("text", ""), data.get("ticket_id") or ""
    return {
        "ref": record["ref"],
        "kind": KINDS.get(stream, stream),
        "message_kind": data.get("kind", "") if stream == keys.OUTBOUND else "",
        "at": record.get("at", 0),
        "reason": str(record.get("reason", ""))[:300],
        "key": key,
        "channel": channel,
        "text": str(text)[:200],
        "ticket_id": ticket_id,
    }
