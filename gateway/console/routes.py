"""The console's JSON API (``/api/console/…``), its WebSocket and its pages (``/console/``).

Every route but login answers 401 without a session; state-changing ones also need the CSRF
header (403); supervisor-only ones answer 403 to operators. Every action lands in the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from bot.texts import period_words, texts
from channels.base import WellFormedStr
from channels.media import file_response, find, media_roots, thumbnail
from config.settings import Settings
from gateway import filing, keys, metrics
from gateway.console import audit, dead_letters, export, merging, report
from gateway.console import conversations as convs
from gateway.console import keys as ck
from gateway.console.auth import (
    COOKIE,
    LoginThrottle,
    Session,
    SessionDep,
    Sessions,
    SupervisorDep,
    UserDep,
    same_origin,
)
from gateway.console.routing import CorrectIn, Routing, place_parts
from gateway.console.users import User, UserError, UserStore, generate_password
from gateway.errors import (
    AuthError,
    BadInput,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    StartupError,
)
from gateway.knowledge import USAGE_DAYS, usage
from gateway.runtime import Runtime
from nlu.pii import mask_pii
from ticket_client import deadlines
from ticket_client.base import (
    MAX_NOTE,
    MAX_REASON,
    MAX_UNIT,
    MAX_URGE_NOTE,
    RATINGS,
    SOLVED_ANSWERS,
    STATUSES,
    DepartmentTally,
    MergeRefused,
    NoteRefused,
    Ticket,
    TicketClient,
    TicketError,
    TicketNotFound,
    TicketQuery,
)

log = structlog.get_logger(__name__)

OPERATOR_URGE = "（坐席登记）"  # a 催办 an operator records for a caller, told apart from the bot's

PAGES = Path(__file__).resolve().parent.parent / "static" / "console"
WS_TICK_S = 0.5
SEARCH_PAGE = 50  # tickets per page of 工单查询
WS_REFRESH_S = 5.0
RETURNED_TTL_S = 15.0  # 待改派 on the live queue: counted at most this often per process
BEIJING = timezone(timedelta(hours=8))  # "today" is the centre's day
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class ConsoleState:
    """The console's parts, built on first use (Redis exists only once the runtime has started)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._parts: dict[str, Any] = {}
        self._snapshot: tuple[str, float, dict[str, Any]] | None = None
        self._snapshot_lock = asyncio.Lock()
        self._returned: tuple[float, int | None] | None = None  # (counted at, 待改派)
        self._returned_lock = asyncio.Lock()
        # 承办单位工作台's list counts per unit, (counted at, counts): shared by the unit's staff (unit.py)
        self.unit_counts: dict[str, tuple[float, dict[str, int]]] = {}
        # the moment 办理时限 is judged at (超期, 即将超期; 工单查询's 受理 period); tests pin it
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def live_queue(self, version: str, user: str) -> dict[str, Any]:
        """The queue as one WebSocket shows it; built once per change per process, shared by all."""
        async with self._snapshot_lock:
            cached = self._snapshot
            if cached is None or cached[0] != version or time.monotonic() - cached[1] > WS_REFRESH_S / 2:
                cached = (version, time.monotonic(), await convs.queue(self.redis, ""))
                self._snapshot = cached
        data = cached[2]
        counts = dict(data["counts"], mine=sum(r["assignee"] == user for r in data["conversations"]))
        return {**data, "counts": counts, "channel_names": self.channel_names(), "returned": await self.returned()}

    @property
    def tickets(self) -> TicketClient:
        """The ticket client; 404 工单系统未就绪 while the runtime has none."""
        if self.rt.tickets is None:
            raise NotFound("工单系统未就绪")
        return self.rt.tickets

    def recount_returned(self) -> None:
        """A ticket moved here: the next queue counts 待改派 again rather than wait out the TTL."""
        if self._returned is not None:
            self._returned = (float("-inf"), self._returned[1])

    async def returned(self) -> int | None:
        """待改派: how many tickets their department returned wait to be sent out again, for every
        console's 工单查询 tab and its 提醒; counted at most every RETURNED_TTL_S per process. None
        where the platform routes (open311: no 改派 here); the last count while the ledger cannot
        be asked (the queue goes on without it)."""
        if self.rt.tickets is None or self.rt.settings.ticket_backend != "local":
            return None
        async with self._returned_lock:  # one count for every WebSocket of the process
            cached = self._returned
            if cached is None or time.monotonic() - cached[0] > RETURNED_TTL_S:
                try:
                    found: int | None = await self.rt.tickets.count(TicketQuery(status="returned", main_only=True))
                except TicketError:
                    found = cached[1] if cached else None
                self._returned = cached = (time.monotonic(), found)
            return cached[1]

    def channel_names(self) -> dict[str, str]:
        """What operators call each portal source (市政府网站留言板, 市长信箱), not "portal:liuyanban"."""
        return export.channel_names(self.rt.settings)

    def _part(self, name: str, build: Any) -> Any:
        if name not in self._parts:
            self._parts[name] = build()
        return self._parts[name]

    @property
    def redis(self) -> Any:
        return self.rt.redis

    @property
    def users(self) -> UserStore:
        return self._part("users", lambda: UserStore(self.redis))  # type: ignore[no-any-return]

    @property
    def sessions(self) -> Sessions:
        return self._part("sessions", lambda: Sessions(self.redis, self.rt.settings))  # type: ignore[no-any-return]

    @property
    def throttle(self) -> LoginThrottle:
        return self._part("throttle", lambda: LoginThrottle(self.redis, self.rt.settings))  # type: ignore[no-any-return]

    @property
    def routing(self) -> Routing:
        return self._part("routing", lambda: Routing.load(self.rt.settings))  # type: ignore[no-any-return]

    @property
    def handover(self) -> convs.Handover:
        return self._part("handover", lambda: convs.Handover(self.redis, self.rt.streams))  # type: ignore[no-any-return]

    async def on_start(self) -> None:
        """Create the first supervisor if there is no account yet, and print its password once; a
        weak HOTLINE_CONSOLE_ADMIN_PASSWORD stops the start (StartupError) rather than leave no account."""
        settings = self.rt.settings
        try:
            password = await self.users.ensure_first_admin(settings.console_admin_password)
        except UserError as exc:
            raise StartupError(f"HOTLINE_CONSOLE_ADMIN_PASSWORD is refused: {exc}") from exc
        if password is not None:
            await audit.record(self.redis, "system", "user.create", "admin", role="supervisor")
            if not settings.console_admin_password:
                print(
                    "\n  operator console: first supervisor created\n"
                    f"    user: admin   password: {password}\n"
                    "    (shown once; log in at /console/ and create accounts with `hotline admin create-user`)\n",
                    file=sys.stderr,
                    flush=True,
                )


def install(app: FastAPI) -> ConsoleState:
    """Mount the console on an app built by ``gateway.app.create_app``."""
    state = ConsoleState(app.state.runtime)
    app.state.console = state
    from gateway.console import unit  # its routes use this module's helpers

    app.include_router(api)
    app.include_router(unit.router)
    app.include_router(pages)
    return state


def _console(request: Request) -> ConsoleState:
    console: ConsoleState = request.app.state.console
    return console


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --- pages -------------------------------------------------------------------------------------
pages = APIRouter(include_in_schema=False)


