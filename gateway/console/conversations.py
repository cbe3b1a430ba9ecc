"""What the console does to conversations: the queue, one conversation's view, and handing it over.

Ownership lives in the conversation's own hash (``hl:conv:{key}``: ``mode``, ``assignee``,
``mode_at``) and every change of hands is one Lua script, so two operators pressing 接管 at once
get one winner, and the bot's turn, which WATCHes the same hash, retries and sees the new owner.
Bot replies already queued when a person took over are dropped by the delivery worker
(``OutboundHandler._overtaken``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from bot.state import ConversationState
from bot.texts import receipt, say
from channels.base import OutboundMessage, WellFormedStr
from gateway import keys
from gateway.console import keys as ck
from gateway.errors import Conflict, Forbidden, NotFound
from nlu.departments import DepartmentMap
from ticket_client import deadlines
from ticket_client.base import LocationInfo, Ticket, TicketDraft

if TYPE_CHECKING:
    from config.settings import Settings

HISTORY_LIMIT = 1000
QUEUE_LIMIT = 500
MODE_ORDER = {"waiting": 0, "operator": 1, "bot": 2, "closed": 3}

# KEYS: conversation hash, version counter. ARGV: user, now.
# Returns {code, owner}: 1 taken, 2 already yours, 0 someone else owns it, -1 no such conversation.
_TAKEOVER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, ''} end
local mode = redis.call('HGET', KEYS[1], 'mode') or 'bot'
local owner = redis.call('HGET', KEYS[1], 'assignee') or ''
if mode == 'operator' and owner ~= '' then
  if owner == ARGV[1] then return {2, owner} end
  return {0, owner}
end
local since = ARGV[2]
if mode == 'waiting' then
  since = redis.call('HGET', KEYS[1], 'mode_at') or ARGV[2]
else
  redis.call('HSET', KEYS[1], 'handoff_reason', 'operator')
end
redis.call('HSET', KEYS[1], 'mode', 'operator', 'assignee', ARGV[1], 'mode_at', ARGV[2],
           'assigned_at', ARGV[2], 'waiting_since', since)
redis.call('HDEL', KEYS[1], 'first_reply_at')
redis.call('INCR', KEYS[2])
return {1, ARGV[1]}
"""

# ARGV: user, now, is_supervisor ('1'/'0'), new mode ('bot' | 'closed').
# Returns {code, owner}: 1 done, 0 nothing to hand back, -2 owned by someone else, -1 missing.
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, ''} end
local mode = redis.call('HGET', KEYS[1], 'mode') or 'bot'
local owner = redis.call('HGET', KEYS[1], 'assignee') or ''
if ARGV[4] == 'bot' and mode ~= 'operator' and mode ~= 'waiting' then return {0, owner} end
if ARGV[4] == 'closed' and mode == 'closed' then return {0, owner} end
if owner ~= '' and owner ~= ARGV[1] and ARGV[3] ~= '1' then return {-2, owner} end
redis.call('HSET', KEYS[1], 'mode', ARGV[4], 'assignee', '', 'mode_at', ARGV[2], 'handoff_reason', '')
redis.call('INCR', KEYS[2])
return {1, owner}
"""

# ARGV: user, target user, now, is_supervisor.
_TRANSFER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, ''} end
local mode = redis.call('HGET', KEYS[1], 'mode') or 'bot'
local owner = redis.call('HGET', KEYS[1], 'assignee') or ''
if mode ~= 'operator' then return {0, owner} end
if owner ~= ARGV[1] and ARGV[4] ~= '1' then return {-2, owner} end
redis.call('HSET', KEYS[1], 'assignee', ARGV[2], 'assigned_at', ARGV[3])
redis.call('INCR', KEYS[2])
return {1, owner}
"""


class TicketForm(BaseModel):
    """The side panel's ticket fields, editable before filing."""

    title: WellFormedStr = Field(default="", max_length=100)
    description: WellFormedStr = Field(default="", max_length=4000)
    category: list[WellFormedStr] = Field(default_factory=list, max_length=3)
    request_type: WellFormedStr = Field(default="", max_length=10)
    urgent: bool = False
    location_text: WellFormedStr = Field(default="", max_length=200)
    contact: WellFormedStr = Field(default="", max_length=40)
    departments: list[WellFormedStr] = Field(default_factory=list, max_length=6)


