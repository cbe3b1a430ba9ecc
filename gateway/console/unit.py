"""承办单位工作台: a department's staff see the tickets that name their unit (主办 or 协办) and work
those it handles as 主办: 签收, 办理进展, 办结, 退回 and 延期申请, each heard by the citizen as from the
console (a 延期申请 only once the centre grants it); as 协办 they write 协办意见 for the 主办. Nothing
else of the console is theirs: no conversations, no citizen's sender id, no figures of other units
(``auth.current_user`` refuses their accounts everywhere else).

A ticket that does not name the unit is "not found", as one that does not exist.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from channels.base import WellFormedStr
from config.settings import Settings
from gateway.console import audit, export, merging
from gateway.console import conversations as convs
from gateway.console import keys as ck
from gateway.console.auth import DepartmentDep
from gateway.console.routes import (
    DEPARTMENT_DAYS,
    SEARCH_PAGE,
    NowDep,
    _console,
    department_tallies,
    tally_view,
    ticket_attachment,
)
from gateway.console.users import User
from gateway.errors import BadInput, Conflict, Forbidden, NotFound
from nlu.pii import find_pii, mask_pii
from ticket_client import deadlines
from ticket_client.base import MAX_NOTE, MAX_REASON, TO_ACCEPT, Ticket, TicketQuery

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/console/unit", tags=["console"])

# 工作台's lists, as TicketQuery narrows a unit's tickets (each matter once: a repeat merged into
# another is worked on its main)
VIEWS: dict[str, dict[str, Any]] = {
    "received": {"status": "to_accept"},  # 待签收: sent to the unit (or reopened for it), not taken on yet
    "open": {"status": "open"},  # 未办结
    "due_soon": {"due_soon": True},  # 即将超期
    "overdue": {"overdue": True},  # 超期未办结
    "urged": {"urged": True},  # 催办未办结: the citizen pressed for it (催办), still open
    "extension": {"extension_pending": True},  # 延期申请待审核
    "resolved": {"status": "resolved"},  # 已办结 (not yet archived)
    "all": {},
}
# the counts the page shows: each list but the done ones, and of 待签收 the urgent (the title and 提醒
# say 【紧急】: an urgent ticket is to be taken on within HOTLINE_RESPOND_URGENT_HOURS)
COUNTED = {**{name: narrowed for name, narrowed in VIEWS.items() if name not in ("resolved", "all")},
           "received_urgent": {"status": "to_accept", "urgent": True}}
# a unit's list counts are read at most this often per process, whoever of its staff asks (each page
# asks every 30 s; the seven counts of a busy unit take 0.2–0.4 s at a city's volume); its own actions
# count again at once
COUNTS_TTL_S = 15.0
EXPORT_DAYS = (7, 30, 90, 365)  # 导出's periods: a week's, a month's, a quarter's, a year's report
# what the unit may do as 主办, from which statuses (the workflow's TRANSITIONS allow more: the
# centre's 改派 of a returned ticket, its 归档, 重新办理)
ACCEPT_FROM = TO_ACCEPT
RESOLVE_FROM = ("accepted", "processing", "reopened")
RETURN_FROM = ("received", "accepted", "processing")


class NoteIn(BaseModel):
    note: WellFormedStr = Field(max_length=MAX_NOTE)  # the citizen hears it; empty: 400


class AssistIn(BaseModel):
    note: WellFormedStr = Field(max_length=MAX_NOTE)  # for the 主办 and the centre; empty: 400


class AcceptIn(BaseModel):
    note: WellFormedStr = Field(default="", max_length=MAX_REASON)  # optional word with the 签收


class ReturnIn(BaseModel):
    reason: WellFormedStr = Field(max_length=MAX_REASON)  # 退回理由 (非本单位职责 …); empty: 400


class AskIn(BaseModel):
    until: date  # 申请延至: the last day of the 办理时限 asked for (Beijing time)
    reason: WellFormedStr = Field(max_length=MAX_REASON)  # for the centre to decide on; empty: 400


def unit_query(settings: Settings, unit: str, now: datetime, **narrowed: Any) -> TicketQuery:
    """A unit's tickets as one of VIEWS (or COUNTED) narrows them at ``now`` (also the 待办提醒's)."""
    late = deadlines.late_filter(settings, now, overdue=bool(narrowed.pop("overdue", False)),
                                 due_soon=bool(narrowed.pop("due_soon", False)))
    return TicketQuery(department=unit, main_only=True, **narrowed, **late)


def _query(user: User, request: Request, now: datetime, **narrowed: Any) -> TicketQuery:
    return unit_query(_console(request).rt.settings, user.unit, now, **narrowed)


def _view(t: Ticket, user: User, request: Request, now: datetime) -> dict[str, Any]:
    """A ticket as the unit reads it: whether it is its 主办, and never the citizen's sender id."""
    shown = convs.ticket_view(t, _console(request).rt.settings, now)
    return {**shown, "primary": bool(t.departments) and t.departments[0] == user.unit, "departments": t.departments}


