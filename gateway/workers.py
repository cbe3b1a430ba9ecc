"""The workers: bot turns (inbound), deliveries (outbound), ticket filing (outbox), status changes.

Each effect is committed together with the acknowledgement of the entry that caused it, in one
Redis transaction, and every outbound message has a deterministic id de-duplicated on publish:
an entry handled twice (a worker died before acknowledging) files one ticket and sends one reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.exceptions import RedisError, WatchError

from bot.dialogue import Turn, parse_context
from bot.handoff import HandoffRules
from bot.state import ConversationState
from bot.texts import receipt, say, status_name
from channels import media
from channels.base import DeliveryError, InboundMessage, OutboundMessage
from config.workdays import BEIJING  # the centre's day, for the daily counts
from gateway import cursors, faults, filing, keys, metrics
from gateway.console import keys as console_keys
from gateway.console.conversations import QUEUE_LIMIT
from gateway.loops import repeat
from gateway.runtime import Runtime
from gateway.streams import ack, consume
from gateway.unit_digest import UnitDigest
from gateway.unit_notices import UnitNotifier
from ticket_client import deadlines
from ticket_client.base import (
    PlatformRejected,
    PlatformUnavailable,
    StatusChange,
    TicketDraft,
    TicketNotFound,
)

log = structlog.get_logger(__name__)

KNOWLEDGE_KEEP_S = 35 * 86400  # daily knowledge-base counts: the 班长视图 shows the last 30 days


def worker_tasks(rt: Runtime, concurrency: int) -> list[asyncio.Task[Any]]:
    """All worker loops of one process as asyncio tasks."""
    assert rt.streams is not None
    streams, stop, idle = rt.streams, rt.stop_event, rt.settings.claim_idle_ms
    tasks = []
    for i in range(concurrency):
        for stream, handler in (
            (keys.INBOUND, InboundHandler(rt)),
            (keys.OUTBOUND, OutboundHandler(rt)),
        ):
            name = f"{rt.consumer_prefix}-{i}"
            tasks.append(asyncio.create_task(consume(streams, stream, name, handler, stop, claim_idle_ms=idle)))
    for i in range(max(1, concurrency // 4)):
        name = f"{rt.consumer_prefix}-{i}"
        tasks.append(asyncio.create_task(consume(streams, keys.OUTBOX, name, OutboxHandler(rt), stop, claim_idle_ms=idle)))
    tasks.append(asyncio.create_task(_promote_loop(rt)))
    tasks.append(asyncio.create_task(StatusPoller(rt).run()))
    if rt.settings.unit_contacts_file is not None:  # 派单通知
        tasks.append(asyncio.create_task(UnitNotifier(rt).run()))
    if rt.settings.unit_digest_at:  # 待办提醒
        tasks.append(asyncio.create_task(UnitDigest(rt).run()))
    if rt.settings.handoff_remind_after_s > 0:
        tasks.append(asyncio.create_task(_wait_reminder_loop(rt)))
    if rt.settings.survey_remind_hours > 0:
        tasks.append(asyncio.create_task(_survey_reminder_loop(rt)))
    tasks.append(asyncio.create_task(_media_prune_loop(rt)))
    tasks.append(asyncio.create_task(_conversation_prune_loop(rt)))
    return tasks


class InboundHandler:
    """One bot turn per citizen message, committed atomically with its acknowledgement."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.rules = HandoffRules.from_settings(rt.settings)

    async def __call__(self, entry_id: str, fields: dict[str, str]) -> None:
        rt = self.rt
        assert rt.streams is not None and rt.bot is not None and rt.nlu is not None
        started = time.perf_counter()
        msg = InboundMessage.model_validate_json(fields["data"])
        conv_key = keys.conversation(msg.conversation_key)
        done_key = keys.done(msg.id)
        async with rt.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(conv_key, done_key)
                    if await pipe.exists(done_key):
                        pipe.multi()
                        ack(pipe, keys.INBOUND, entry_id)
                        await pipe.execute()
                        return
                    conv = await pipe.hgetall(conv_key)
                    state = ConversationState.model_validate_json(conv.get("state") or "{}")
                    mode = conv.get("mode") or "bot"
                    context = parse_context(state, conv.get("pending_rating"), msg.title or "", msg.conversation_key)
                    parse = rt.nlu.parse(msg.text, context)
                    turn = await rt.bot.handle(
                        msg, parse, state, mode, conv.get("pending_rating"), rules=self.rules,  # type: ignore[arg-type]
                        pending_solved=conv.get("pending_solved"),
                    )
                    faults.crash_point("inbound_before_commit")
                    pipe.multi()
                    await self._commit(pipe, msg, turn, parse.model_dump_json())
                    pipe.set(done_key, "1", ex=rt.settings.dedupe_ttl_s)
                    ack(pipe, keys.INBOUND, entry_id)
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        if turn.knowledge is not None:  # a question answered from the knowledge base, or its verdict
            metrics.KNOWLEDGE.labels(turn.knowledge[1]).inc()
        if turn.followup is not None:  # a 催办 or 补充 recorded on a filed ticket
            metrics.FOLLOWUPS.labels(turn.followup).inc()
        metrics.TURN_SECONDS.observe(time.perf_counter() - started)

    async def _commit(self, pipe: Any, msg: InboundMessage, turn: Turn, parse_json: str) -> None:
        rt = self.rt
        assert rt.streams is not None
        conv_key = keys.conversation(msg.conversation_key)
        now = time.time()
        pipe.hset(conv_key, mapping={"state": turn.state.model_dump_json(), "nlu": parse_json,
                                     "route": json.dumps(_route_fields(msg))})  # for operators' replies
        if turn.mode is not None:
            pipe.hset(conv_key, mapping={"mode": turn.mode, "handoff_reason": turn.handoff_reason, "mode_at": now})
        if turn.rated:
            pipe.hdel(conv_key, "pending_rating")
        if turn.asked_solved:  # the 回访's second question: answered in the next turn, or never
            pipe.hset(conv_key, "pending_solved", turn.asked_solved)
        else:
            pipe.hdel(conv_key, "pending_solved")
        if turn.followup == "urge":  # the live queue marks a citizen pressing for their ticket
            pipe.hset(conv_key, "urged_at", now)
        if turn.knowledge is not None:  # counted with the turn, once: the 班长视图's 知识库答复
            day = keys.knowledge_day(datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d"))
            pipe.hincrby(day, "|".join(turn.knowledge), 1)
            pipe.expire(day, KNOWLEDGE_KEEP_S)
        pipe.incr(console_keys.VERSION)  # the console's live queue refreshes
        for i, reply in enumerate(turn.replies):
            out = OutboundMessage(
                id=f"{msg.id}:{i}",
                conversation_key=msg.conversation_key,
                channel=msg.channel,
                kind=reply.kind,  # type: ignore[arg-type]
                text=reply.text,
                ticket_id=reply.ticket_id,
                buttons=reply.buttons,
                fields=_route_fields(msg),
            )
            await rt.streams.publish(out, pipe)
        if turn.file is not None:
            item = {
                "draft": turn.file.model_dump(mode="json"),
                "key": f"{msg.conversation_key}:{msg.id}",
                "attempt": 0,
                "received_at": msg.received_at.timestamp(),
                "fields": _route_fields(msg),
            }
            pipe.xadd(keys.OUTBOX, {"data": json.dumps(item, ensure_ascii=False)})


def _route_fields(msg: InboundMessage) -> dict[str, str]:
    """What a channel needs to route a reply back: the web session of a mini-program page, the
    post or e-mail a reply answers (``reply_to``), …"""
    fields = {"session_id": msg.meta["session_id"]} if "session_id" in msg.meta else {}
    if msg.reply_to:
        fields["reply_to"] = msg.reply_to
    return fields


class OutboundHandler:
    """Delivers one message through its channel; retried with back-off when the platform says so."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def __call__(self, entry_id: str, fields: dict[str, str]) -> None:
        rt = self.rt
        assert rt.streams is not None
        out = OutboundMessage.model_validate_json(fields["data"])
        sent_key = keys.sent(out.id)
        if await rt.redis.exists(sent_key):
            async with rt.redis.pipeline(transaction=True) as pipe:
                ack(pipe, keys.OUTBOUND, entry_id)
                await pipe.execute()
            return
        if await self._overtaken(out):
            # An operator took the conversation after the bot wrote this: the bot stays silent.
            note = {"dir": "sys", "kind": "bot_suppressed", "text": out.text, "at": time.time(), "id": out.id}
            async with rt.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(keys.history(out.conversation_key), {"data": json.dumps(note, ensure_ascii=False)},
                          maxlen=1000, approximate=True)
                pipe.set(sent_key, "dropped", ex=rt.settings.dedupe_ttl_s)
                ack(pipe, keys.OUTBOUND, entry_id)
                await pipe.execute()
            metrics.MESSAGES_OUT.labels(out.channel, "suppressed").inc()
            return
        channel = rt.channel_for(out.channel)
        if channel is None:
            await rt.streams.dead_letter(keys.OUTBOUND, entry_id, fields["data"], f"no channel {out.channel}")
            metrics.DEAD_LETTERS.labels(keys.OUTBOUND).inc()
            return
        try:
            await channel.send(out)
        except DeliveryError as exc:
            if exc.retry_after is None:
                await rt.streams.dead_letter(keys.OUTBOUND, entry_id, fields["data"], str(exc))
                metrics.DEAD_LETTERS.labels(keys.OUTBOUND).inc()
                return
            metrics.DELIVERY_RETRIES.labels(out.channel).inc()
            await rt.streams.schedule(keys.OUTBOUND, fields["data"], exc.retry_after)
            async with rt.redis.pipeline(transaction=True) as pipe:
                ack(pipe, keys.OUTBOUND, entry_id)
                await pipe.execute()
            return
        async with rt.redis.pipeline(transaction=True) as pipe:
            pipe.set(sent_key, "1", ex=rt.settings.dedupe_ttl_s)
            ack(pipe, keys.OUTBOUND, entry_id)
            await pipe.execute()
        metrics.MESSAGES_OUT.labels(out.channel, out.kind).inc()

    async def _overtaken(self, out: OutboundMessage) -> bool:
        """A bot message (reply, survey) queued before an operator took the conversation over."""
        if out.kind not in ("reply", "survey"):
            return False
        mode, mode_at = await self.rt.redis.hmget(keys.conversation(out.conversation_key), "mode", "mode_at")
        return mode == "operator" and float(mode_at or 0) > out.created_at.timestamp()


class OutboxHandler:
    """Files one ticket (idempotent by key) and tells the citizen its number."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def __call__(self, entry_id: str, fields: dict[str, str]) -> None:
        rt = self.rt
        assert rt.streams is not None and rt.tickets is not None
        item = json.loads(fields["data"])
        draft = TicketDraft.model_validate(item["draft"])
        if instead := await filing.replaced_by(rt.redis, draft.conversation_key, item["key"]):
            # a retried filing an operator filed by hand meanwhile: their ticket answered it
            log.info("filing_replaced", key=item["key"], ticket_id=instead)
            await filing.abandon(rt.tickets, item["key"])
            async with rt.redis.pipeline(transaction=True) as pipe:
                filing.filed(pipe, draft.conversation_key, item["key"])
                ack(pipe, keys.OUTBOX, entry_id)
                await pipe.execute()
            return
        try:
            ref = await rt.tickets.file(draft, item["key"])
        except PlatformRejected as exc:  # refused for good (open311 4xx): retrying the same is refused again
            log.error("filing_rejected", key=item["key"], error=str(exc))
            await filing.given_up(rt, entry_id, item, str(exc))
            return
        except PlatformUnavailable as exc:
            item["attempt"] = attempt = int(item.get("attempt", 0)) + 1
            data = json.dumps(item, ensure_ascii=False)
            if attempt >= rt.settings.outbox_max_attempts:
                log.error("filing_gave_up", key=item["key"], attempts=attempt, error=str(exc))
                await filing.given_up(rt, entry_id, item, str(exc))
                return
            delay = min(rt.settings.outbox_base_delay_s * 2 ** (attempt - 1), 300)
            log.warning("filing_postponed", key=item["key"], attempt=attempt, retry_in=delay, error=str(exc))
            metrics.FILING_RETRIES.inc()
            await rt.streams.schedule(keys.OUTBOX, data, delay)
            async with rt.redis.pipeline(transaction=True) as pipe:
                ack(pipe, keys.OUTBOX, entry_id)
                await pipe.execute()
            return
        faults.crash_point("outbox_after_file")
        department = draft.departments[0] if draft.departments else ""
        text = receipt(ref.ticket_id, department, deadlines.promised(draft, rt.settings, datetime.now(UTC)))
        out = OutboundMessage(
            id=f"filed:{item['key']}",
            conversation_key=draft.conversation_key,
            channel=draft.channel,
            kind="ticket_filed",
            text=text,
            ticket_id=ref.ticket_id,
            fields={**item.get("fields", {}), "status": ref.status},
        )
        async with rt.redis.pipeline(transaction=True) as pipe:
            await rt.streams.publish(out, pipe)
            pipe.sadd(keys.conversation_tickets(draft.conversation_key), ref.ticket_id)
            filing.filed(pipe, draft.conversation_key, item["key"])
            pipe.incr(console_keys.VERSION)
            ack(pipe, keys.OUTBOX, entry_id)
            await pipe.execute()
        if ref.created:
            metrics.TICKETS_FILED.labels(draft.channel).inc()
            metrics.TO_TICKET_SECONDS.observe(max(time.time() - float(item.get("received_at", time.time())), 0))


class StatusPoller:
    """Turns the ticket platform's status changes into messages to the citizens, in order, once."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def run(self) -> None:
        rt = self.rt
        await repeat(rt, self.poll_once, "status_poll_failed", lambda: rt.settings.status_poll_interval_s,
                     rt.status_kick)

    async def poll_once(self) -> int:
        rt = self.rt
        assert rt.tickets is not None and rt.streams is not None
        # One poller at a time across processes; publishing is idempotent anyway.
        if not await rt.redis.set(keys.STATUS_LOCK, rt.consumer_prefix, nx=True, px=10_000):
            return 0
        try:
            tickets = rt.tickets
            cursor, _ = await cursors.resume(  # lost everywhere: the last ten minutes' changes, not all
                rt, keys.STATUS_CURSOR, "status",
                lambda: tickets.last_change_before(datetime.now(UTC) - timedelta(seconds=cursors.RESUME_S)))
            changes = await tickets.changes_since(cursor, limit=200)
            for change in changes:
                await self._notify(change)
            if changes:
                await tickets.keep_cursor("status", changes[-1].seq)  # the ledger's copy, after a batch
            return len(changes)
        finally:
            await rt.redis.delete(keys.STATUS_LOCK)

    async def _new_due(self, change: StatusChange) -> str:
        """A 改派 that starts the 办理时限 again (HOTLINE_RESOLVE_RESTART_ON_REDISPATCH) tells the
        citizen the new one, since their receipt named the old; "" for any other change."""
        rt = self.rt
        if not (rt.settings.resolve_restart_on_redispatch and change.kind == "status" and change.status == "accepted"):
            return ""
        assert rt.tickets is not None
        ticket = await rt.tickets.get(change.ticket_id)  # the platform down: the poll tries again
        if ticket.redispatched_at != change.at or ticket.status in deadlines.DONE:
            return ""  # a first acceptance, or one that follows its main (merged: no time limit of its own)
        due = deadlines.due_at(ticket, rt.settings)
        return say("status_due", due=deadlines.said(due)) if due is not None else ""

    async def _notify(self, change: StatusChange) -> None:
        rt = self.rt
        assert rt.streams is not None
        async with rt.redis.pipeline(transaction=True) as pipe:
            if change.kind == "note":
                await rt.streams.publish(_progress_message(change), pipe)
            elif change.kind == "withdraw":
                await rt.streams.publish(_withdrawn_message(change), pipe)
            elif change.kind == "extend":
                await rt.streams.publish(_extended_message(change), pipe)
            elif change.status != "received":  # the filing message already said "received"
                note = f"（{change.note}）" if change.note else ""
                text = say("status_update", ticket_id=change.ticket_id, status=status_name(change.status), note=note)
                out = _status_message(change, text + await self._new_due(change), status_name(change.status))
                await rt.streams.publish(out, pipe)
            if change.kind == "status" and change.status == "resolved":  # a note never asks again
                survey = OutboundMessage(
                    id=f"survey:{change.seq}",
                    conversation_key=change.conversation_key,
                    channel=change.channel,
                    kind="survey",
                    text=say("survey", ticket_id=change.ticket_id),
                    ticket_id=change.ticket_id,
                    buttons=["满意", "基本满意", "不满意"],
                )
                await rt.streams.publish(survey, pipe)
                pipe.hset(keys.conversation(change.conversation_key), "pending_rating", change.ticket_id)
                if hours := rt.settings.survey_remind_hours:  # asked once more if unanswered (参评率)
                    now = time.time()
                    asked = json.dumps({"ticket": change.ticket_id, "key": change.conversation_key,
                                        "channel": change.channel, "seq": change.seq, "at": now})
                    pipe.zadd(keys.SURVEY_REMINDERS, {asked: now + hours * 3600})
            pipe.set(keys.STATUS_CURSOR, change.seq)
            await pipe.execute()


def _status_message(change: StatusChange, text: str, label: str, **flags: str) -> OutboundMessage:
    """A change as a ``status_update``: ``status`` and its ``label`` (the widget's tag), when, and
    the note alone too (a department's answer, 答复: a portal shows it as written); ``flags`` let
    the channels tell a progress note or a withdrawal apart."""
    return OutboundMessage(
        id=f"status:{change.seq}",
        conversation_key=change.conversation_key,
        channel=change.channel,
        kind="status_update",
        text=text,
        ticket_id=change.ticket_id,
        fields={"status": change.status, "status_label": label, **flags, "at": _iso(change.at), "note": change.note},
    )


def _progress_message(change: StatusChange) -> OutboundMessage:
    """A progress note (办理进展) as a ``status_update`` the channels can tell apart: ``progress``
    is "1" and ``status`` is the ticket's status, unchanged. A portal posts it as an interim
    answer, never as the 答复; WeChat keeps the citizen's last subscribe consent for a change."""
    return _status_message(change, say("status_progress", ticket_id=change.ticket_id, note=change.note),
                           say("status_progress_label"), progress="1")


def _extended_message(change: StatusChange) -> OutboundMessage:
    """延期 told as a progress note (the status stays: a portal posts it as an interim answer,
    WeChat keeps the last consent) that ``extended`` sets apart."""
    return _status_message(change, say("status_extended", ticket_id=change.ticket_id, note=change.note),
                           say("status_extended_label"), progress="1", extended="1")


def _withdrawn_message(change: StatusChange) -> OutboundMessage:
    """撤单 told as a ``status_update`` to ``closed`` (a portal posts it as the closing reply), in
    words that say the citizen asked for it, not 已归档; ``withdrawn`` lets a WeChat subscribe
    message name it 已撤单."""
    note = f"（{change.note}）" if change.note else ""
    return _status_message(change, say("status_withdrawn", ticket_id=change.ticket_id, note=note),
                           status_name(change.status, withdrawn=True), withdrawn="1")


def _iso(at: datetime) -> str:
    return at.isoformat()


async def _promote_loop(rt: Runtime) -> None:
    assert rt.streams is not None
    while not rt.stop_event.is_set():
        try:
            await rt.streams.promote_due()
        except (RedisError, OSError) as exc:
            log.warning("promote_failed", error=str(exc))
        await asyncio.sleep(0.25)


async def _reminder_loop(rt: Runtime, remind: Callable[[Runtime, float], Awaitable[int]], interval: float,
                         failed: str) -> None:
    """``remind`` the due ones every ``interval`` seconds until the runtime stops; Redis down is
    logged as ``failed`` and tried again at the next round."""
    while not rt.stop_event.is_set():
        try:
            await remind(rt, time.time())
        except (RedisError, OSError) as exc:
            log.warning(failed, error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.stop_event.wait(), timeout=interval)


def _wait_reminder_loop(rt: Runtime) -> Coroutine[Any, Any, None]:
    """A citizen handed to a person who is still waiting after ``handoff_remind_after_s`` hears,
    once, that they are in the queue and may go back to the bot (the handoff promised minutes)."""
    interval = max(0.2, min(30.0, rt.settings.handoff_remind_after_s / 4))
    return _reminder_loop(rt, remind_waiting, interval, "wait_reminder_failed")


def _survey_reminder_loop(rt: Runtime) -> Coroutine[Any, Any, None]:
    """The 回访 reminders that are due, every minute (or sooner with a short setting)."""
    interval = max(0.2, min(60.0, rt.settings.survey_remind_hours * 3600 / 4))
    return _reminder_loop(rt, remind_surveys, interval, "survey_reminder_failed")


async def remind_surveys(rt: Runtime, now: float) -> int:
    """Ask once more each survey due for it whose citizen has not answered (the ticket unrated,
    the survey still the one waiting) and has not written since (one who said 不评了 or moved on
    saw it); not for a ticket reopened or withdrawn meanwhile. Each is taken off the set by the
    worker that removes it, so it is asked at most once however many look; one whose ticket
    cannot be read now is put back a minute later."""
    assert rt.streams is not None and rt.tickets is not None
    sent = 0
    for asked in await rt.redis.zrangebyscore(keys.SURVEY_REMINDERS, "-inf", now, start=0, num=100):
        if not await rt.redis.zrem(keys.SURVEY_REMINDERS, asked):
            continue  # another worker has it
        survey = json.loads(asked)
        try:
            ticket = await rt.tickets.get(survey["ticket"])
        except PlatformUnavailable:
            await rt.redis.zadd(keys.SURVEY_REMINDERS, {asked: now + 60})
            continue
        except TicketNotFound:
            continue
        waiting = await rt.redis.hget(keys.conversation(survey["key"]), "pending_rating")
        wrote = await rt.redis.zscore(keys.CONVERSATIONS, survey["key"])
        if (ticket.rating is not None or ticket.status not in deadlines.DONE or ticket.withdrawn_at is not None
                or waiting != survey["ticket"] or (wrote is not None and wrote > survey["at"])):
            metrics.SURVEY_REMINDERS.labels("skipped").inc()
            continue
        out = OutboundMessage(
            id=f"survey-remind:{survey['seq']}",
            conversation_key=survey["key"],
            channel=survey["channel"],
            kind="survey",
            text=say("survey_remind", ticket_id=survey["ticket"]),
            ticket_id=survey["ticket"],
            buttons=["满意", "基本满意", "不满意"],
        )
        sent += await rt.streams.publish(out)
        metrics.SURVEY_REMINDERS.labels("asked").inc()
    return sent


async def _media_prune_loop(rt: Runtime) -> None:
    """Delete citizens' photos and voice notes older than ``media_keep_days``, every six hours."""
    while not rt.stop_event.is_set():
        try:
            deleted = 0
            for folder in media.media_roots(rt.settings):
                deleted += await asyncio.to_thread(media.prune, folder, rt.settings.media_keep_days, time.time())
            if deleted:
                log.info("media_pruned", files=deleted, keep_days=rt.settings.media_keep_days)
        except OSError as exc:
            log.warning("media_prune_failed", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.stop_event.wait(), timeout=6 * 3600)


# Forget one conversation, unless the citizen wrote in it since the scan picked it.
_FORGET = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return 1
"""


async def _conversation_prune_loop(rt: Runtime) -> None:
    """Forget conversations idle for ``conversation_keep_days``, every six hours."""
    while not rt.stop_event.is_set():
        try:
            forgotten = await prune_conversations(rt, time.time())
            if forgotten:
                log.info("conversations_pruned", conversations=forgotten,
                         keep_days=rt.settings.conversation_keep_days)
        except (RedisError, OSError, PlatformUnavailable) as exc:
            log.warning("conversation_prune_failed", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.stop_event.wait(), timeout=6 * 3600)


async def prune_conversations(rt: Runtime, now: float) -> int:
    """Forget every conversation whose citizen last wrote more than ``conversation_keep_days``
    before ``now`` and none of whose tickets changed since: its dialogue state, history, console
    draft and authors. Redis would otherwise keep every conversation ever held (each widget visit
    is one), and a citizen's words should not be kept longer than their matter needs. A
    conversation someone is handling, or with a ticket that moved within the period (a survey may
    be pending), is kept. The tickets themselves stay in the ledger. Returns how many were forgotten.
    """
    keep = rt.settings.conversation_keep_days
    if not keep or rt.tickets is None:
        return 0
    cutoff = now - keep * 24 * 3600
    forget = rt.redis.register_script(_FORGET)
    forgotten = kept = 0
    while True:
        stale = await rt.redis.zrangebyscore(keys.CONVERSATIONS, "-inf", cutoff, start=kept, num=200)
        if not stale:
            return forgotten
        for key in stale:
            mode = await rt.redis.hget(keys.conversation(key), "mode")
            tickets = await rt.tickets.list_for(key, limit=100)
            if mode in ("waiting", "operator") or any(t.updated_at.timestamp() > cutoff for t in tickets):
                kept += 1
                continue
            forgotten += int(await forget(
                keys=[keys.CONVERSATIONS, keys.conversation(key), keys.history(key), keys.conversation_tickets(key),
                      console_keys.draft(key), console_keys.authors(key)],
                args=[key, cutoff],
            ))


async def remind_waiting(rt: Runtime, now: float) -> int:
    """Queue the reminder for each conversation waiting too long; the message id names the wait
    (conversation + when it began), so each wait is reminded once, however many workers look."""
    assert rt.streams is not None
    if not HandoffRules.from_settings(rt.settings).staffed(datetime.fromtimestamp(now, UTC)):
        return 0  # nobody is in to answer: "still in the queue" can wait for the shift
    conv_keys = await rt.redis.zrevrange(keys.CONVERSATIONS, 0, QUEUE_LIMIT - 1)
    async with rt.redis.pipeline(transaction=False) as pipe:
        for key in conv_keys:
            pipe.hmget(keys.conversation(key), "mode", "mode_at", "channel", "route")
        rows = await pipe.execute()
    sent = 0
    for key, (mode, mode_at, channel, route) in zip(conv_keys, rows, strict=True):
        if mode != "waiting" or not mode_at or not channel:
            continue
        if now - float(mode_at) < rt.settings.handoff_remind_after_s:
            continue
        try:
            fields = {k: str(v) for k, v in json.loads(route or "{}").items()}
        except ValueError:
            fields = {}
        out = OutboundMessage(
            id=f"wait:{key}:{mode_at}",
            conversation_key=key,
            channel=channel,
            kind="reply",
            text=say("handoff_waiting"),
            buttons=["继续"],
            fields=fields,
        )
        sent += await rt.streams.publish(out)
    return sent
