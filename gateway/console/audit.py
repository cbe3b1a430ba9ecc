"""The audit log of operator actions: a capped Redis stream, newest first when read."""

from __future__ import annotations

import json
import time
from typing import Any

import structlog

from gateway.console import keys as ck

log = structlog.get_logger("console.audit")


async def record(redis: Any, actor: str, action: str, target: str = "", **detail: Any) -> None:
    """Append one entry; every console action calls this (logins and refusals too)."""
    entry = {"at": time.time(), "actor": actor, "action": action, "target": target,
             "detail": json.dumps(detail, ensure_ascii=False, default=str)}
    await redis.xadd(ck.AUDIT, entry, maxlen=ck.AUDIT_MAXLEN, approximate=True)
    log.info("console_action", actor=actor, action=action, target=target)


async def entries(redis: Any, limit: int = 200, actor: str = "", action: str = "") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = "+"
    while len(found) < limit:
        batch = await redis.xrevrange(ck.AUDIT, max=cursor, count=500)
        if not batch:
            break
        for entry_id, fields in batch:
            if (actor and fields.get("actor") != actor) or (action and fields.get("action") != action):
                continue
            found.append({"id": entry_id, "at": float(fields.get("at", 0)), "actor": fields.get("actor", ""),
                          "action": fields.get("action", ""), "target": fields.get("target", ""),
                          "detail": json.loads(fields.get("detail") or "{}")})
            if len(found) >= limit:
                break
        last = batch[-1][0]
        ms, seq = last.split("-")
        cursor = f"{ms}-{int(seq) - 1}" if int(seq) > 0 else f"{int(ms) - 1}-18446744073709551615"
        if int(ms) <= 0 and int(seq) == 0:
            break
    return found