@pages.get("/console")
@pages.get("/console/")
async def console_page(request: Request) -> FileResponse:
    """The workbench with a live session, else the login page (both are static files)."""
    console = _console(request)
    session = await console.sessions.load(request.cookies.get(COOKIE), console.users, touch=False)
    page = "login.html" if session is None else "unit.html" if session.user.is_department else "index.html"
    return FileResponse(PAGES / page, headers=PAGE_HEADERS, media_type="text/html; charset=utf-8")


@pages.get("/console/login")
async def login_page() -> FileResponse:
    return FileResponse(PAGES / "login.html", headers=PAGE_HEADERS, media_type="text/html; charset=utf-8")


# --- API ---------------------------------------------------------------------------------------
api = APIRouter(prefix="/api/console", tags=["console"])

Text = Annotated[WellFormedStr, Field(min_length=1, max_length=2000)]


class LoginIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class KeyIn(BaseModel):
    key: str = Field(min_length=1, max_length=300)


class ReplyIn(KeyIn):
    text: Text
    client_message_id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")


class NoteIn(KeyIn):
    text: Text


class TransferIn(KeyIn):
    to: str = Field(min_length=1, max_length=64)


class FormIn(KeyIn):
    form: convs.TicketForm


class FileIn(FormIn):
    request_id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")


class StatusIn(BaseModel):
    status: str
    note: WellFormedStr = Field(default="", max_length=MAX_NOTE)


class ProgressIn(BaseModel):
    note: WellFormedStr = Field(max_length=MAX_NOTE)  # empty or only spaces: 400 (InvalidNote)


class WithdrawIn(BaseModel):
    reason: WellFormedStr = Field(max_length=MAX_REASON)  # the citizen hears it; empty: 400 (InvalidNote)


class ExtendIn(BaseModel):
    until: date  # 延期至: the last day of the new 办理时限 (Beijing time)
    reason: WellFormedStr = Field(max_length=MAX_REASON)  # the citizen hears it; empty: 400 (InvalidNote)


class AskExtensionIn(ExtendIn):
    # 延期申请: the unit asking (a department handling it) and why; the centre reads the reason, the
    # citizen only the one a grant is given with
    unit: WellFormedStr = Field(max_length=MAX_UNIT)  # empty: 400 (InvalidNote)


class DecideExtensionIn(BaseModel):
    approve: bool
    until: date | None = None  # granted: the last day of the new 办理时限 (None: the day asked for)
    # granted: what the citizen hears (empty: the unit's reason); refused: the 驳回理由 (required)
    reason: WellFormedStr = Field(default="", max_length=MAX_REASON)


class UrgeIn(BaseModel):
    note: WellFormedStr = Field(default="", max_length=MAX_URGE_NOTE - len(OPERATOR_URGE))  # what the caller said


class CannedIn(BaseModel):
    items: list[Annotated[WellFormedStr, Field(min_length=1, max_length=500)]] = Field(max_length=100)


class DeadLetterIn(BaseModel):
    ref: str = Field(min_length=1, max_length=200)
    retry: bool  # true: put it back on its stream; false: discard it


class UserIn(BaseModel):
    name: str = Field(max_length=32)
    role: str = "operator"
    display_name: WellFormedStr = Field(default="", max_length=32)
    unit: WellFormedStr = Field(default="", max_length=MAX_UNIT)  # a department account's unit (承办部门)
    password: str = Field(default="", max_length=256)


def _me(user: User, csrf: str) -> dict[str, Any]:
    return {"user": user.public(), "csrf": csrf}


@api.post("/login")
async def login(body: LoginIn, request: Request, response: Response) -> dict[str, Any]:
    """Log in; sets the session cookie and returns the CSRF token for later requests."""
    console = _console(request)
    if not same_origin(request):
        raise Forbidden("请求来源不正确")
    address = _address(request)
    try:
        await console.throttle.check(body.username, address)
    except RateLimited:
        await audit.record(console.redis, body.username[:64], "login.throttled", address=address)
        raise
    user = await console.users.verify(body.username, body.password)
    if user is None:
        await console.throttle.failed(body.username, address)
        await audit.record(console.redis, body.username[:64], "login.failed", address=address)
        raise AuthError("用户名或密码不正确")
    await console.throttle.succeeded(body.username)
    session = await _sign_in(console, user, response)
    await audit.record(console.redis, user.name, "login", address=address)
    return _me(user, session.csrf)


async def _sign_in(console: ConsoleState, user: User, response: Response) -> Session:
    """A new session for ``user``, its token in the cookie (only its SHA-256 is kept)."""
    token, session = await console.sessions.create(user)
    settings = console.rt.settings
    secure = settings.console_secure_cookies or settings.public_url.startswith("https://")
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/",
                        max_age=int(settings.console_session_max_hours) * 3600)
    return session


class PasswordIn(BaseModel):
    current: str = Field(max_length=256)
    new: str = Field(max_length=256)


@api.post("/password")
async def change_password(body: PasswordIn, session: SessionDep, request: Request, response: Response) -> dict[str, Any]:
    """修改密码 (every account, a department's too): the current one first (wrong: 400, counted as a
    failed login), then the new one (strong enough: ``gateway.console.passwords``; not the same). The account's
    other browsers are signed out; this one goes on with a new session (and CSRF token)."""
    console = _console(request)
    name, address = session.user.name, _address(request)
    await console.throttle.check(name, address)
    if await console.users.verify(name, body.current) is None:
        await console.throttle.failed(name, address)
        await audit.record(console.redis, name, "password.failed", address=address)
        raise BadInput("当前密码不正确")
    await console.throttle.succeeded(name)
    if body.new == body.current:
        raise BadInput("新密码不能与当前密码相同")
    try:
        await console.users.set_password(name, body.new)
    except UserError as exc:
        raise BadInput(str(exc)) from exc
    await console.sessions.drop(session.token_hash)
    fresh = await _sign_in(console, session.user, response)
    await audit.record(console.redis, name, "password.change", address=address)
    return _me(session.user, fresh.csrf)


@api.post("/logout")
async def logout(session: SessionDep, request: Request, response: Response) -> dict[str, bool]:
    console = _console(request)
    await console.sessions.drop(session.token_hash)
    response.delete_cookie(COOKIE, path="/")
    await audit.record(console.redis, session.user.name, "logout")
    return {"ok": True}


@api.get("/me")
async def me(session: SessionDep, request: Request) -> dict[str, Any]:
    # 即将超期 (its filter, its card) is offered only when HOTLINE_DUE_SOON_HOURS is on
    return {**_me(session.user, session.csrf), "due_soon_hours": _console(request).rt.settings.due_soon_hours}


@api.get("/queue")
async def queue(
    user: UserDep, request: Request, status: str = "", channel: str = "", assignee: str = ""
) -> dict[str, Any]:
    """Conversations, waiting-for-a-person first; ``status`` waiting|operator|bot|closed|mine."""
    console = _console(request)
    found = await convs.queue(console.redis, user.name, status=status, channel=channel, assignee=assignee)
    return {**found, "channel_names": console.channel_names(), "returned": await console.returned()}


@api.get("/conversation")
async def conversation(user: UserDep, request: Request, key: Annotated[str, Query(max_length=300)]) -> dict[str, Any]:
    """One conversation: its history, what the NLU found, the ticket form and the citizen's tickets."""
    console = _console(request)
    redis = console.redis
    conv = await convs.load(redis, key)
    form = await convs.ticket_form(redis, key, conv)
    tickets = await console.rt.tickets.list_for(key, limit=20) if console.rt.tickets else []
    return {
        "summary": convs.summary(key, conv, time.time()),
        "history": await convs.history(redis, key),
        "nlu": convs.nlu_panel(conv),
        "form": form.model_dump(),
        "attachments": len(convs.attachments_of(conv)),  # filed with the ticket
        "tickets": [convs.ticket_view(t, console.rt.settings) for t in tickets],
        "can_reply": conv.get("mode") == "operator" and conv.get("assignee") == user.name,
        "map_url": console.rt.settings.map_url_template,  # {lat} and {lng} of a history item's geo
        "status_by_platform": console.rt.settings.ticket_backend != "local",  # open311 moves tickets
    }