def _f(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _nlu_of(conv: dict[str, str]) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(conv.get("nlu") or "{}")
    except ValueError:
        return {}
    return data


def _state_of(conv: dict[str, str]) -> ConversationState:
    try:
        return ConversationState.model_validate_json(conv.get("state") or "{}")
    except ValueError:
        return ConversationState()


URGED_SHOWN_S = 24 * 3600  # how long a queue row shows 催办 after the citizen pressed


def summary(key: str, conv: dict[str, str], now: float) -> dict[str, Any]:
    """One queue row."""
    nlu = _nlu_of(conv)
    state = _state_of(conv)
    cat = nlu.get("category") or {}
    category = [c for c in (cat.get("level1"), cat.get("level2")) if c]
    if not category and state.draft is not None:
        category = state.draft.category[:2]
    mode = conv.get("mode") or "bot"
    mode_at = _f(conv.get("mode_at"))
    urgent = bool(nlu.get("urgency")) or bool(state.draft and state.draft.urgent) or conv.get("handoff_reason") == "urgent"
    return {
        "key": key,
        "channel": conv.get("channel", ""),
        "mode": mode,
        "reason": conv.get("handoff_reason", "") if mode in ("waiting", "operator") else "",
        "assignee": conv.get("assignee", "") if mode == "operator" else "",
        "mode_at": mode_at,
        "waiting_since": mode_at if mode == "waiting" else _f(conv.get("waiting_since")),
        "first_at": _f(conv.get("first_at")),
        "last_in_at": _f(conv.get("last_in_at")),
        "last_text": conv.get("last_text", ""),
        "message_count": int(_f(conv.get("message_count"))),
        "category": category,
        "subject": (nlu.get("subject") or (state.draft.subject if state.draft else ""))[:40],
        "urgent": urgent,
        "first_reply_at": _f(conv.get("first_reply_at")),
        # a 催办 the bot recorded within URGED_SHOWN_S: the row says so (the ticket is not in the queue)
        "urged": now - _f(conv.get("urged_at")) <= URGED_SHOWN_S,
    }


def _order(row: dict[str, Any]) -> tuple[Any, ...]:
    if row["mode"] == "waiting":
        return (0, not row["urgent"], row["waiting_since"])
    return (MODE_ORDER.get(row["mode"], 2), False, -row["last_in_at"])


async def queue(
    redis: Any, user: str, *, status: str = "", channel: str = "", assignee: str = ""
) -> dict[str, Any]:
    """The conversations (waiting for a person first), counts by status and the filters applied."""
    now = time.time()
    conv_keys = await redis.zrevrange(keys.CONVERSATIONS, 0, QUEUE_LIMIT - 1)
    async with redis.pipeline(transaction=False) as pipe:
        for key in conv_keys:
            pipe.hgetall(keys.conversation(key))
        convs = await pipe.execute()
    rows = [summary(k, c, now) for k, c in zip(conv_keys, convs, strict=True) if c]
    counts = {"all": len(rows), "waiting": 0, "operator": 0, "bot": 0, "closed": 0, "mine": 0, "urgent": 0}
    for row in rows:
        counts[row["mode"]] = counts.get(row["mode"], 0) + 1
        counts["mine"] += row["assignee"] == user
        counts["urgent"] += row["urgent"] and row["mode"] == "waiting"
    if status == "mine":
        rows = [r for r in rows if r["assignee"] == user]
    elif status:
        rows = [r for r in rows if r["mode"] == status]
    if channel:
        rows = [r for r in rows if r["channel"] == channel or r["channel"].startswith(channel + ":")]
    if assignee == "none":
        rows = [r for r in rows if not r["assignee"]]
    elif assignee:
        rows = [r for r in rows if r["assignee"] == (user if assignee == "me" else assignee)]
    rows.sort(key=_order)
    return {"now": now, "counts": counts, "conversations": rows,
            "channels": sorted({c.get("channel", "") for c in convs if c}),
            "dead_letters": await redis.llen(keys.DEAD_LETTERS)}  # the supervisors' tab shows it


async def load(redis: Any, key: str) -> dict[str, str]:
    conv: dict[str, str] = await redis.hgetall(keys.conversation(key))
    if not conv or "channel" not in conv:
        raise NotFound("会话不存在")
    return conv


async def history(redis: Any, key: str) -> list[dict[str, Any]]:
    entries = await redis.xrange(keys.history(key), count=HISTORY_LIMIT)
    authors = await redis.hgetall(ck.authors(key))
    out = []
    for entry_id, fields in entries:
        try:
            item = json.loads(fields.get("data") or "{}")
        except ValueError:
            continue
        who = {"in": "citizen", "note": "note", "sys": "system"}.get(item.get("dir", ""), "bot")
        if item.get("dir") == "out" and item.get("kind") == "operator":
            who = "operator"
        elif item.get("dir") == "out" and item.get("kind") in ("ticket_filed", "status_update"):
            who = "system"
        out.append({
            "id": entry_id,
            "from": who,
            "kind": item.get("kind", ""),
            "title": item.get("title", ""),  # a letter's own title, shown above its words
            "text": item.get("text", ""),
            "at": _f(item.get("at")),
            "ticket_id": item.get("ticket_id"),
            "author": item.get("author") or authors.get(str(item.get("id", "")), ""),
            "media": item.get("media") or [],  # a photo, voice note or video came with it
            "refs": item.get("refs") or [],  # each one's stored reference (``/api/console/media``)
            "place": item.get("place", ""),  # a location the citizen shared
            "geo": item.get("geo"),  # its [lat, lng] in HOTLINE_MAP_DATUM, for the map link
            "menu": item.get("menu", ""),  # the menu button the citizen tapped (我要反映, 进度查询 …)
        })
    return out


def nlu_panel(conv: dict[str, str]) -> dict[str, Any]:
    """What the NLU found in the latest message, as the side panel shows it."""
    nlu = _nlu_of(conv)
    cat = nlu.get("category") or {}
    loc = nlu.get("location") or {}
    deps = nlu.get("departments") or {}
    intent = nlu.get("intent") or {}
    parts = {k: v for k, v in loc.items() if k not in ("text", "start", "end") and v}
    return {
        "intent": intent.get("name", ""),
        "intent_confidence": _f(intent.get("confidence")),
        "category": [c for c in (cat.get("level1"), cat.get("level2"), cat.get("level3")) if c],
        "category_confidence": _f(cat.get("confidence")),
        "low_confidence": bool(cat.get("low_confidence", True)),
        "request_type": nlu.get("request_type", ""),
        "urgency": bool(nlu.get("urgency")),
        "urgency_reason": nlu.get("urgency_reason", ""),
        "location": loc.get("text", ""),
        "location_parts": parts,
        "subject": nlu.get("subject", ""),
        # 属地 units as the offices of the place found (属地街道办事处 → 洞井街道办事处)
        "departments": DepartmentMap.shipped().localize(
            [d for d in [deps.get("primary", ""), *(deps.get("co_handlers") or [])] if d], parts),
    }


def place_word(conv: dict[str, str]) -> str:
    """The most specific name of where the conversation's matter is (its draft's place, else what
    the NLU found, else the place of the citizen's last ticket): what other tickets at that place
    mention (``LocationInfo.place``: an estate or landmark, else a road and number, or a road; a
    district alone is too wide). Empty when there is none."""
    state = _state_of(conv)
    candidates = [
        state.draft.location_parts if state.draft else {},
        nlu_panel(conv)["location_parts"],
        state.last_place.parts if state.last_place else {},
    ]
    return next((word for parts in candidates if (word := LocationInfo(parts=parts).place())), "")


async def ticket_form(redis: Any, key: str, conv: dict[str, str]) -> TicketForm:
    """The operator's edited form if any, else the bot's draft, else what the NLU found."""
    saved = await redis.get(ck.draft(key))
    if saved:
        return TicketForm.model_validate_json(saved)
    state = _state_of(conv)
    if state.draft is not None:
        d = state.draft
        return TicketForm(title=d.subject or d.description[:20], description=d.description, category=d.category,
                          request_type=d.request_type, urgent=d.urgent, location_text=d.location_text,
                          contact=d.contact,
                          departments=DepartmentMap.shipped().localize(d.departments, d.location_parts)[:6])
    panel = nlu_panel(conv)
    return TicketForm(title=panel["subject"][:100], description=conv.get("last_text", ""),
                      category=panel["category"], request_type=panel["request_type"][:10],
                      urgent=panel["urgency"], location_text=panel["location"][:200],
                      departments=panel["departments"][:6])


# What operators call each status (console.js STATUS says the same); the citizen hears longer ones.
STATUS_LABELS = {"received": "已受理", "accepted": "已派单", "processing": "办理中", "resolved": "已办结",
                 "closed": "已归档", "returned": "已退回", "reopened": "重新办理", "withdrawn": "已撤单"}


def ticket_view(t: Ticket, settings: Settings | None = None, now: datetime | None = None) -> dict[str, Any]:
    """A ticket in a list; ``now`` pins the moment 超期 and 即将超期 are judged at (a list and the
    filter that found it are judged at the same moment)."""
    due = deadlines.due_at(t, settings) if settings is not None else None
    now = now or datetime.now(UTC)
    return {
        "due_at": due.timestamp() if due else None,
        "overdue": deadlines.overdue(t, due, now),
        "due_soon": settings is not None and deadlines.due_soon(t, due, now, settings),
        "ticket_id": t.ticket_id, "status": t.status, "title": t.title, "category": t.category,
        "channel": t.channel, "urgent": t.urgent,
        "created_at": t.created_at.timestamp(), "updated_at": t.updated_at.timestamp(),
        "history": [{"status": h.status, "note": h.note, "at": h.at.timestamp(), "kind": h.kind} for h in t.history],
        "rating": t.rating,
        **urged([t]),  # 催办: how often the citizen pressed for it, and when last
        # open311: the platform's own number, and the status is moved there, not in the console
        "platform_request_id": t.platform_request_id,
        "merged_into": t.merged_into,  # 并单: the main ticket it follows
        "withdrawn_at": t.withdrawn_at.timestamp() if t.withdrawn_at else None,  # 撤单 (then closed)
        # 办结: when the work finished it, and whether after its 办理时限 then (超期办结)
        "done_at": t.done_at.timestamp() if t.done_at else None, "done_late": t.done_late,
        # 签收: when a department took it on, whether late; 超时未签收: not yet, past its time to
        "responded_at": t.responded_at.timestamp() if t.responded_at else None, "responded_late": t.responded_late,
        "unanswered": settings is not None and deadlines.unanswered(t, settings, now),
        "extended_until": t.extended_until.timestamp() if t.extended_until else None,  # 延期: the 办理时限 granted
        "extension_pending": t.extension_pending is not None,  # 延期待审核: a department's 延期申请 waits
        "assists": len(t.assists),  # 协办意见 its 协办 wrote for the 主办
    }


def followup_views(t: Ticket) -> list[dict[str, Any]]:
    """A ticket's 催办, 补充 and 协办意见 as 办理记录 shows them (``ticket_id``: whose they are, for a
    main that shows those of the tickets merged into it; ``unit``: a 协办意见's)."""
    return [{"kind": f.kind, "at": f.at.timestamp(), "note": f.note, "ticket_id": t.ticket_id, "unit": f.unit}
            for f in t.followups]


def urged(tickets: Iterable[Ticket]) -> dict[str, Any]:
    """市民催办 of a matter: how often the citizens of ``tickets`` (a main and its repeats) pressed
    for it, and when last."""
    pressed = [u.at.timestamp() for t in tickets for u in t.urges]
    return {"urges": len(pressed), "urged_at": max(pressed, default=None)}


def ticket_detail(t: Ticket, settings: Settings | None = None, now: datetime | None = None) -> dict[str, Any]:
    """All of a ticket an operator reads to a citizen on the phone (工单查询): what, where, who
    handles it, every step with its note, and the citizen's rating."""
    return {
        **ticket_view(t, settings, now),
        "conversation_key": t.conversation_key, "contact": t.contact,
        "description": t.description, "request_type": t.request_type,
        "location": t.location.text, "departments": t.departments, "attachments": len(t.attachments),
        "rating_comment": t.rating_comment,
        "solved": t.solved,  # 解决情况, the 回访's second answer: true 已解决, false 未解决, null not given
        # the citizen's 催办 and 补充 in their words, the 协办's 协办意见: 办理记录 shows them among the steps
        "followups": followup_views(t),
        "additions": len(t.additions),
        # operators' 更正, 改派 and 审核无误: who, when, why, and the fields before and after
        "revisions": [{"at": r.at.timestamp(), "by": r.by, "reason": r.reason, "before": r.before,
                       "after": r.after, "dispatched": r.dispatched} for r in t.revisions],
        # 延期申请: who asked for which day and why, and what the centre decided (by whom, when, why)
        "extension_requests": [{
            "at": r.at.timestamp(), "unit": r.unit, "until": r.until.timestamp(), "reason": r.reason,
            "outcome": r.outcome, "decided_at": r.decided_at.timestamp() if r.decided_at else None,
            "decided_by": r.decided_by, "answer": r.answer,
            "granted_until": r.granted_until.timestamp() if r.granted_until else None,
        } for r in t.extension_requests],
    }


class Handover:
    """Takeover, hand-back, close and transfer: the scripts and the messages they send."""

    def __init__(self, redis: Any, streams: Any) -> None:
        self.redis = redis
        self.streams = streams
        self._takeover = redis.register_script(_TAKEOVER)
        self._release = redis.register_script(_RELEASE)
        self._transfer = redis.register_script(_TRANSFER)

    async def _sys(self, key: str, kind: str, text: str, author: str) -> None:
        entry = {"dir": "sys", "kind": kind, "text": text, "at": time.time(), "author": author}
        await self.redis.xadd(keys.history(key), {"data": json.dumps(entry, ensure_ascii=False)},
                              maxlen=HISTORY_LIMIT, approximate=True)

    async def take(self, key: str, user: str) -> bool:
        """Own the conversation; True if newly taken (False: it was already yours). 409 if someone else won."""
        code, owner = await self._takeover(keys=[keys.conversation(key), ck.VERSION], args=[user, time.time()])
        code = int(code)
        if code == -1:
            raise NotFound("会话不存在")
        if code == 0:
            raise Conflict(f"该会话已被 {owner} 接管")
        if code == 1:
            await self._sys(key, "takeover", f"{user} 接管了会话，机器人已静默", user)
            await self.say(key, user, say("console_joined"), author=user)
        return code == 1

    async def release(self, key: str, user: str, supervisor: bool, to: str) -> str:
        """Hand back to the bot (``to='bot'``) or close (``'closed'``); returns the previous owner."""
        code, owner = await self._release(
            keys=[keys.conversation(key), ck.VERSION], args=[user, time.time(), "1" if supervisor else "0", to]
        )
        code = int(code)
        if code == -1:
            raise NotFound("会话不存在")
        if code == -2:
            raise Forbidden(f"该会话由 {owner} 处理，只有处理人或班长可以操作")
        if code == 0:
            raise Conflict("会话当前不在人工处理中" if to == "bot" else "会话已结束")
        if to == "bot":
            await self._sys(key, "handback", f"{user} 将会话交还机器人", user)
            await self.say(key, user, say("console_handed_back"), kind="reply")
        else:
            await self._sys(key, "closed", f"{user} 结束了会话", user)
            await self.say(key, user, say("console_closed"), author=user)
        return str(owner)

    async def transfer(self, key: str, user: str, supervisor: bool, to: str) -> str:
        code, owner = await self._transfer(
            keys=[keys.conversation(key), ck.VERSION], args=[user, to, time.time(), "1" if supervisor else "0"]
        )
        code = int(code)
        if code == -1:
            raise NotFound("会话不存在")
        if code == -2:
            raise Forbidden(f"该会话由 {owner} 处理，只有处理人或班长可以转交")
        if code == 0:
            raise Conflict("只能转交人工处理中的会话，请先接管")
        await self._sys(key, "transfer", f"{user} 将会话转交给 {to}", user)
        return str(owner)

    async def say(self, key: str, user: str, text: str, *, kind: str = "operator", author: str = "",
                  message_id: str = "") -> OutboundMessage:
        """Send to the citizen on their own channel through the outbound stream (idempotent by id)."""
        conv = await load(self.redis, key)
        try:
            route = json.loads(conv.get("route") or "{}")
        except ValueError:
            route = {}
        out = OutboundMessage(
            id=f"op:{message_id or uuid.uuid4().hex}",
            conversation_key=key,
            channel=conv["channel"],
            kind=kind,  # type: ignore[arg-type]
            text=text,
            fields={k: str(v) for k, v in route.items()},
        )
        if author:
            await self.redis.hset(ck.authors(key), out.id, author)
        await self.streams.publish(out)
        await self.redis.incr(ck.VERSION)
        return out

    async def reply(self, key: str, user: str, text: str, message_id: str = "") -> OutboundMessage:
        """An operator's reply: only the conversation's owner may send one."""
        conv = await load(self.redis, key)
        if conv.get("mode") != "operator" or conv.get("assignee") != user:
            raise Forbidden("请先接管该会话再回复" if conv.get("mode") != "operator"
                            else f"该会话由 {conv.get('assignee')} 处理")
        out = await self.say(key, user, text, author=user, message_id=message_id)
        now = time.time()
        if await self.redis.hsetnx(keys.conversation(key), "first_reply_at", now):
            waited = max(now - _f(conv.get("waiting_since"), now), 0.0)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lpush(ck.FIRST_REPLY, f"{waited:.3f}")
                pipe.ltrim(ck.FIRST_REPLY, 0, 999)
                await pipe.execute()
        return out

    async def note(self, key: str, user: str, text: str) -> None:
        await load(self.redis, key)
        entry = {"dir": "note", "kind": "note", "text": text, "at": time.time(), "author": user}
        await self.redis.xadd(keys.history(key), {"data": json.dumps(entry, ensure_ascii=False)},
                              maxlen=HISTORY_LIMIT, approximate=True)
        await self.redis.incr(ck.VERSION)

    async def filed(self, key: str, draft: TicketDraft, ticket_id: str, status: str, user: str,
                    request_id: str, due: str = "") -> None:
        """Tell the citizen the number of a ticket an operator filed (and its 办理时限, ``due``, as
        deadlines.said words), and start the bot's draft afresh."""
        conv = await load(self.redis, key)
        department = draft.departments[0] if draft.departments else ""
        text = receipt(ticket_id, department, due)
        try:
            route = json.loads(conv.get("route") or "{}")
        except ValueError:
            route = {}
        out = OutboundMessage(id=f"filed:console:{key}:{request_id}", conversation_key=key, channel=conv["channel"],
                              kind="ticket_filed", text=text, ticket_id=ticket_id,
                              fields={**{k: str(v) for k, v in route.items()}, "status": status})
        await self.redis.hset(ck.authors(key), out.id, user)
        await self.streams.publish(out)
        state = _state_of(conv).after_filing(draft.location, datetime.now(UTC))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.conversation_tickets(key), ticket_id)
            pipe.hset(keys.conversation(key), "state", state.model_dump_json())
            pipe.delete(ck.draft(key))
            pipe.incr(ck.VERSION)
            await pipe.execute()