async def _mine(ticket_id: str, user: User, request: Request, *, primary: bool | None = True) -> Ticket:
    """The ticket if it names the unit (404 otherwise, as for none); with ``primary`` True the unit
    is its 主办, with False one of its 协办 (403 otherwise), and it is worked on, not merged (409)."""
    ticket = await _console(request).tickets.get(ticket_id)
    if user.unit not in ticket.departments:
        raise NotFound(f"工单不存在：{ticket_id}")
    if primary is None:
        return ticket
    if primary and ticket.departments[0] != user.unit:
        raise Forbidden(f"本单位是工单 {ticket_id} 的协办单位，由主办单位（{ticket.departments[0]}）办理")
    if not primary and ticket.departments[0] == user.unit:
        raise Forbidden(f"本单位是工单 {ticket_id} 的主办单位，请发送办理进展或办结")
    if ticket.merged_into:
        raise Conflict(f"工单 {ticket_id} 已并入工单 {ticket.merged_into}，请在主单上办理")
    return ticket


@router.get("/summary")
async def summary(user: DepartmentDep, request: Request, now: NowDep) -> dict[str, Any]:
    """How many of the unit's tickets each list holds (the tabs' counts; ``received_urgent``: the
    urgent ones among 待签收)."""
    console = _console(request)
    cached = console.unit_counts.get(user.unit)
    if cached is None or time.monotonic() - cached[0] > COUNTS_TTL_S:
        cached = (time.monotonic(), {name: await console.tickets.count(_query(user, request, now, **narrowed))
                                     for name, narrowed in COUNTED.items()})
        console.unit_counts[user.unit] = cached
    return {"unit": user.unit, "counts": cached[1],
            "due_soon_hours": _console(request).rt.settings.due_soon_hours}


@router.get("/stats")
async def stats(user: DepartmentDep, request: Request, now: NowDep, days: int = 30) -> dict[str, Any]:
    """本单位考核: the unit's own row of 承办单位考核 for the last ``days`` (7, 30 or 90), as the centre
    reads it (None: the period gave it nothing); 400 for another period."""
    found = await department_tallies(request, now, days, 1, department=user.unit)
    settings = _console(request).rt.settings
    return {"days": days, "periods": DEPARTMENT_DAYS, "weights": settings.score_weights,
            "score_min_tickets": settings.score_min_tickets,
            "unit": tally_view(found[0], settings) if found else None}