RELATED_DAYS = 30  # 同一地点近期工单: how far back the console looks


@api.get("/related")
async def related(user: UserDep, request: Request, key: Annotated[str, Query(max_length=300)]) -> dict[str, Any]:
    """同一地点近期工单: tickets of the last 30 days that name the place of this conversation's matter,
    so an operator sees that neighbours reported it already (a repeat, one to link, a pattern)
    before filing. Its own kind of request (same first-level category) first, open ones before done.
    A separate call from ``/conversation``: it reads a month of tickets, once per conversation opened."""
    console = _console(request)
    conv = await convs.load(console.redis, key)
    word = convs.place_word(conv)
    if not word or console.rt.tickets is None:
        return {"place": word, "days": RELATED_DAYS, "tickets": [], "more": False}
    since = datetime.now(UTC) - timedelta(days=RELATED_DAYS)
    found = await console.rt.tickets.search(TicketQuery(text=word, since=since, limit=51))
    form = await convs.ticket_form(console.redis, key, conv)
    kind = (form.category or convs.nlu_panel(conv)["category"])[:1]
    found.sort(key=lambda t: (t.category[:1] != kind, t.status in deadlines.DONE))  # stable: newest first within
    return {
        "place": word, "days": RELATED_DAYS, "more": len(found) > 50,
        "tickets": [{**convs.ticket_view(t, console.rt.settings), "own": t.conversation_key == key} for t in found[:8]],
        "count": min(len(found), 50),
    }


@api.post("/takeover")
async def takeover(body: KeyIn, user: UserDep, request: Request) -> dict[str, Any]:
    """接管: exactly one operator wins; the others get 409 naming the winner."""
    console = _console(request)
    try:
        taken = await console.handover.take(body.key, user.name)
    except Conflict as exc:
        await audit.record(console.redis, user.name, "takeover.refused", body.key, reason=exc.detail)
        raise
    await audit.record(console.redis, user.name, "takeover", body.key, already_owned=not taken)
    return {"ok": True, "assignee": user.name}


@api.post("/handback")
async def handback(body: KeyIn, user: UserDep, request: Request) -> dict[str, Any]:
    """交还机器人: the bot answers the citizen's next message again."""
    console = _console(request)
    previous = await console.handover.release(body.key, user.name, user.is_supervisor, "bot")
    await audit.record(console.redis, user.name, "handback", body.key, previous_owner=previous)
    return {"ok": True}


@api.post("/close")
async def close(body: KeyIn, user: UserDep, request: Request) -> dict[str, Any]:
    """结束: the conversation is closed; the citizen is thanked."""
    console = _console(request)
    previous = await console.handover.release(body.key, user.name, user.is_supervisor, "closed")
    await audit.record(console.redis, user.name, "close", body.key, previous_owner=previous)
    return {"ok": True}


@api.post("/transfer")
async def transfer(body: TransferIn, user: UserDep, request: Request) -> dict[str, Any]:
    console = _console(request)
    target = await console.users.get(body.to)
    if target is None or target.disabled or target.is_department:  # a unit's staff see no conversation
        raise BadInput(f"没有可用的坐席账号 {body.to}")
    previous = await console.handover.transfer(body.key, user.name, user.is_supervisor, target.name)
    await audit.record(console.redis, user.name, "transfer", body.key, to=target.name, previous_owner=previous)
    return {"ok": True, "assignee": target.name}


@api.post("/reply")
async def reply(body: ReplyIn, user: UserDep, request: Request) -> dict[str, Any]:
    """Send the citizen a message on their channel (only the owner of the conversation)."""
    console = _console(request)
    text = body.text.strip()
    if not text:
        raise BadInput("回复内容不能为空")
    try:
        out = await console.handover.reply(body.key, user.name, text, body.client_message_id)
    except Forbidden as exc:
        await audit.record(console.redis, user.name, "reply.refused", body.key, reason=exc.detail)
        raise
    await audit.record(console.redis, user.name, "reply", body.key, message_id=out.id, chars=len(text))
    return {"ok": True, "id": out.id}


@api.post("/note")
async def note(body: NoteIn, user: UserDep, request: Request) -> dict[str, Any]:
    """An internal note: shown to operators, never sent to the citizen."""
    console = _console(request)
    await console.handover.note(body.key, user.name, body.text.strip())
    await audit.record(console.redis, user.name, "note", body.key, chars=len(body.text))
    return {"ok": True}


@api.put("/form")
async def save_form(body: FormIn, user: UserDep, request: Request) -> dict[str, Any]:
    """Keep the operator's corrections of the ticket fields until the ticket is filed."""
    console = _console(request)
    await convs.load(console.redis, body.key)
    await console.redis.set(ck.draft(body.key), body.form.model_dump_json(), ex=7 * 24 * 3600)
    await audit.record(console.redis, user.name, "form.save", body.key)
    return {"ok": True}


@api.post("/ticket")
async def file_ticket(body: FileIn, user: UserDep, request: Request) -> dict[str, Any]:
    """File a ticket from the side panel (idempotent by ``request_id``); the citizen gets its number."""
    console = _console(request)
    conv = await convs.load(console.redis, body.key)
    if len(body.form.description.strip()) < 2:
        raise BadInput("请填写问题描述")
    if (age := filing.retrying(conv)) is not None:
        raise Conflict(f"班长{age:.0f}秒前重试了这条诉求的自动登记，请稍候片刻查看结果，以免重复登记")
    written = body.form.location_text.strip()
    draft = convs.draft_of(body.form, body.key, conv["channel"], conv, await place_parts(written) if written else {})
    request_id = body.request_id or uuid.uuid4().hex
    ref = await console.tickets.file(draft, f"console:{body.key}:{request_id}")
    await console.handover.filed(body.key, draft, ref.ticket_id, ref.status, user.name, request_id,
                                 deadlines.promised(draft, console.rt.settings, datetime.now(UTC)))
    await audit.record(console.redis, user.name, "ticket.file", body.key, ticket_id=ref.ticket_id)
    assert console.rt.streams is not None
    for gone in await filing.superseded(console.rt.streams, console.tickets, body.key):
        # the bot's filing that kept failing: this ticket is its answer, and a retry must not file it again
        shown = dead_letters.view(gone)
        await audit.record(console.redis, user.name, "dead.discard", body.key, kind=shown["kind"],
                           ticket_id=shown["ticket_id"], replaced_by=ref.ticket_id)
    # a retry still under way (retried longer ago than the console waits): it must not file as well
    await filing.replaced(console.redis, body.key, await convs.load(console.redis, body.key), ref.ticket_id)
    # 疑似重复: the operator hears at once that the same matter waits at that spot (to merge it)
    repeats = await merging.repeats(console.tickets, [await console.tickets.get(ref.ticket_id)], datetime.now(UTC))
    return {"ok": True, "ticket_id": ref.ticket_id, "status": ref.status, "repeats": repeats.get(ref.ticket_id, 0)}