def attachments_of(conv: dict[str, str]) -> list[str]:
    """The photos (and other media) the citizen sent for the ticket being drafted, kept in the
    conversation's state by the bot: they go with the ticket an operator files."""
    state = _state_of(conv)
    return list(dict.fromkeys([*(state.draft.attachments if state.draft else []), *state.pending_attachments]))


def draft_of(form: TicketForm, key: str, channel: str, conv: dict[str, str] | None = None,
             parts: dict[str, str] | None = None) -> TicketDraft:
    """The ticket an operator files: the form, and the media the citizen sent for it. Its place is
    the bot's reading (parts, a shared map point) while the form keeps the bot's words for it,
    else the words with ``parts`` (read from them by the caller); a 属地 unit left in its
    departments becomes that place's office."""
    state = _state_of(conv or {})
    bot = state.draft
    if bot is not None and bot.location_text and bot.location_text == form.location_text:
        location = LocationInfo(text=bot.location_text, parts=bot.location_parts, lat=bot.lat, lng=bot.lng)
    else:
        location = LocationInfo(text=form.location_text, parts=parts or {})
    return TicketDraft(
        channel=channel, conversation_key=key, contact=form.contact, title=form.title or form.description[:20],
        description=form.description, category=form.category, request_type=form.request_type, urgent=form.urgent,
        location=location, departments=DepartmentMap.shipped().localize(form.departments, location.parts),
        attachments=attachments_of(conv or {}),
    )