@router.get("/tickets")
async def tickets(
    user: DepartmentDep, request: Request, now: NowDep,
    view: Annotated[str, Query(max_length=20)] = "received",
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    """One list of the unit's tickets (``view``: one of VIEWS), newest first, optionally by words."""
    if view not in VIEWS:
        raise BadInput(f"未知的列表“{view}”（可选：{'、'.join(VIEWS)}）")
    query = _query(user, request, now, **VIEWS[view]).model_copy(
        update={"text": q, "limit": SEARCH_PAGE + 1, "offset": offset})
    found = await _console(request).tickets.search(query)
    return {"tickets": [_view(t, user, request, now) for t in found[:SEARCH_PAGE]], "more": len(found) > SEARCH_PAGE}


@router.get("/tickets.csv")
async def export_tickets(
    user: DepartmentDep, request: Request, now: NowDep,
    view: Annotated[str, Query(max_length=20)] = "all",
    q: Annotated[str, Query(max_length=200)] = "",
    days: Annotated[int, Query(description="filed in the last 7, 30, 90 or 365 days")] = 30,
) -> StreamingResponse:
    """导出: one of the unit's lists, filed in the last ``days``, as the centre's CSV file (no phone
    numbers, descriptions or senders; streamed, up to export.LIMIT rows) for the unit's own report.
    Audited when the file ends."""
    if view not in VIEWS:
        raise BadInput(f"未知的列表“{view}”（可选：{'、'.join(VIEWS)}）")
    if days not in EXPORT_DAYS:
        raise BadInput(f"导出时段应为近{'、'.join(map(str, EXPORT_DAYS))}天")
    console = _console(request)
    query = _query(user, request, now, **VIEWS[view]).model_copy(
        update={"text": q, "since": now - timedelta(days=days)})

    async def audited(tally: export.Tally) -> None:
        try:
            await audit.record(console.redis, user.name, "unit.export", "", unit=user.unit, view=view, days=days,
                               q=mask_pii(q.strip()), rows=tally.rows, cut=tally.cut, broken=tally.broken)
        except RedisError as err:
            log.error("export_unaudited", actor=user.name, rows=tally.rows, error=str(err))

    return await export.response(console.tickets, query, console.rt.settings, now, audited)


@router.get("/tickets/{ticket_id}")
async def ticket(ticket_id: str, user: DepartmentDep, request: Request, now: NowDep) -> dict[str, Any]:
    """One ticket in full as the unit needs it to handle it: what, where, the contact phone masked
    (138****5678, and so the numbers in the citizen's words: the whole ones are asked for, audited,
    with POST …/contact), every step, the 催办 and 补充 of its citizen and of the repeats merged into
    it (市民催办 counts them all) and the 协办意见; not the centre's 更正 notes."""
    t = await _mine(ticket_id, user, request, primary=None)
    detail = convs.ticket_detail(t, _console(request).rt.settings, now)
    for internal in ("conversation_key", "revisions"):
        detail.pop(internal)
    repeats = await merging.followers(_console(request).tickets, t)
    words = _citizens_words(t, repeats)
    theirs = [{**f, "note": masked_numbers(f["note"])} for f in words["followups"]]
    masked = {"contact": masked_contact(t.contact), "description": masked_numbers(t.description), "followups": theirs}
    others = [f for f in convs.followup_views(t) if f["kind"] not in CITIZENS]  # 协办意见, 延期申请审核
    return {**detail, **_view(t, user, request, now), **convs.urged([t, *repeats]), **masked,
            "followups": theirs + others, "contact_masked": masked != words}


@router.post("/tickets/{ticket_id}/contact")
async def contact(ticket_id: str, user: DepartmentDep, request: Request) -> dict[str, Any]:
    """查看联系电话: the citizen's whole number, and the words with the numbers in them (theirs and
    the repeats' citizens'), to call them about one of the unit's tickets; each look is audited
    (``unit.contact``, who and which ticket, not the number), so the centre can see who read whose
    phone."""
    t = await _mine(ticket_id, user, request, primary=None)
    await audit.record(_console(request).redis, user.name, "unit.contact", t.conversation_key,
                       ticket_id=t.ticket_id, unit=user.unit)
    return {"ticket_id": t.ticket_id, **_citizens_words(t, await merging.followers(_console(request).tickets, t))}


CITIZENS = ("urge", "info")  # the follow-ups in the citizen's words (催办, 补充), where a number may be


def _citizens_words(t: Ticket, repeats: list[Ticket]) -> dict[str, Any]:
    """Where the numbers of a ticket may be, whole: its contact, its description, and the 催办 and
    补充 of its citizen and of the citizens of its ``repeats`` (the main is where the matter is
    handled; each marked with its ticket)."""
    said = [f for x in (t, *repeats) for f in convs.followup_views(x) if f["kind"] in CITIZENS]
    return {"contact": t.contact, "description": t.description, "followups": sorted(said, key=lambda f: f["at"])}


def masked_numbers(text: str) -> str:
    """Phone numbers in the citizen's words masked as ``masked_contact``, ID numbers wholly."""
    out, pos = [], 0
    for m in find_pii(text):
        if m.kind in ("phone", "id_number"):
            out += [text[pos:m.start], masked_contact(m.value) if m.kind == "phone" else "[身份证号]"]
            pos = m.end
    return "".join(out) + text[pos:]


def masked_contact(contact: str) -> str:
    """A contact number with its middle digits hidden: the first three and last four of eight or
    more (13812345678 → 138****5678, 0531-88886666 → 053*-****6666); of fewer, all but the last two."""
    digits = [i for i, c in enumerate(contact) if c.isdigit()]
    keep = digits[:3] + digits[-4:] if len(digits) >= 8 else digits[-2:]
    hidden = set(digits) - set(keep)
    return "".join("*" if i in hidden else c for i, c in enumerate(contact))


@router.get("/tickets/{ticket_id}/attachments/{n}")
async def attachment(ticket_id: str, n: int, user: DepartmentDep, request: Request, thumb: bool = False) -> FileResponse:
    """The citizen's photos of one of the unit's tickets (404 as for none otherwise; ``thumb``: small)."""
    return await ticket_attachment(_console(request), await _mine(ticket_id, user, request, primary=None), n, thumb)


async def _moved(request: Request, user: User, ticket: Ticket, action: str, **detail: Any) -> dict[str, Any]:
    """After a change the citizen may hear: the poller looks now, the unit's counts and the centre's
    待改派 are read again, and then as ``_recorded``."""
    console = _console(request)
    console.unit_counts.pop(user.unit, None)  # its lists changed: counted again at the next ask
    console.rt.kick_status()
    console.recount_returned()
    return await _recorded(request, user, ticket, action, **detail)


async def _recorded(request: Request, user: User, ticket: Ticket, action: str, **detail: Any) -> dict[str, Any]:
    """After any step of the unit: the console's open pages refresh, and it is audited."""
    console = _console(request)
    await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, action, ticket.conversation_key, ticket_id=ticket.ticket_id,
                       unit=user.unit, **detail)
    return _view(ticket, user, request, console.clock())


