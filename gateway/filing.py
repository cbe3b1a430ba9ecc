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

The two must not both file it. Each filing handed over is marked in its conversation (a hash field
``given_up:<filing key>``): ``dead`` while it waits in the dead letters, ``retrying:<time>`` once a
supervisor puts it back on the outbox, ``replaced:<ticket>`` once an operator filed the ticket by
hand while that retry was still under way. The console refuses to file for a short while after a
retry (its outcome comes within seconds, and the operator sees it); the outbox files nothing marked
``replaced`` (the operator's ticket answered it); and a retry that files clears the mark.
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
GIVEN_UP = "given_up:"  # conversation hash field prefix, one per filing handed to a person
RETRY_HOLD_S = 120  # after a supervisor's retry, the console waits this long for its outcome
# mark a filing of a conversation that still exists (a forgotten one is not brought back as a stub)
_MARK = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 0"


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
                pipe.hset(conv_key, GIVEN_UP + item["key"], "dead")
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
    discarded filing is abandoned. None when it is not (or no longer) there. A retried filing is
    marked ``retrying`` in its conversation first, so an operator's filing waits for its outcome."""
    if retry and ref.startswith(keys.OUTBOX + "/"):
        found = next((_item(r) for r in await streams.dead_letters(10_000) if r.get("ref") == ref), {})
        if (mark := _mark_of(found)) is not None:
            await streams.redis.eval(_MARK, 1, *mark, f"retrying:{time.time():.3f}")
    record = await streams.settle_dead_letter(ref, retry)
    if record is None or retry or record.get("stream") != keys.OUTBOX:
        return record
    item = _item(record)
    if (mark := _mark_of(item)) is not None:
        await streams.redis.hdel(*mark)
    if tickets is not None:
        await abandon(tickets, str(item.get("key") or ""))
    return record


def _mark_of(item: dict[str, Any]) -> tuple[str, str] | None:
    """The conversation hash and field that mark an outbox item's filing, if it names both."""
    draft = item.get("draft")
    if isinstance(draft, dict) and draft.get("conversation_key") and item.get("key"):
        return keys.conversation(str(draft["conversation_key"])), GIVEN_UP + str(item["key"])
    return None


async def abandon(tickets: TicketClient, key: str) -> None:
    """Forget the mirror ticket of a filing that will not be made (see ``TicketClient.abandon``)."""
    try:
        if key and (ticket_id := await tickets.abandon(key)):
            log.info("filing_abandoned", key=key, ticket_id=ticket_id)
    except TicketError as exc:  # dropped all the same; its unsent ticket stays at 已受理
        log.warning("filing_not_abandoned", key=key, error=str(exc))


def retrying(conv: dict[str, str], now: float | None = None) -> float | None:
    """Seconds since a supervisor retried one of the conversation's given-up filings, if that was
    less than RETRY_HOLD_S ago (its outcome is due): an operator filing now could file it twice."""
    now = time.time() if now is None else now
    ages = []
    for field, mark in conv.items():
        if field.startswith(GIVEN_UP) and mark.startswith("retrying:"):
            try:
                ages.append(now - float(mark.split(":", 1)[1]))
            except ValueError:
                continue
    recent = [age for age in ages if age < RETRY_HOLD_S]
    return max(min(recent), 0.0) if recent else None


async def replaced(redis: Any, conversation_key: str, conv: dict[str, str], ticket_id: str) -> None:
    """An operator filed ``ticket_id`` by hand: a retried filing of the conversation still under way
    (its dead letter already gone) must not file too; the outbox drops what is marked so."""
    fields = [f for f, v in conv.items() if f.startswith(GIVEN_UP) and v.startswith("retrying:")]
    for field in fields:
        await redis.eval(_MARK, 1, keys.conversation(conversation_key), field, f"replaced:{ticket_id}")


async def replaced_by(redis: Any, conversation_key: str, filing_key: str) -> str | None:
    """The ticket an operator filed in place of this filing (it must not be filed), or None."""
    mark = await redis.hget(keys.conversation(conversation_key), GIVEN_UP + filing_key)
    return mark.split(":", 1)[1] if mark and mark.startswith("replaced:") else None


def filed(pipe: Any, conversation_key: str, filing_key: str) -> None:
    """The outbox filed it: whatever mark it had is done with."""
    pipe.hdel(keys.conversation(conversation_key), GIVEN_UP + filing_key)


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