@api.post("/tickets/{ticket_id}/status")
async def ticket_status(ticket_id: str, body: StatusIn, user: UserDep, request: Request) -> dict[str, Any]:
    """Move a ticket on (the citizen hears of it on their channel)."""
    console = _console(request)
    if body.status not in STATUSES or console.rt.tickets is None:
        raise BadInput(f"未知的工单状态“{body.status}”")
    ticket = await console.rt.tickets.set_status(ticket_id, body.status, body.note)
    console.rt.kick_status()
    console.recount_returned()
    await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, "ticket.status", ticket.conversation_key, ticket_id=ticket_id,
                       status=body.status)
    return convs.ticket_view(ticket, console.rt.settings)


@api.post("/tickets/{ticket_id}/withdraw")
async def ticket_withdraw(ticket_id: str, body: WithdrawIn, user: UserDep, request: Request) -> dict[str, Any]:
    """撤单: the citizen asked for the ticket to be withdrawn (the problem went away, it was filed
    twice) and the operator checked it with them: closed with the reason, which the citizen hears
    on their channel; no 回访. 409 when done already, when other tickets are merged into it, or
    where the platform owns the workflow."""
    console = _console(request)
    ticket = await console.tickets.withdraw(ticket_id, body.reason)
    console.rt.kick_status()
    console.recount_returned()
    await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, "ticket.withdraw", ticket.conversation_key, ticket_id=ticket_id,
                       reason=mask_pii(body.reason))
    return convs.ticket_view(ticket, console.rt.settings)


@api.post("/tickets/{ticket_id}/extend")
async def ticket_extend(ticket_id: str, body: ExtendIn, user: SupervisorDep, request: Request) -> dict[str, Any]:
    """延期 (supervisors): the department asked for more time and the centre granted it: the 办理时限
    ends with ``until`` instead, and the citizen hears it with the reason on their channel (those
    of the tickets merged into it too). 409 when done, merged, without a 办理时限, not later than
    the one it has, or where the platform owns the workflow."""
    console = _console(request)
    ticket = await console.tickets.extend(ticket_id, deadlines.end_of(body.until), body.reason)
    console.rt.kick_status()
    await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, "ticket.extend", ticket.conversation_key, ticket_id=ticket_id,
                       until=body.until.isoformat(), reason=mask_pii(body.reason))
    return convs.ticket_view(ticket, console.rt.settings)


@api.post("/tickets/{ticket_id}/extension-request")
async def ticket_ask_extension(ticket_id: str, body: AskExtensionIn, user: UserDep, request: Request) -> dict[str, Any]:
    """延期申请: a department asked (by phone, by letter) for more time, and the operator records it
    for a supervisor to decide; nobody outside the centre hears of it yet. 409 when one waits
    already, or a 延期 to that day would be refused."""
    console = _console(request)
    ticket = await console.tickets.ask_extension(ticket_id, deadlines.end_of(body.until), body.reason, body.unit)
    await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, "ticket.extension_ask", ticket.conversation_key, ticket_id=ticket_id,
                       unit=body.unit, until=body.until.isoformat(), reason=mask_pii(body.reason))
    return convs.ticket_view(ticket, console.rt.settings)


@api.post("/tickets/{ticket_id}/extension-request/decision")
async def ticket_decide_extension(ticket_id: str, body: DecideExtensionIn, user: SupervisorDep,
                                  request: Request) -> dict[str, Any]:
    """审核延期申请 (supervisors): grant it (a 延期 its citizen hears, to the day asked or another,
    with the unit's reason or the supervisor's words) or refuse it with a reason. 409 when none
    waits, or the 延期 would be refused; 400 for a refusal without a reason."""
    console = _console(request)
    until = deadlines.end_of(body.until) if body.until else None
    ticket = await console.tickets.decide_extension(ticket_id, approve=body.approve, by=user.name,
                                                    reason=body.reason, until=until)
    if body.approve:
        console.rt.kick_status()
    await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, "ticket.extension_decide", ticket.conversation_key,
                       ticket_id=ticket_id, approve=body.approve, until=body.until.isoformat() if body.until else "",
                       reason=mask_pii(body.reason))
    return convs.ticket_view(ticket, console.rt.settings)


@api.post("/tickets/{ticket_id}/notes")
async def ticket_note(ticket_id: str, body: ProgressIn, user: UserDep, request: Request) -> dict[str, Any]:
    """办理进展: a department's interim answer, told to the citizen on their channel; the status
    stays (409 on a closed ticket, or where the platform owns the notes)."""
    console = _console(request)
    ticket = await console.tickets.add_note(ticket_id, body.note)
    console.rt.kick_status()
    await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, "ticket.note", ticket.conversation_key, ticket_id=ticket_id,
                       chars=len(body.note.strip()))
    return convs.ticket_view(ticket, console.rt.settings)


@api.post("/tickets/{ticket_id}/urge")
async def ticket_urge(ticket_id: str, body: UrgeIn, user: UserDep, request: Request) -> dict[str, Any]:
    """来电催办: a citizen presses for a ticket by phone; the operator records it as the bot records
    one said in a chat (one a day, HOTLINE_URGE_QUIET_HOURS: a second within it is told when the first was; 409 once the
    ticket is done). The citizen hears nothing of it on their channel: they are on the phone."""
    console = _console(request)
    try:
        urged = await console.tickets.urge(ticket_id, OPERATOR_URGE + (body.note.strip() or "市民来电催办"))
    except NoteRefused as exc:
        raise Conflict(str(exc)) from exc
    if urged.recorded:
        metrics.FOLLOWUPS.labels("urge").inc()
        await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, "ticket.urge", urged.ticket.conversation_key, ticket_id=ticket_id,
                       recorded=urged.recorded)
    return {"recorded": urged.recorded, "at": urged.at.timestamp(),
            "quiet": period_words(timedelta(hours=console.rt.settings.urge_quiet_hours)),  # 一天: how long one stands
            "ticket": convs.ticket_detail(urged.ticket, console.rt.settings)}


@api.post("/tickets/{ticket_id}/correct")
async def ticket_correct(ticket_id: str, body: CorrectIn, user: UserDep, request: Request) -> dict[str, Any]:
    """更正 the ticket's category, request type, urgency or departments, or confirm them (审核无误);
    departments on a ticket its department 退回 send it out again (改派: 已派单, the citizen hears
    it). Kept as a revision with who, when and why; 409 for a 改派 of a done ticket, or where the
    platform routes (open311)."""
    console = _console(request)
    ticket = await console.tickets.correct(ticket_id, await body.correction(user.name))
    revision = ticket.revisions[-1] if ticket.revisions else None
    if revision is not None and revision.dispatched:
        console.rt.kick_status()
        console.recount_returned()
    await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, "ticket.correct", ticket.conversation_key, ticket_id=ticket_id,
                       fields=sorted(revision.after) if revision else [],
                       dispatched=bool(revision and revision.dispatched))
    return convs.ticket_detail(ticket, console.rt.settings)


@api.post("/tickets/{ticket_id}/merge")
async def ticket_merge(ticket_id: str, body: merging.MergeIn, user: UserDep, request: Request) -> dict[str, Any]:
    """并单: handle this ticket with the main ticket ``into`` (the same matter reported again); its
    citizen hears it, then each step of the main. 409 where it would not hold, or where the
    platform owns the workflow (open311)."""
    console = _console(request)
    ticket = await console.tickets.merge(ticket_id, body.into.strip())
    console.rt.kick_status()
    console.recount_returned()
    await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, "ticket.merge", ticket.conversation_key, ticket_id=ticket_id,
                       into=ticket.merged_into, reason=mask_pii(body.reason))
    return convs.ticket_detail(ticket, console.rt.settings)