async def _status(request: Request, user: User, ticket_id: str, status: str, allowed: tuple[str, ...], note: str,
                  refused: str, needed: str = "") -> Ticket:
    """Move the unit's ticket to ``status`` from one of ``allowed`` (409 ``refused`` otherwise), with
    ``note`` for the citizen (400 ``needed`` when it is required and empty)."""
    if needed and not note.strip():
        raise BadInput(needed)
    ticket = await _mine(ticket_id, user, request)
    if ticket.status not in allowed:
        raise Conflict(refused)
    return await _console(request).tickets.set_status(ticket_id, status, note)


@router.post("/tickets/{ticket_id}/accept")
async def accept(ticket_id: str, body: AcceptIn, user: DepartmentDep, request: Request) -> dict[str, Any]:
    """签收: the unit takes the ticket on (已接收); the citizen hears it, and 响应 is judged now."""
    ticket = await _status(request, user, ticket_id, "accepted", ACCEPT_FROM, body.note,
                           f"工单 {ticket_id} 不在待签收状态，无需签收")
    return await _moved(request, user, ticket, "unit.accept")


@router.post("/tickets/{ticket_id}/notes")
async def note(ticket_id: str, body: NoteIn, user: DepartmentDep, request: Request) -> dict[str, Any]:
    """办理进展: an interim answer the citizen hears; the status stays."""
    await _mine(ticket_id, user, request)
    ticket = await _console(request).tickets.add_note(ticket_id, body.note)
    return await _moved(request, user, ticket, "unit.note")


@router.post("/tickets/{ticket_id}/resolve")
async def resolve(ticket_id: str, body: NoteIn, user: DepartmentDep, request: Request) -> dict[str, Any]:
    """办结: the work is done, with the answer the citizen hears (办理结果, required); the 回访 follows."""
    ticket = await _status(request, user, ticket_id, "resolved", RESOLVE_FROM, body.note,
                           f"工单 {ticket_id} 须先签收才能办结（已办结的不能再次办结）", "请填写办理结果（市民可见）")
    return await _moved(request, user, ticket, "unit.resolve")


@router.post("/tickets/{ticket_id}/return")
async def send_back(ticket_id: str, body: ReturnIn, user: DepartmentDep, request: Request) -> dict[str, Any]:
    """退回: not the unit's to handle (非本单位职责, 属地有误 …); the centre sends it on again (改派)."""
    ticket = await _status(request, user, ticket_id, "returned", RETURN_FROM, body.reason,
                           f"工单 {ticket_id} 已办结、已退回或重新办理中，不能退回", "请填写退回理由")
    return await _moved(request, user, ticket, "unit.return", reason=mask_pii(body.reason))


@router.post("/tickets/{ticket_id}/extension-request")
async def ask_extension(ticket_id: str, body: AskIn, user: DepartmentDep, request: Request) -> dict[str, Any]:
    """延期申请 in the unit's name: the centre decides (nobody outside hears of it until granted)."""
    await _mine(ticket_id, user, request)
    ticket = await _console(request).tickets.ask_extension(ticket_id, deadlines.end_of(body.until), body.reason,
                                                           user.unit)
    return await _moved(request, user, ticket, "unit.extension_ask", until=body.until.isoformat(),
                        reason=mask_pii(body.reason))


@router.post("/tickets/{ticket_id}/assist")
async def assist(ticket_id: str, body: AssistIn, user: DepartmentDep, request: Request) -> dict[str, Any]:
    """协办意见 (as 协办 only): what the unit did or found, for the 主办's answer; the citizen does
    not hear it, and the 主办 reads it in 办理记录 (its list badges the ticket)."""
    await _mine(ticket_id, user, request, primary=False)
    ticket = await _console(request).tickets.assist(ticket_id, user.unit, body.note)
    return await _recorded(request, user, ticket, "unit.assist")  # no status, no list count moved
