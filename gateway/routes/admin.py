"""The token-protected admin API: the ledger's tickets (and their export), media, the conversations
seen, the dead letters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from channels.base import WellFormedStr
from channels.media import file_response, find, media_roots
from config.workdays import midnight
from gateway import filing, keys
from gateway.console import export, report
from gateway.console.merging import MergeIn
from gateway.console.routes import AskExtensionIn, ExtendIn, WithdrawIn
from gateway.console.routing import CorrectIn
from gateway.deps import AdminDep, RuntimeDep, TicketsDep
from gateway.errors import BadInput, NotFound
from ticket_client import deadlines
from ticket_client.base import MAX_NOTE, MAX_UNIT, STATUSES, TicketQuery

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/admin", tags=["admin"])


class StatusIn(BaseModel):
    status: str
    note: WellFormedStr = Field(default="", max_length=MAX_NOTE)


class NoteIn(BaseModel):
    note: WellFormedStr = Field(max_length=MAX_NOTE)  # empty or only spaces: 400 (InvalidNote)


@router.get("/tickets/{ticket_id}")
async def get_ticket(ticket_id: str, _: AdminDep, tickets: TicketsDep) -> dict[str, Any]:
    ticket = await tickets.get(ticket_id)
    return ticket.model_dump(mode="json")


@router.get("/tickets.csv")
async def export_tickets(
    _: AdminDep, tickets: TicketsDep, rt: RuntimeDep,
    since: Annotated[date | None, Query(description="first Beijing day filed (YYYY-MM-DD)")] = None,
    until: Annotated[date | None, Query(description="last Beijing day filed, included")] = None,
    status: str = "",
    channel: Annotated[str, Query(max_length=80)] = "",
    urgent: bool | None = None,
    department: Annotated[str, Query(max_length=40, description="one 承办部门, 主办 or 协办")] = "",
) -> StreamingResponse:
    """The console's 导出 for scripts (a daily report from cron): the tickets filed from ``since``
    to ``until`` (Beijing days, both included), newest first, as the same CSV, streamed; optionally
    one status, one channel (or a prefix ending in ":": every portal source), urgent or not, one
    承办部门 (a department's own report)."""
    if status and status not in STATUSES:
        raise BadInput(f"未知的工单状态“{status}”，可用状态：{'、'.join(STATUSES)}")
    if since and until and since > until:
        raise BadInput("导出时段有误：since 晚于 until")
    query = TicketQuery(status=status, channel=channel, urgent=urgent, department=department,
                        since=midnight(since) if since else None,
                        until=midnight(until + timedelta(days=1)) if until else None)

    async def logged(tally: export.Tally) -> None:
        log.info("admin_export", rows=tally.rows, cut=tally.cut, broken=tally.broken, since=str(since or ""),
                 until=str(until or ""), status=status, channel=channel, department=department)

    return await export.response(tickets, query, rt.settings, datetime.now(UTC), logged)


@router.get("/report")
async def period_report(
    _: AdminDep, tickets: TicketsDep, rt: RuntimeDep,
    days: Annotated[int | None, Query(description="the last 7 or 30 days (default 7)")] = None,
    week: Annotated[str, Query(max_length=10, description="a calendar week, Monday to Sunday: 2026-W47")] = "",
    month: Annotated[str, Query(max_length=10, description="a calendar month: 2026-11")] = "",
) -> HTMLResponse:
    """The console's 周报 / 月报 page for scripts (mailed to the centre's leadership from cron,
    e.g. each 1st for the month gone by): the same HTML; 400 for another period or one not begun."""
    page = await report.page(tickets, rt.settings, datetime.now(UTC), days, week, month)
    log.info("admin_report", days=days, week=week, month=month)
    return HTMLResponse(page)


@router.post("/tickets/{ticket_id}/status")
async def set_status(ticket_id: str, body: StatusIn, _: AdminDep, tickets: TicketsDep, rt: RuntimeDep) -> dict[str, Any]:
    """Move a ticket to a new status; the citizen hears of it on their channel."""
    if body.status not in STATUSES:
        raise BadInput(f"未知的工单状态“{body.status}”，可用状态：{'、'.join(STATUSES)}")
    ticket = await tickets.set_status(ticket_id, body.status, body.note)
    rt.kick_status()
    return ticket.model_dump(mode="json")


@router.post("/tickets/{ticket_id}/notes")
async def add_note(ticket_id: str, body: NoteIn, _: AdminDep, tickets: TicketsDep, rt: RuntimeDep) -> dict[str, Any]:
    """Record a progress note (办理进展) without moving the status; the citizen hears it on their
    channel, and no survey follows. 409 on a closed ticket, or where the platform owns the notes."""
    ticket = await tickets.add_note(ticket_id, body.note)
    rt.kick_status()
    return ticket.model_dump(mode="json")


class AssistIn(NoteIn):
    unit: WellFormedStr = Field(max_length=MAX_UNIT)  # the 协办 writing it; empty: 400 (InvalidNote)


@router.post("/tickets/{ticket_id}/assist")
async def assist(ticket_id: str, body: AssistIn, _: AdminDep, tickets: TicketsDep) -> dict[str, Any]:
    """协办意见 from a co-handling department's own system: ``unit`` (one of the ticket's 协办) tells
    the 主办 and the centre what it did or found; the citizen does not hear it. 409 when the unit
    is no 协办 of the ticket, or it is done or merged into another."""
    ticket = await tickets.assist(ticket_id, body.unit, body.note)
    log.info("ticket_assisted", ticket_id=ticket_id, unit=body.unit)
    return ticket.model_dump(mode="json")


class AdminCorrectIn(CorrectIn):
    by: WellFormedStr = Field(default="admin", min_length=1, max_length=64)  # who, as the calling system names them


@router.post("/tickets/{ticket_id}/correct")
async def correct(ticket_id: str, body: AdminCorrectIn, _: AdminDep, tickets: TicketsDep, rt: RuntimeDep) -> dict[str, Any]:
    """更正 / 改派 / 审核无误 from the centre's dispatch system, as the console's: a returned ticket
    given departments goes out again (the citizen hears 已派单); kept as a revision ``by`` whom the
    caller names. 409 for a 改派 of a done ticket, or where the platform routes (open311)."""
    ticket = await tickets.correct(ticket_id, await body.correction(body.by))
    if ticket.revisions and ticket.revisions[-1].dispatched:
        rt.kick_status()
    return ticket.model_dump(mode="json")


class AdminMergeIn(MergeIn):
    by: WellFormedStr = Field(default="admin", min_length=1, max_length=64)


class AdminUnmergeIn(BaseModel):
    by: WellFormedStr = Field(default="admin", min_length=1, max_length=64)


@router.post("/tickets/{ticket_id}/merge")
async def merge(ticket_id: str, body: AdminMergeIn, _: AdminDep, tickets: TicketsDep, rt: RuntimeDep) -> dict[str, Any]:
    """并单 from the centre's dispatch system, as the console's: the ticket follows the main ticket
    ``into`` from now on (its citizen hears it, then each of the main's steps). Logged with ``by``;
    409 where it would not hold, or where the platform owns the workflow (open311)."""
    ticket = await tickets.merge(ticket_id, body.into.strip())
    rt.kick_status()
    log.info("ticket_merged", ticket_id=ticket_id, into=ticket.merged_into, by=body.by)
    return ticket.model_dump(mode="json")


@router.post("/tickets/{ticket_id}/unmerge")
async def unmerge(ticket_id: str, body: AdminUnmergeIn, _: AdminDep, tickets: TicketsDep, rt: RuntimeDep) -> dict[str, Any]:
    """取消并单: the ticket is handled on its own again (its citizen hears it). 409 when it follows none."""
    ticket = await tickets.unmerge(ticket_id)
    rt.kick_status()
    log.info("ticket_unmerged", ticket_id=ticket_id, by=body.by)
    return ticket.model_dump(mode="json")


class AdminWithdrawIn(WithdrawIn):
    by: WellFormedStr = Field(default="admin", min_length=1, max_length=64)


@router.post("/tickets/{ticket_id}/withdraw")
async def withdraw(ticket_id: str, body: AdminWithdrawIn, _: AdminDep, tickets: TicketsDep, rt: RuntimeDep) -> dict[str, Any]:
    """撤单 from the centre's own systems (a caller withdrew by phone), as the console's: closed with
    ``reason``, which the citizen hears; no 回访. Logged with ``by``; 409 when done already, when
    other tickets are merged into it, or where the platform owns the workflow (open311)."""
    ticket = await tickets.withdraw(ticket_id, body.reason)
    rt.kick_status()
    log.info("ticket_withdrawn", ticket_id=ticket_id, by=body.by)
    return ticket.model_dump(mode="json")


class AdminExtendIn(ExtendIn):
    by: WellFormedStr = Field(default="admin", min_length=1, max_length=64)


@router.post("/tickets/{ticket_id}/extend")
async def extend(ticket_id: str, body: AdminExtendIn, _: AdminDep, tickets: TicketsDep, rt: RuntimeDep) -> dict[str, Any]:
    """延期 from the centre's own systems (where departments apply for more time), as the console's:
    the 办理时限 ends with ``until`` (Beijing time), and the citizen hears it with ``reason``.
    Logged with ``by``; 409 as the console's."""
    ticket = await tickets.extend(ticket_id, deadlines.end_of(body.until), body.reason)
    rt.kick_status()
    log.info("ticket_extended", ticket_id=ticket_id, until=body.until.isoformat(), by=body.by)
    return ticket.model_dump(mode="json")


class AdminAskExtensionIn(AskExtensionIn):
    by: WellFormedStr = Field(default="admin", min_length=1, max_length=64)


@router.post("/tickets/{ticket_id}/extension-request")
async def ask_extension(ticket_id: str, body: AdminAskExtensionIn, _: AdminDep, tickets: TicketsDep) -> dict[str, Any]:
    """延期申请 from a department's own system: ``unit`` asks for a 办理时限 ending ``until`` (Beijing
    time), for ``reason``; a supervisor decides in the console, and the ticket's
    ``extension_requests`` (``GET /api/admin/tickets/{id}``) say what became of it. Logged with
    ``by``; 409 when one waits already, or a 延期 to that day would be refused."""
    ticket = await tickets.ask_extension(ticket_id, deadlines.end_of(body.until), body.reason, body.unit)
    log.info("ticket_extension_asked", ticket_id=ticket_id, until=body.until.isoformat(), by=body.by)
    return ticket.model_dump(mode="json")


@router.get("/media")
async def media(ref: Annotated[str, Query(max_length=300)], _: AdminDep, rt: RuntimeDep) -> FileResponse:
    """A ticket's attachment by its reference, for the ticket platform to copy (kept
    ``HOTLINE_MEDIA_KEEP_DAYS``)."""
    found = await find(rt.redis, ref, media_roots(rt.settings))
    if found is None:
        raise NotFound("附件尚未取到或已过期")
    return file_response(*found)


@router.get("/conversations")
async def conversations(_: AdminDep, rt: RuntimeDep, channel: str | None = None, limit: int = 200) -> dict[str, Any]:
    """Conversations by last activity, with the number of inbound citizen messages."""
    found = []
    for key in await rt.redis.zrevrange(keys.CONVERSATIONS, 0, max(limit, 1) * 5):
        conv = await rt.redis.hgetall(keys.conversation(key))
        if channel and conv.get("channel") != channel:
            continue
        found.append(
            {
                "conversation_key": key,
                "channel": conv.get("channel", ""),
                "message_count": int(conv.get("message_count", 0)),
                "mode": conv.get("mode", "bot"),
                "last_in_at": float(conv.get("last_in_at", 0)),
            }
        )
        if len(found) >= limit:
            break
    return {"conversations": found}


@router.get("/dead-letters")
async def dead_letters(_: AdminDep, rt: RuntimeDep) -> dict[str, Any]:
    """Entries that kept failing (filing or delivery), for an operator to look at; each ``ref``
    settles it (``POST /api/admin/dead-letters/settle``)."""
    assert rt.streams is not None
    return {"dead_letters": await rt.streams.dead_letters(200)}


class SettleIn(BaseModel):
    ref: str = Field(min_length=1, max_length=200)
    retry: bool  # true: back on its stream; false: discard


@router.post("/dead-letters/settle")
async def settle_dead_letter(body: SettleIn, _: AdminDep, rt: RuntimeDep) -> dict[str, Any]:
    """Retry (a filing starts its attempts again) or discard one dead letter."""
    assert rt.streams is not None
    if await filing.settle(rt.streams, rt.tickets, body.ref, body.retry) is None:
        raise NotFound("该记录已被处理或不存在")
    return {"ok": True}