@api.post("/tickets/{ticket_id}/gather")
async def ticket_gather(ticket_id: str, body: merging.GatherIn, user: UserDep, request: Request) -> dict[str, Any]:
    """并入本单: merge each given ticket into this one, as one 并单 each (each citizen hears it, each
    audited); one that cannot be merged is said with why, and the others are merged still."""
    console = _console(request)
    await console.tickets.get(ticket_id)  # 404 first
    merged: list[str] = []
    refused: list[dict[str, str]] = []
    for other in dict.fromkeys(t.strip() for t in body.tickets):
        try:
            ticket = await console.tickets.merge(other, ticket_id)
        except (MergeRefused, TicketNotFound) as exc:
            refused.append({"ticket_id": other, "reason": str(exc) if isinstance(exc, MergeRefused) else "工单不存在"})
            continue
        merged.append(other)
        await audit.record(console.redis, user.name, "ticket.merge", ticket.conversation_key, ticket_id=other,
                           into=ticket_id, reason=mask_pii(body.reason))
    if merged:
        console.rt.kick_status()
        console.recount_returned()
        await console.redis.incr(ck.VERSION)
    return {"merged": merged, "refused": refused}


@api.post("/tickets/{ticket_id}/unmerge")
async def ticket_unmerge(ticket_id: str, body: merging.UnmergeIn, user: UserDep, request: Request) -> dict[str, Any]:
    """取消并单: the ticket is handled on its own again from where it stands (its citizen hears it)."""
    console = _console(request)
    before = await console.tickets.get(ticket_id)
    ticket = await console.tickets.unmerge(ticket_id)
    console.rt.kick_status()
    await console.redis.incr(ck.VERSION)
    await audit.record(console.redis, user.name, "ticket.unmerge", ticket.conversation_key, ticket_id=ticket_id,
                       was=before.merged_into, reason=mask_pii(body.reason))
    return convs.ticket_detail(ticket, console.rt.settings)


@api.get("/routing")
async def routing(
    user: UserDep, request: Request, category: Annotated[str, Query(max_length=130)] = "",
    location: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, Any]:
    """What 更正 and 改派 offer: the taxonomy's categories, the units the department map names,
    and its 主办/协办 for ``category`` (一级/二级/三级) when given, the 属地 ones the offices of
    ``location`` (the place as the form has it: 属地街道办事处 → 洞井街道办事处)."""
    found = _console(request).routing
    path = [level for level in category.split("/") if level]
    parts = await place_parts(location.strip()) if path and location.strip() else {}
    return {"categories": found.categories, "departments": found.units,
            "suggested": found.suggest(path, parts) if path else []}


def _now(request: Request) -> datetime:
    return _console(request).clock()


# one moment per request (FastAPI caches a dependency per request): a lookup's 超期 / 即将超期
# filter and the flags on the rows it returns are judged at the same instant
NowDep = Annotated[datetime, Depends(_now)]


def _ticket_query(
    request: Request,
    now: NowDep,
    q: Annotated[str, Query(max_length=200)] = "",
    status: str = "",
    channel: Annotated[str, Query(max_length=80)] = "",
    urgent: bool | None = None,
    rating: str = "",
    solved: str = "",
    days: Annotated[int, Query(ge=0, le=3660)] = 0,
    overdue: bool = False,
    due_soon: bool = False,
    urged: bool = False,
    reviewed: bool = False,
    returned: bool = False,
    done_late: bool = False,
    unanswered: bool = False,
    extended: bool = False,
    extension_pending: bool = False,
    repeated: bool = False,
    department: Annotated[str, Query(max_length=40)] = "",
    category: Annotated[str, Query(max_length=130)] = "",
) -> TicketQuery:
    """工单查询's filters, as the lookup and its export take them."""
    if status and status not in (*STATUSES, "withdrawn"):  # withdrawn: 已撤单, closed at the citizen's request
        raise BadInput(f"未知的工单状态“{status}”")
    if rating and rating not in (*RATINGS, "none"):
        raise BadInput(f"未知的评价“{rating}”")
    if solved and solved not in (*SOLVED_ANSWERS, "none", "redo"):
        raise BadInput(f"未知的解决情况“{solved}”（可选：已解决、未解决、none、redo）")
    since = now - timedelta(days=days) if days else None
    # 已退回 is the 改派 worklist (the 退回待改派 card, N件待改派): a merged ticket is returned, and
    # sent out again, with its main, so it is left out there as in the count
    return TicketQuery(text=q, status=status, channel=channel, urgent=urgent, rating=rating, solved=solved, since=since,
                       urged=urged, reviewed=reviewed, department=department, returned=returned, done_late=done_late,
                       unanswered=unanswered, **deadlines.unanswered_filter(_console(request).rt.settings, now),
                       extended=extended, extension_pending=extension_pending,
                       main_only=status == "returned" or returned,
                       category=[level.strip() for level in category.split("/") if level.strip()][:3],
                       repeated_since=now - timedelta(days=merging.SIMILAR_DAYS) if repeated else None,
                       **deadlines.late_filter(_console(request).rt.settings, now, overdue=overdue, due_soon=due_soon))


TicketQueryDep = Annotated[TicketQuery, Depends(_ticket_query)]


