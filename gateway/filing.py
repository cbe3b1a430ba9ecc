"""A filing the outbox could not make reaches a person, and one given up leaves nothing behind.

The bot told the citizen 正在为您登记工单，工单编号稍后发送给您 and handed the draft to the outbox,
which retries while the platform is down. When the platform keeps failing past
``HOTLINE_OUTBOX_MAX_ATTEMPTS`` or refuses the ticket for good (an Open311 4xx), the filing goes to
the dead letters, and from then on nobody would tell the citizen anything. So, at that moment:

- the conversation goes to the operators' queue (待接入, 工单未能登记), unless a person has it;
- the citizen hears that a person follows it up (``filing_failed``);
- the operator's ticket form holds what the citizen asked for, photos included, and the timeline
  says the filing failed;

and then one of two things settles it. A supervisor retries it from 投递异常 (the platform is back,
a setting is fixed) and the citizen gets the number as usual; or an operator files the ticket from
the console, which discards the dead-lettered filing so that a retry cannot file it twice. A
filing discarded either way is ``abandon``-ed in the ticket client: the mirror ticket an Open311
backend kept for it, never sent, is forgotten, so it does not sit at 已受理 for ever.
"""

from __future__ import annotations

import json
import time
from typing import Any

import structlog
from redis.exceptions import WatchError

from bot.state import ConversationState
from bot.texts import say
from channels.base import OutboundMessage
from gateway import keys, metrics
from gateway.console import keys as console_keys
from gateway.console.conversations import HISTORY_LIMIT, TicketForm
from gateway.runtime import Runtime
from gateway.streams import Streams, history_entry
from ticket_client.base import TicketClient, TicketDraft, TicketError

log = structlog.get_logger(__name__)

FORM_KEEP_S = 7 * 24 * 3600  # as long as an operator's own edits of the form are kept


def form_of(draft: TicketDraft) -> TicketForm:
    """The console's ticket form, filled with the draft the outbox could not file."""
    return TicketForm(
        title=draft.title[:100], description=draft.description[:4000], category=draft.category[:3],
        request_type=draft.request_type[:10], urgent=draft.urgent, location_text=draft.location.text[:200],
        contact=draft.contact[:40], departments=draft.departments[:6],
    )


async def given_up(rt: Runtime, entry_id: str, item: dict[str, Any], reason: str) -> None:
    """Dead-letter the outbox entry ``entry_id`` (``item``) for ``reason``, after handing its
    conversation to a person and telling the citizen. Handoff first: a process that dies before
    the dead letter leaves the entry to be claimed and handed over again, which is harmless; the
    other way round, it would leave the citizen unheard."""
    assert rt.streams is not None
    await _hand_over(rt, item)
    await rt.streams.dead_letter(keys.OUTBOX, entry_id, json.dumps(item, ensure_ascii=False), reason)
    metrics.DEAD_LETTERS.labels(keys.OUTBOX).inc()


async def _hand_over(rt: Runtime, item: dict[str, Any]) -> None:
    assert rt.streams is not None
    draft = TicketDraft.model_validate(item["draft"])
    key = draft.conversation_key
    conv_key = keys.conversation(key)
    reply = OutboundMessage(
        id=f"filing_failed:{item['key']}", conversation_key=key, channel=draft.channel, kind="reply",
        text=say("filing_failed"), fields={k: str(v) for k, v in (item.get("fields") or {}).items()},
    )
    event = history_entry("sys", "filing_failed", say("filing_failed_event"), time.time(), author="")
    async with rt.redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(conv_key)
                conv = await pipe.hgetall(conv_key)
                if "channel" not in conv:  # forgotten meanwhile (retention): only the dead letter tells
                    await pipe.reset()
                    log.warning("filing_given_up_without_conversation", key=item["key"])
                    return
                state = ConversationState.model_validate_json(conv.get("state") or "{}")
                # the photos go with the ticket the operator files (console: attachments_of)
                state.pending_attachments = list(dict.fromkeys([*state.pending_attachments, *draft.attachments]))
                pipe.multi()
                pipe.hset(conv_key, "state", state.model_dump_json())
                if (conv.get("mode") or "bot") not in ("waiting", "operator"):
                    pipe.hset(conv_key, mapping={"mode": "waiting", "handoff_reason": "filing_failed",
                                                 "mode_at": time.time(), "assignee": ""})
                pipe.set(console_keys.draft(key), form_of(draft).model_dump_json(), ex=FORM_KEEP_S, nx=True)
                pipe.xadd(keys.history(key), {"data": event}, maxlen=HISTORY_LIMIT, approximate=True)
                await rt.streams.publish(reply, pipe)
                pipe.incr(console_keys.VERSION)
                await pipe.execute()
                break
            except WatchError:
                continue
    log.warning("filing_handed_to_operator", key=item["key"], conversation=key)


async def settle(streams: Streams, tickets: TicketClient | None, ref: str, retry: bool) -> dict[str, Any] | None:
    """Retry or discard the dead letter ``ref`` (console, admin API, command line alike); a
    discarded filing is abandoned. None when it is not (or no longer) there."""
    record = await streams.settle_dead_letter(ref, retry)
    if record is not None and not retry and record.get("stream") == keys.OUTBOX and tickets is not None:
        key = str(_item(record).get("key") or "")
        try:
            if key and (ticket_id := await tickets.abandon(key)):
                log.info("filing_abandoned", key=key, ticket_id=ticket_id)
        except TicketError as exc:  # discarded all the same; its unsent ticket stays at 已受理
            log.warning("filing_not_abandoned", key=key, error=str(exc))
    return record


async def superseded(streams: Streams, tickets: TicketClient | None, conversation_key: str) -> list[dict[str, Any]]:
    """Discard the conversation's dead-lettered filings: an operator has just filed its ticket by
    hand, and a supervisor's 重试 must not file it a second time. Returns what was discarded."""
    discarded = []
    for record in await streams.dead_letters(10_000):
        draft = _item(record).get("draft")
        if record.get("stream") != keys.OUTBOX or not isinstance(draft, dict):
            continue
        if draft.get("conversation_key") == conversation_key:
            ref = record["ref"]
            if (settled := await settle(streams, tickets, ref, retry=False)) is not None:
                discarded.append({**settled, "ref": ref})
    return discarded


def _item(record: dict[str, Any]) -> dict[str, Any]:
    try:
        item = json.loads(record.get("data") or "{}")
    except ValueError:
        return {}
    return item if isinstance(item, dict) else {}