@api.get("/tickets")
async def search_tickets(
    user: UserDep, request: Request, query: TicketQueryDep, now: NowDep,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    """工单查询: tickets by number, platform number, phone, sender or words, newest first.

    A lookup by words is audited (the words with phone and ID numbers masked): it is how an
    operator reaches a stranger's tickets, where the queue only shows conversations."""
    console = _console(request)
    found = await console.tickets.search(query.model_copy(update={"limit": SEARCH_PAGE + 1, "offset": offset}))
    if query.words():
        await audit.record(console.redis, user.name, "ticket.search", "", q=mask_pii(query.text.strip()),
                           found=min(len(found), SEARCH_PAGE))
    page = found[:SEARCH_PAGE]
    repeats = await merging.repeats(console.tickets, page, now)
    return {
        "tickets": [{**convs.ticket_view(t, console.rt.settings, now), "repeats": repeats.get(t.ticket_id, 0)}
                    for t in page],
        "more": len(found) > SEARCH_PAGE,
        "channel_names": console.channel_names(),
    }


@api.get("/tickets.csv")
async def export_tickets(user: SupervisorDep, request: Request, query: TicketQueryDep, now: NowDep) -> StreamingResponse:
    """工单查询's results as a CSV file for the centre's reports (supervisors; newest first, up to
    export.LIMIT rows, streamed: gateway/console/export.py). Audited when the file ends, with its
    filters, its row count and whether it was cut short."""
    console = _console(request)

    async def audited(tally: export.Tally) -> None:
        try:
            await audit.record(console.redis, user.name, "ticket.export", "", rows=tally.rows, cut=tally.cut,
                               broken=tally.broken, q=mask_pii(query.text.strip()), status=query.status,
                               rating=query.rating, solved=query.solved, overdue=query.overdue, due_soon=query.due_soon,
                               urged=query.urged, done_late=query.done_late, unanswered=query.unanswered,
                               extended=query.extended, extension_pending=query.extension_pending,
                               repeated=query.repeated_since is not None, department=query.department,
                               category="/".join(query.category))
        except RedisError as err:
            log.error("export_unaudited", actor=user.name, rows=tally.rows, error=str(err))

    return await export.response(console.tickets, query, console.rt.settings, now, audited)


@api.get("/tickets/{ticket_id}")
async def ticket_detail(ticket_id: str, user: UserDep, request: Request, now: NowDep) -> dict[str, Any]:
    """One ticket in full, with its history and whether its conversation is still held."""
    console = _console(request)
    ticket = await console.tickets.get(ticket_id)
    held = await console.redis.hexists(keys.conversation(ticket.conversation_key), "channel")
    # 并单: the tickets that follow this one (a main)
    followers = await merging.followers(console.tickets, ticket)
    repeats = await merging.repeats(console.tickets, [ticket], now)
    return {
        "ticket": {**convs.ticket_detail(ticket, console.rt.settings, now), "repeats": repeats.get(ticket_id, 0),
                   **convs.urged([ticket, *followers])},  # 市民催办: the matter's, on the main
        "merged": [convs.ticket_view(t, console.rt.settings, now) for t in followers],
        # their citizens' 催办 and 补充 (more about the matter, a photo): the main is where it is handled
        "merged_followups": [f for t in followers for f in convs.followup_views(t)],
        "conversation": bool(held),
        "status_by_platform": console.rt.settings.ticket_backend != "local",
        "channel_names": console.channel_names(),
    }


@api.get("/tickets/{ticket_id}/similar")
async def ticket_similar(ticket_id: str, user: UserDep, request: Request, now: NowDep) -> dict[str, Any]:
    """可能重复: the open tickets at this one's place that may be the same matter (merging.py)."""
    console = _console(request)
    ticket = await console.tickets.get(ticket_id)
    found = await merging.similar(console.tickets, ticket, now)
    spot = ticket.spot()
    return {"place": merging.place_word(ticket),  # same_spot: a 疑似重复 (the same matter at its spot)
            "tickets": [{**convs.ticket_view(t, console.rt.settings, now), "same_spot": bool(spot[0]) and t.spot() == spot}
                        for t in found]}


@api.get("/media")
async def media(user: UserDep, request: Request, ref: Annotated[str, Query(max_length=300)],
                thumb: bool = False) -> FileResponse:
    """A photo (or voice note) a citizen sent, as the channel stored it (``thumb``: a photo's
    thumbnail, as the history shows it)."""
    console = _console(request)
    return await _served(await find(console.redis, ref, media_roots(console.rt.settings)), thumb)


async def _served(found: tuple[Path, str] | None, thumb: bool) -> FileResponse:
    """A stored file (404 when it is not: not fetched yet, or past ``HOTLINE_MEDIA_KEEP_DAYS``), or
    with ``thumb`` a photo's thumbnail (THUMB_SIDE: made once, beside it; anything else as it is)."""
    if found is None:
        raise NotFound("附件尚未取到或已过期")
    small = await asyncio.to_thread(thumbnail, *found) if thumb else None  # Pillow off the event loop
    return file_response(*(small or found))


async def ticket_attachment(console: ConsoleState, ticket: Ticket, n: int, thumb: bool = False) -> FileResponse:
    """The ``n``-th file filed with ``ticket`` (a photo, a voice note), as ``_served``: 404 for none."""
    if not 0 <= n < len(ticket.attachments):
        raise NotFound(f"工单 {ticket.ticket_id} 没有第 {n + 1} 个附件")
    return await _served(await find(console.redis, ticket.attachments[n], media_roots(console.rt.settings)), thumb)


@api.get("/tickets/{ticket_id}/attachments/{n}")
async def ticket_attachments(ticket_id: str, n: int, user: UserDep, request: Request, thumb: bool = False) -> FileResponse:
    """A ticket's photos in 工单查询, whether or not its conversation is still held (``thumb``: small)."""
    console = _console(request)
    return await ticket_attachment(console, await console.tickets.get(ticket_id), n, thumb)


@api.get("/canned")
async def canned(user: UserDep, request: Request) -> dict[str, Any]:
    raw = await _console(request).redis.get(ck.CANNED)
    items = json.loads(raw) if raw else list(texts().get("console_canned", []))
    return {"items": items, "editable": user.is_supervisor}


@api.get("/knowledge")
async def knowledge(
    user: UserDep, request: Request, q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
) -> dict[str, Any]:
    """知识库: the answers the bot gives (答复口径), for an operator to find and insert in a reply.
    Not audited: the words are often the citizen's own, and nothing is read but the shared answers.
    ``enabled`` False: turned off (HOTLINE_KNOWLEDGE_FILE empty), the console's entries included."""
    source = _console(request).rt.knowledge
    kb = source.current()  # the file's entries with the console's edits; None when turned off
    if kb is None:
        return {"enabled": source.enabled, "entries": []}
    words = q.strip()
    found = [(h.entry, h.score) for h in kb.search(words, limit)] if words else [(e, None) for e in kb.entries[:limit]]
    return {"enabled": True, "entries": [
        {"id": e.id, "question": e.question, "answer": e.answer, "source": e.source,
         "updated": e.updated.isoformat() if e.updated else "", "score": None if score is None else round(score, 3)}
        for e, score in found
    ]}


@api.put("/canned")
async def set_canned(body: CannedIn, user: SupervisorDep, request: Request) -> dict[str, Any]:
    """常用语: supervisors edit the list every operator uses."""
    console = _console(request)
    items = [i.strip() for i in body.items if i.strip()]
    await console.redis.set(ck.CANNED, json.dumps(items, ensure_ascii=False))
    await audit.record(console.redis, user.name, "canned.update", count=len(items))
    return {"items": items, "editable": True}


@api.get("/users")
async def users(user: UserDep, request: Request) -> dict[str, Any]:
    """Accounts (names and roles only): operators need them to transfer a conversation."""
    return {"users": [u.public() for u in await _console(request).users.all() if not u.disabled or user.is_supervisor]}


@api.post("/users", status_code=201)
async def create_user(body: UserIn, user: SupervisorDep, request: Request) -> dict[str, Any]:
    """Create an operator, supervisor or department account (with its ``unit``); a password is
    generated (and returned once) if none is given."""
    console = _console(request)
    password = body.password or generate_password()
    try:
        created = await console.users.create(body.name, body.role, password, body.display_name, unit=body.unit)
    except UserError as exc:
        raise BadInput(str(exc)) from exc
    await audit.record(console.redis, user.name, "user.create", created.name, role=created.role,
                       **({"unit": created.unit} if created.unit else {}))
    return {"user": created.public(), "password": None if body.password else password}


@api.post("/users/{name}/password")
async def reset_password(name: str, user: SupervisorDep, request: Request) -> dict[str, Any]:
    """重置密码 (supervisors): a forgotten password replaced by a generated one, returned once; the
    account's browsers are signed out. One's own is changed with 修改密码 (400)."""
    console = _console(request)
    if name == user.name:
        raise BadInput("请用“修改密码”修改自己的密码")
    if await console.users.get(name) is None:
        raise NotFound("没有该账号")
    password = generate_password()
    await console.users.set_password(name, password)
    await audit.record(console.redis, user.name, "user.reset_password", name)
    return {"password": password}


@api.post("/users/{name}/disable")
async def disable_user(name: str, user: SupervisorDep, request: Request) -> dict[str, Any]:
    """停用: the account signs in no more and its sessions end (not one's own)."""
    return await _set_disabled(request, user, name, True)


@api.post("/users/{name}/enable")
async def enable_user(name: str, user: SupervisorDep, request: Request) -> dict[str, Any]:
    """启用: a 停用 account signs in again with its password (重置密码 when it is forgotten)."""
    return await _set_disabled(request, user, name, False)


async def _set_disabled(request: Request, user: User, name: str, disabled: bool) -> dict[str, Any]:
    console = _console(request)
    if name == user.name:
        raise BadInput("不能停用或启用自己的账号")
    if await console.users.get(name) is None:
        raise NotFound("没有该账号")
    await console.users.set_disabled(name, disabled)
    await audit.record(console.redis, user.name, "user.disable" if disabled else "user.enable", name)
    return {"ok": True}


@api.get("/stats")
async def stats(user: SupervisorDep, request: Request, now_at: NowDep) -> dict[str, Any]:
    """班长视图: who handles what, queue length, time to first operator reply, longest waits."""
    console = _console(request)
    redis = console.redis
    snapshot = await convs.queue(redis, user.name)
    rows = snapshot["conversations"]
    now = snapshot["now"]
    accounts = await console.users.all()
    handling: dict[str, list[str]] = {u.name: [] for u in accounts}
    for row in rows:
        if row["mode"] == "operator" and row["assignee"]:
            handling.setdefault(row["assignee"], []).append(row["key"])
    waits = sorted(float(x) for x in await redis.lrange(ck.FIRST_REPLY, 0, -1))
    waiting = [r for r in rows if r["mode"] == "waiting"]
    waiting.sort(key=lambda r: r["waiting_since"])

    def pct(p: float) -> float | None:
        return round(waits[min(len(waits) - 1, int(p * len(waits)))], 1) if waits else None

    service = []
    corrections: list[dict[str, Any]] = []
    overdue = due_soon = urged = returned = repeated = redo = unanswered = extension_pending = 0
    settings = console.rt.settings
    if console.rt.tickets is not None:
        urged = await console.rt.tickets.count(TicketQuery(urged=True))
        returned = await console.rt.tickets.count(TicketQuery(status="returned", main_only=True))
        redo = await console.rt.tickets.count(TicketQuery(solved="redo"))
        extension_pending = await console.rt.tickets.count(TicketQuery(extension_pending=True))
        unanswered = await console.rt.tickets.count(
            TicketQuery(unanswered=True, **deadlines.unanswered_filter(settings, now_at)))
        repeated = await console.rt.tickets.count(
            TicketQuery(repeated_since=now_at - timedelta(days=merging.SIMILAR_DAYS)))
        overdue = await console.rt.tickets.count(
            TicketQuery(**deadlines.late_filter(settings, now_at, overdue=True, due_soon=False)))
        if settings.due_soon_hours:
            due_soon = await console.rt.tickets.count(
                TicketQuery(**deadlines.late_filter(settings, now_at, overdue=False, due_soon=True)))
        midnight = datetime.now(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
        for label, since in (("今日", midnight), ("近7天", midnight - timedelta(days=6)),
                             ("近30天", midnight - timedelta(days=29))):
            found = await console.rt.tickets.summary(since)
            service.append({
                "label": label, "filed": sum(found.filed.values()), "by_channel": found.filed,
                "resolved": found.resolved, "rated": found.rated, "ratings": found.ratings,
                "satisfaction": found.satisfaction, "response_rate": found.response_rate,
                "urged": found.urged, "redispatched": found.redispatched, "merged": found.merged,
                "withdrawn": found.withdrawn,  # 撤单: withdrawn at their citizen's request in the period
                "extended": found.extended,  # 延期: given a later 办理时限 in the period
                # 按期办结率: of the matters 办结 in the period, those finished within their 办理时限
                "done": found.done, "done_late": found.done_late, "on_time_rate": found.on_time_rate,
                # 解决率: of the citizens who said whether the work resolved in the period solved it
                "solved": found.solved, "unsolved": found.unsolved, "solved_rate": found.solved_rate,
            })
        month = await console.rt.tickets.correction_counts(midnight - timedelta(days=29))
        for name in ("category", "departments"):
            corrections += [c.model_dump() for c in month if c.field == name][:10]
    return {
        "now": now,
        "counts": snapshot["counts"],
        "service": service,  # 受理, 办结, 回访: what the centre reports
        # 更正统计 for 30 days: what operators changed into what, most first (10 of each field)
        "corrections": corrections,
        "knowledge": await _knowledge_use(console),  # 知识库答复: which answers help, which do not
        "overdue": overdue,  # 超期未办结, by 办理时限
        "due_soon": due_soon,  # 即将超期: due within due_soon_hours (0 = off: the card is hidden)
        "due_soon_hours": settings.due_soon_hours,
        # years ahead whose 放假安排 is not known: 办理时限 into them count weekends only (a notice)
        "holidays_missing": deadlines.holidays_missing(settings, now_at),
        "urged": urged,  # 催办未办结: the citizen pressed for it and it is still open
        "returned": returned,  # 退回待改派: returned by its department, waiting to be sent out again
        "repeated": repeated,  # 疑似重复: open tickets of 30 days about one matter at one spot, to merge
        "redo": redo,  # 回访未解决: the citizen said 未解决 and the ticket is still done (待重办)
        "extension_pending": extension_pending,  # 延期待审核: departments' 延期申请 awaiting a supervisor
        "unanswered": unanswered,  # 超时未签收: no department has taken it on, past its time to
        "respond_limits": bool(settings.respond_hours or settings.respond_urgent_hours),  # 0 and 0: no card
        "queue_length": len(waiting),
        "operators": [
            {**u.public(), "conversations": handling.get(u.name, [])} for u in accounts
        ],
        "first_reply_s": {"count": len(waits), "median": pct(0.5), "p90": pct(0.9),
                          "mean": round(sum(waits) / len(waits), 1) if waits else None},
        "longest_waiting": [{"key": r["key"], "channel": r["channel"], "reason": r["reason"],
                             "waited_s": round(now - r["waiting_since"], 1), "last_text": r["last_text"]}
                            for r in waiting[:10]],
    }


@api.get("/report")
async def period_report(
    user: SupervisorDep, request: Request, now: NowDep, days: int | None = None,
    week: Annotated[str, Query(max_length=10)] = "", month: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    """周报 / 月报: the 班长视图's figures of the last ``days`` (7, the default, or 30), of a calendar
    ``week`` (2026-W47) or ``month`` (2026-11) as one printable page (受理 and its 环比, 办结, 回访,
    热点诉求, 承办单位考核) for the centre's report; audited. 400 for another period or one not
    begun, 503 without a ticket ledger."""
    console = _console(request)
    if console.rt.tickets is None:
        raise ServiceUnavailable("工单系统暂时不可用，请稍后重试")
    days = days if days is not None or week or month else 7
    page = await report.page(console.rt.tickets, console.rt.settings, now, days, week, month)
    await audit.record(console.redis, user.name, "report.view", "",
                       **{k: v for k, v in (("days", days), ("week", week), ("month", month)) if v})
    return HTMLResponse(page, headers=PAGE_HEADERS)


DEPARTMENT_DAYS = (7, 30, 90)  # the 承办单位考核 periods, as 工单查询's 受理时间 offers them
DEPARTMENT_EXPORT = 500  # units in the exported report (a city names a few hundred at most)


async def department_tallies(request: Request, now: datetime, days: int, limit: int,
                             department: str = "") -> list[DepartmentTally]:
    """The units of the tickets filed in the last ``days`` (``department``: that one's row alone),
    超期 judged at ``now``; 400 for a period the console does not offer."""
    if days not in DEPARTMENT_DAYS:
        raise BadInput(f"统计期间只能是{'、'.join(f'近{d}天' for d in DEPARTMENT_DAYS)}")
    console = _console(request)
    if console.rt.tickets is None:
        return []
    late = deadlines.late_filter(console.rt.settings, now, overdue=True, due_soon=False)
    waiting = deadlines.unanswered_filter(console.rt.settings, now)  # 响应率: 超时未签收 at ``now``
    return await console.rt.tickets.department_tallies(
        TicketQuery(since=now - timedelta(days=days), department=department, **late, **waiting), limit)


def tally_view(t: DepartmentTally, settings: Settings) -> dict[str, Any]:
    """A unit's row of 承办单位考核 with its rates and 综合得分 (None where it has too little to rate)."""
    return {**t.model_dump(), "rated": t.rated, "satisfaction": t.satisfaction, "solved_rate": t.solved_rate,
            "done_rate": t.done_rate, "on_time_rate": t.on_time_rate, "respond_rate": t.respond_rate,
            "score": t.score(settings.score_weights, settings.score_min_tickets)}


@api.get("/departments")
async def department_report(
    user: SupervisorDep, request: Request, now: NowDep, days: int = 30,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """承办单位考核: per unit the tickets filed in the last ``days`` name (主办 or 协办), what it was
    given, finished, let run late or sent back, and how citizens judged it, the busiest first.
    A period of its own request: at a city's volume it reads a month of tickets (bench/ticket_search.py)."""
    found = await department_tallies(request, now, days, limit)
    settings = _console(request).rt.settings
    return {"days": days, "weights": settings.score_weights, "score_min_tickets": settings.score_min_tickets,
            "departments": [tally_view(t, settings) for t in found]}


@api.get("/departments.csv")
async def export_department_report(user: SupervisorDep, request: Request, now: NowDep, days: int = 30) -> Response:
    """承办单位考核 as a CSV file for the centre's 考核 report (every unit, up to DEPARTMENT_EXPORT);
    audited."""
    found = await department_tallies(request, now, days, DEPARTMENT_EXPORT)
    await audit.record(_console(request).redis, user.name, "departments.export", "", days=days, rows=len(found))
    settings = _console(request).rt.settings
    return export.department_file(found, days, now, settings.score_weights, settings.score_min_tickets)


HOTSPOT_DAYS = (7, 30)  # 热点诉求: a week's or a month's, each against the one before


@api.get("/hotspots")
async def hotspots(user: SupervisorDep, request: Request, now: NowDep, days: int = 7) -> dict[str, Any]:
    """热点诉求: the kinds of matter of the last ``days`` against the ``days`` before (环比), and the
    spots reported again and again (two or more tickets, repeats included), the most first."""
    if days not in HOTSPOT_DAYS:
        raise BadInput(f"统计期间只能是{'、'.join(f'近{d}天' for d in HOTSPOT_DAYS)}")
    console = _console(request)
    if console.rt.tickets is None:
        return {"days": days, "categories": [], "places": []}
    since = now - timedelta(days=days)
    trends = await console.rt.tickets.category_trends(since, now)
    spots = await console.rt.tickets.hotspots(since)
    return {"days": days,
            "categories": [{**t.model_dump(), "change": t.change} for t in trends],
            "places": [{**h.model_dump(exclude={"latest"}), "latest": h.latest.timestamp()} for h in spots]}


async def _knowledge_use(console: ConsoleState, days: int = USAGE_DAYS) -> dict[str, Any]:
    """The knowledge base's answers over the last ``days`` Beijing days: per entry, how often the bot
    gave it and how often the citizen said it solved the matter or not (most given first). An entry
    since switched off or deleted is named by its question still (``state`` says which), or by a
    label with its id once nothing is known of it."""
    source = console.rt.knowledge
    if not source.enabled:
        return {"days": days, "enabled": False, "totals": {"answered": 0, "solved": 0, "unsolved": 0},
                "entries": []}
    counts = await usage(console.redis, days)
    ranked = sorted(counts.items(), key=lambda item: (-item[1]["answered"], item[0]))[:20]
    totals = {k: sum(c[k] for c in counts.values()) for k in ("answered", "solved", "unsolved")}
    names = await source.names([entry for entry, _ in ranked])
    rows = [{"id": entry, "question": names[entry].question, "state": names[entry].state, **c}
            for entry, c in ranked]
    return {"days": days, "enabled": True, "totals": totals, "entries": rows}


@api.get("/dead-letters")
async def dead_letter_list(user: SupervisorDep, request: Request) -> dict[str, Any]:
    """What kept failing (filings, deliveries, bot turns), oldest first (supervisors only)."""
    streams = _console(request).rt.streams
    assert streams is not None
    items = [dead_letters.view(r) for r in await streams.dead_letters(200)]
    count = await _console(request).redis.llen(keys.DEAD_LETTERS)
    return {"items": items, "count": count}


@api.post("/dead-letters/settle")
async def dead_letter_settle(body: DeadLetterIn, user: SupervisorDep, request: Request) -> dict[str, Any]:
    """Retry a dead letter (back on its stream) or discard it; once, however many click."""
    console = _console(request)
    assert console.rt.streams is not None
    record = await filing.settle(console.rt.streams, console.rt.tickets, body.ref, body.retry)
    if record is None:
        raise NotFound("该记录已被处理或不存在")
    shown = dead_letters.view({**record, "ref": body.ref})
    await audit.record(console.redis, user.name, "dead.retry" if body.retry else "dead.discard", shown["key"],
                       kind=shown["kind"], ticket_id=shown["ticket_id"])
    return {"ok": True, "item": shown}


@api.get("/audit")
async def audit_log(
    user: SupervisorDep, request: Request, actor: str = "", action: str = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """The audit log of operator actions, newest first (supervisors only)."""
    return {"entries": await audit.entries(_console(request).redis, limit, actor, action)}


@api.websocket("/ws")
async def live(websocket: WebSocket) -> None:
    """The live queue: a snapshot whenever anything changes (and every few seconds).

    Authenticated by the session cookie and the page's origin; closed with 4401 as soon as the
    session ends (logout, expiry, account disabled).
    """
    console: ConsoleState = websocket.app.state.console
    session = await console.sessions.load(websocket.cookies.get(COOKIE), console.users)
    if session is None or not same_origin(websocket):
        await websocket.close(code=4401)
        return
    if session.user.is_department:  # the live queue holds citizens' words: the centre's only
        await websocket.close(code=4403)
        return
    await websocket.accept()
    receiver = asyncio.create_task(_drain(websocket))
    last_version: str | None = None
    last_payload = ""
    refreshed = 0.0
    touched = time.monotonic()
    try:
        while not receiver.done():
            if not await console.sessions.alive(session.token_hash):
                await websocket.send_json({"type": "expired"})
                await websocket.close(code=4401)
                return
            if time.monotonic() - touched > 60:
                touched = time.monotonic()
                await console.redis.expire(ck.session(session.token_hash), console.sessions.idle_s)
            version = await console.redis.get(ck.VERSION) or "0"
            if version != last_version or time.monotonic() - refreshed > WS_REFRESH_S:
                refreshed = time.monotonic()
                snapshot = await console.live_queue(version, session.user.name)
                payload = json.dumps([snapshot["conversations"], snapshot["dead_letters"], snapshot["returned"]],
                                     ensure_ascii=False, sort_keys=True)
                if payload != last_payload or version != last_version:
                    await websocket.send_json({"type": "queue", "version": version, **snapshot})
                last_payload, last_version = payload, version
            await asyncio.wait([receiver], timeout=WS_TICK_S)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        receiver.cancel()
        with contextlib.suppress(BaseException):
            await receiver


async def _drain(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
