"""``LocalLedger``: the ``local`` ticket backend, a ledger kept in SQLite or PostgreSQL.

Every write runs in one transaction that is serialised against the other writers: on SQLite by
``BEGIN IMMEDIATE``, on PostgreSQL by a transaction-scoped advisory lock. Serialising writes
keeps three promises cheaply: ticket numbers never collide, a status change is checked against
the status it really replaces, and history ids (the ``changes_since`` cursor) become visible in
commit order, so a poller that has read up to ``seq`` never misses a smaller one later.

Library errors stop here: connection trouble becomes ``PlatformUnavailable``, unknown ids
``TicketNotFound``.

The ledger also serves as the mirror of a ticket platform (``ticket_client.open311``): the last
section holds the few writes that backend needs (the link to the platform's request, the right to
send it, a platform status recorded as a walk of the workflow, a named cursor), each in one
serialised transaction like every other write.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from types import TracebackType
from typing import Any

from sqlalchemy import (
    Boolean,
    Text,
    and_,
    case,
    cast,
    delete,
    event,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from ticket_client.base import (
    CORRECTED_FIELDS,
    MAX_INFO_NOTE,
    MAX_REASON,
    MAX_UNIT,
    MAX_URGE_NOTE,
    RATINGS,
    SOLVED_ANSWERS,
    STATUSES,
    TO_ACCEPT,
    TRANSITIONS,
    URGE_QUIET,
    AssistRefused,
    CategoryTrend,
    Correction,
    CorrectionCount,
    CorrectionRefused,
    DepartmentTally,
    ExtendRefused,
    ExtensionRequest,
    ExtensionRequestRefused,
    FollowUp,
    FollowUpEvent,
    FollowUpKind,
    Hotspot,
    InvalidNote,
    InvalidRating,
    InvalidTransition,
    LocationInfo,
    MergeRefused,
    NoteRefused,
    PlatformUnavailable,
    Rejudged,
    Revision,
    Spot,
    StatusChange,
    Summary,
    Ticket,
    TicketDraft,
    TicketError,
    TicketNotFound,
    TicketQuery,
    TicketRef,
    UnknownStatus,
    Urged,
    WithdrawRefused,
    checked_note,
    walk,
)
from ticket_client.db import UNAVAILABLE_ERRORS, async_url, connect_args
from ticket_client.deadlines import DONE
from ticket_client.deadlines import said as said_due
from ticket_client.models import (
    ExtensionRequestRow,
    FollowUpRow,
    PlatformLinkRow,
    PlatformStateRow,
    RevisionRow,
    StatusHistoryRow,
    TicketCounter,
    TicketRow,
)

# Ticket numbers carry the date in China (no daylight saving, so a fixed offset is exact).
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
SQLITE_STOP_S = 0.05  # after a SQLite file failed to open: aiosqlite's thread stops meanwhile (``_edge``)
REJUDGE_BATCH = 2000  # tickets judged again in one write (``rejudge``): a year holds over a million
WRITE_LOCK_KEY = 0x12345_0002  # pg_advisory_xact_lock key serialising ledger writes


def utcnow() -> datetime:
    return datetime.now(UTC)


def _describe(err: BaseException) -> str:
    """A short cause without SQL parameters (they may hold citizens' words)."""
    cause = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"


# What 工单查询 matches a word in (LocalLedger.search).
_SEARCHED = (
    TicketRow.ticket_id, TicketRow.title, TicketRow.description, TicketRow.contact,
    TicketRow.conversation_key, PlatformLinkRow.request_id,
    # the place as filed (the NLU's, or as the operator corrected it), which the words may not name
    TicketRow.location["text"].as_string(),
)
_DAY_AND_SEQUENCE = re.compile(r"\d{8}-\d{6}")  # a ticket number without its prefix, as read out
_CJK = re.compile(r"[\u3000-\u9fff\uf900-\ufaff\uff00-\uffef]")


class _Unmerged(FunctionElement[bool]):
    """``merged_into`` names no main, written for each database's planner (``_main``)."""

    type = Boolean()
    inherit_cache = True
    name = "unmerged"


@compiles(_Unmerged)
def _unmerged_sqlite(element: _Unmerged, compiler: Any, **kw: Any) -> str:
    # not IS NULL: without statistics SQLite reads that through the merged_into index, which holds
    # nearly every ticket (open_at of a page took 150 ms that way, 4 ms through the place's index)
    return str(compiler.process(func.coalesce(*element.clauses, "") == "", **kw))


@compiles(_Unmerged, "postgresql")
def _unmerged_postgresql(element: _Unmerged, compiler: Any, **kw: Any) -> str:
    # IS NULL: PostgreSQL's statistics know nearly every ticket is, where it guesses 0.5% for the
    # expression and would read a unit's whole ledger to sort it (a 承办部门's newest page: 0.45 s)
    return str(compiler.process(element.clauses.clauses[0].is_(None), **kw))


def _main(table: Any) -> Any:
    """The ticket follows no other (merged into none)."""
    return _Unmerged(table.merged_into)


def _kind() -> Any:
    """A ticket's first-level category ("" for none): half of the spot 疑似重复 match by."""
    return func.coalesce(TicketRow.category[0].as_string(), "").label("kind")


def _open_since(since: datetime) -> list[Any]:
    """Open tickets (merged into none) filed since ``since`` about a spot: those 疑似重复 counts."""
    return [TicketRow.created_at >= since, TicketRow.place != "", _main(TicketRow), TicketRow.status.not_in(DONE)]


def _keyed(row: TicketRow, key: str) -> FollowUpRow | None:
    """The ticket's follow-up made from the message ``key``, if any (a turn run a second time)."""
    return next((f for f in row.followups if key and f.key == key), None)


def _contains(column: Any, word: str) -> Any:
    """``column`` holds ``word`` anywhere: case-blind only where case exists (PostgreSQL's ILIKE
    reads three times slower than LIKE)."""
    if word.lower() == word.upper():
        return column.contains(word, autoescape=True)
    return column.icontains(word, autoescape=True)


# A ticket's columns as ``scan`` reads them: every field of a Ticket that is a column of its row (a
# field added to both is read without a word here), and the primary key ``id``, which a Ticket ignores.
_SCANNED_NAMES = ("id", *(name for name in Ticket.model_fields if name in TicketRow.__table__.columns))
_SCANNED = tuple(getattr(TicketRow, name) for name in _SCANNED_NAMES)


def _changes(row: TicketRow, correction: Correction) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields ``correction`` changes on ``row``: as they are, and as they become (lists cleaned
    of blanks and repeats; a category cut after its first blank level)."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name in CORRECTED_FIELDS:
        value = getattr(correction, name)
        if value is None:
            continue
        if name == "departments":
            value = list(dict.fromkeys(d.strip() for d in value if d.strip()))
        elif name == "category":
            levels = [c.strip() for c in value]
            value = levels[: levels.index("")] if "" in levels else levels
        elif name in ("request_type", "location"):
            value = value.strip()
        current = row.location.get("text", "") if name == "location" else getattr(row, name)
        if value != current:
            before[name] = current
            after[name] = value
    return before, after


# What the citizen of a ticket merged into another hears (并单), and when it is handled alone again.
MERGED_NOTE = "您反映的问题与工单{main}为同一事项，已合并办理，办理进展和结果将一并告知您"
UNMERGED_NOTE = "该工单改为单独办理，办理进展将继续告知您"
EXTENDED_NOTE = "办理时限延长至{until}（{reason}）"  # 延期, as the citizen hears it and 办理记录 keeps it
# the centre's decision on a 延期申请, as 办理记录 keeps it and the unit that asked is told
APPROVED_NOTE = "同意延期，办理时限延至{until}"
REJECTED_NOTE = "不同意延期：{reason}"
EXTEND_AHEAD = timedelta(days=366)  # the latest 办理时限 a 延期 may give: a typo of the year is refused


def _not_merged(row: TicketRow) -> None:
    """A merged ticket's steps are its main's: taken there, not on it."""
    if row.merged_into:
        raise MergeRefused(f"工单 {row.ticket_id} 已并入工单 {row.merged_into}，请在主单上办理")


def _returned_by(unit: str) -> Any:
    """曾退回: a ticket sent back at least once; with ``unit``, by that unit as its 主办 then, as
    ``_returns_by_unit`` credits it: the 主办 a 改派 replaced, the 主办 of a ticket waiting to go
    out again, or the 主办 now of one sent out again without a 改派."""
    ever = select(StatusHistoryRow.id).where(
        StatusHistoryRow.ticket_pk == TicketRow.id, StatusHistoryRow.status == literal_column("'returned'"),
        StatusHistoryRow.kind == "status").exists()
    if not unit:
        return ever
    redispatched = select(RevisionRow.id).where(RevisionRow.ticket_pk == TicketRow.id, RevisionRow.dispatched.is_(True))
    replaced = redispatched.where(RevisionRow.before[("departments", 0)].as_string() == unit).exists()
    moved = redispatched.where(RevisionRow.before[("departments", 0)].as_string().is_not(None)).exists()
    primary = TicketRow.departments[0].as_string() == unit
    return or_(replaced, and_(ever, primary, or_(TicketRow.status == "returned", ~moved)))


async def _returns_by_unit(session: AsyncSession, where: list[Any], since: datetime | None) -> Counter[str]:
    """退回次数 of the tickets ``where`` narrows to (filed since ``since``): each return (a change to
    ``returned``) credited to the unit that was the ticket's 主办 then, as its 改派 revisions tell.
    Read from the returns since ``since`` (the partial index ``ix_status_history_returned``: a
    ticket is returned after it is filed), then their tickets by key, a few hundred at a time: a
    join lets SQLite walk the period's hundred thousand tickets instead."""
    came = [StatusHistoryRow.at >= since] if since is not None else []
    moments: dict[int, list[datetime]] = {}
    for pk, at in await session.execute(
        select(StatusHistoryRow.ticket_pk, StatusHistoryRow.at)
        .where(StatusHistoryRow.status == literal_column("'returned'"),  # the partial index's very words
               StatusHistoryRow.kind == "status", *came)
    ):
        moments.setdefault(pk, []).append(at)
    pks = sorted(moments)
    tickets: dict[int, list[str]] = {}
    revisions: dict[int, list[tuple[datetime, dict[str, Any], dict[str, Any]]]] = {}
    for first in range(0, len(pks), 500):
        chunk = pks[first:first + 500]
        for pk, departments in await session.execute(
            select(TicketRow.id, TicketRow.departments).where(TicketRow.id.in_(chunk), *where)
        ):
            tickets[pk] = list(departments)
        kept = [pk for pk in chunk if pk in tickets]  # of the period, not merged into another
        if not kept:
            continue
        for pk, at, before, after in await session.execute(
            select(RevisionRow.ticket_pk, RevisionRow.at, RevisionRow.before, RevisionRow.after)
            .where(RevisionRow.ticket_pk.in_(kept)).order_by(RevisionRow.id)
        ):
            if "departments" in after:
                revisions.setdefault(pk, []).append((at, before, after))
    counts: Counter[str] = Counter()
    for pk, departments in tickets.items():
        counts.update(unit for at in moments[pk] if (unit := _primary_at(departments, revisions.get(pk, []), at)))
    return counts


def _primary_at(departments: list[str], redispatches: list[tuple[datetime, dict[str, Any], dict[str, Any]]],
                at: datetime) -> str:
    """A ticket's 主办 at ``at``: the departments the last 改派 (time, before, after) before it gave,
    else those the first one after it replaced, else the ticket's ``departments`` now ("" when it
    names none)."""
    units: list[str] | None = None
    for when, before, after in redispatches:
        if when <= at:
            units = after["departments"]
        else:
            units = units if units is not None else before.get("departments", [])
            break
    units = departments if units is None else units
    return units[0] if units else ""


DueFn = Callable[[Ticket], datetime | None]  # a moment a ticket is held to (None: it has none)
RESPONDED = ("accepted", "processing", "resolved")  # a department has taken it on (签收)
# the open statuses, named: "IN" reads them through the status index, where "NOT IN (resolved,
# closed)" left SQLite to walk a year of tickets by filing time (the 超期 card: 2 s → 0.1 s at 1.33 million)
OPEN = tuple(status for status in STATUSES if status not in DONE)


@dataclass(frozen=True)
class Limits:
    """What the ledger judges a ticket against as it moves: its 办理时限 (``due``, deadlines.due_at)
    and its time to be taken on (``respond``, deadlines.respond_by); without one, nothing is late."""

    due: DueFn | None = None
    respond: DueFn | None = None


def _settle(row: TicketRow, before: str, at: datetime, limits: Limits) -> None:
    """After a status change from ``before``: 响应 the first time a department takes it on (签收),
    judged against ``limits.respond``; 办结's moment and 按期 when the work brings it to resolved or
    closed from an open status (a 撤单 is not), judged against ``limits.due`` as the limits stand
    now, cleared when it is open again (resolved → closed, 归档, keeps the first)."""
    ticket: Ticket | None = None

    def judged(limit: DueFn | None) -> bool:
        nonlocal ticket
        if limit is None:
            return False
        ticket = ticket or LocalLedger._to_ticket(row, history=False)
        return _late(limit, ticket, at)

    if row.responded_at is None and row.status in RESPONDED:
        row.responded_at, row.responded_late = at, judged(limits.respond)
    if row.status not in DONE:
        row.done_at = row.done_late = None
    else:
        _lapse(row, at)
        if before not in DONE and row.withdrawn_at is None:
            row.done_at, row.done_late = at, judged(limits.due)


def _lapse(row: TicketRow, at: datetime) -> None:
    """A 延期申请 nobody decided lapses (失效) once its ticket is done, withdrawn or merged into
    another: there is no 办理时限 of its own left to extend."""
    for asked in row.extension_requests:
        if asked.outcome == "pending":
            asked.outcome, asked.decided_at = "lapsed", at


def _reason(reason: str, act: str) -> str:
    """The reason a citizen reads with a 撤单 or 延期 (``act``): on one line, cut to MAX_REASON;
    InvalidNote when there is none."""
    said = " ".join(reason.split())[:MAX_REASON]
    if not said:
        raise InvalidNote(f"{act}原因不能为空")
    return said


def _pending(row: TicketRow) -> ExtensionRequestRow | None:
    """The ticket's 延期申请 waiting for the centre, if any (at most one: a unique index)."""
    return next((r for r in row.extension_requests if r.outcome == "pending"), None)


def _late(limit: DueFn | None, ticket: Ticket, at: datetime) -> bool:
    """Whether ``at`` came after the moment ``limit`` holds the ticket to (never, without one)."""
    moment = limit(ticket) if limit is not None else None
    return moment is not None and at > moment


def _unanswered(query: TicketQuery) -> Any:
    """超时未签收: not yet taken on by a department (已受理登记 or 已退回 and never taken on), past
    its kind's limit to, each matter once (by its main)."""
    kinds = [and_(TicketRow.urgent == urgent, TicketRow.created_at < before)
             for urgent, before in ((False, query.unanswered_before), (True, query.unanswered_urgent_before))
             if before is not None]
    return and_(TicketRow.responded_at.is_(None), TicketRow.status.in_(("received", "returned")), _main(TicketRow),
                or_(*kinds) if kinds else false())


def _follow(row: TicketRow, status: str, note: str, now: datetime, limits: Limits) -> None:
    """One step of the main on a ticket merged into it: its status (``""``: a progress note),
    reached by the quiet steps where it stands elsewhere; none that no walk fits, and no note
    on an archived one."""
    if not status:
        if row.status != "closed":
            row.history.append(StatusHistoryRow(status=row.status, note=note, at=now, kind="note"))
            row.updated_at = now
        return
    steps = walk(row.status, status) or []
    for i, step in enumerate(steps):
        row.history.append(StatusHistoryRow(status=step, at=now, note=note if i == len(steps) - 1 else ""))
    if steps:
        before, row.status, row.updated_at = row.status, status, now
        _settle(row, before, now, limits)


@dataclass(frozen=True)
class PlatformLink:
    """A mirrored ticket and what is known of its request on the platform (``PlatformLinkRow``)."""

    ticket_id: str
    status: str  # the mirror's status
    request_id: str | None = None
    token: str | None = None
    posted_at: datetime | None = None
    sending_until: datetime | None = None
    platform_status: str = ""
    platform_updated: str = ""

    @property
    def filed(self) -> bool:
        """The platform has it (or has promised a number for it): never send it again."""
        return bool(self.request_id or self.token)


@dataclass(frozen=True)
class Followed:
    """What ``follow_platform`` did with one platform status."""

    ticket_id: str
    before: str  # the mirror's status before
    recorded: list[str]  # the statuses added to the history, in order (empty: nothing new)
    fits: bool  # False: the platform status had no walk (or no mapping) and was not recorded
    noted: bool = False  # the platform's new note was recorded as a progress note (status unchanged)


class LocalLedger:
    """The TicketClient of the ``local`` backend.

    ``database_url`` is an async SQLAlchemy URL (plain ``sqlite:///`` and ``postgresql://`` are
    converted). Run ``ticket_client.migrate`` first. ``clock`` exists for tests (ticket dates).
    ``limits`` judges a ticket as it moves: 办结 after its 办理时限 is 超期办结, taken on after its
    time to respond is 超时签收; without them nothing is late.
    """

    def __init__(
        self,
        database_url: str,
        *,
        prefix: str = "12345",
        clock: Callable[[], datetime] = utcnow,
        urge_quiet: timedelta = URGE_QUIET,
        limits: Limits = Limits(),
    ) -> None:
        self._limits = limits
        self._urge_quiet = urge_quiet  # a second 催办 within it is told the first stands (0: each recorded)
        url = async_url(database_url)
        self.prefix = prefix
        self._clock = clock
        self._dialect = url.get_backend_name()
        self._engine = create_async_engine(url, connect_args=connect_args(url), pool_pre_ping=True)
        write_engine = self._engine
        if self._dialect == "sqlite":
            self._tune_sqlite()
            write_engine = self._engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        self._read_sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(write_engine, expire_on_commit=False)

    def _tune_sqlite(self) -> None:
        """WAL (readers don't block the writer) and explicit BEGINs.

        pysqlite would otherwise start transactions lazily, letting a read-then-write upgrade
        fail with "database is locked" instead of waiting out the busy timeout (set by
        ``connect_args``).
        """
        sync_engine = self._engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))

    # -- plumbing -------------------------------------------------------------------------

    @asynccontextmanager
    async def _edge(self, action: str) -> AsyncIterator[None]:
        try:
            yield
        except UNAVAILABLE_ERRORS as err:
            if self._dialect == "sqlite":
                # aiosqlite stops a connection that failed to open in its worker thread, which then
                # answers a future on this loop: a loop closed before that (a CLI's asyncio.run, a
                # test's) makes the thread raise. It takes microseconds; wait for it here.
                await asyncio.sleep(SQLITE_STOP_S)
            raise PlatformUnavailable(f"ticket ledger unavailable while {action}: {_describe(err)}") from err

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        async with self._write_sessions() as session, session.begin():
            if self._dialect == "postgresql":
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
            yield session

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    async def _next_number(self, session: AsyncSession, day: str) -> int:
        """Increment the day's counter in the caller's transaction (an upsert, atomic on both)."""
        insert = pg_insert if self._dialect == "postgresql" else sqlite_insert
        stmt = (
            insert(TicketCounter)
            .values(day=day, value=1)
            .on_conflict_do_update(
                index_elements=[TicketCounter.day], set_={"value": TicketCounter.value + 1}
            )
            .returning(TicketCounter.value)
        )
        return int((await session.execute(stmt)).scalar_one())

    async def _ref_by_key(self, idempotency_key: str) -> TicketRef | None:
        async with self._read_sessions() as session:
            found = (
                await session.execute(
                    select(TicketRow.ticket_id, TicketRow.status).where(
                        TicketRow.idempotency_key == idempotency_key
                    )
                )
            ).first()
        return None if found is None else TicketRef(ticket_id=found[0], status=found[1], created=False)

    @staticmethod
    async def _row(session: AsyncSession, ticket_id: str, *, lock: bool = False) -> TicketRow:
        query = select(TicketRow).where(TicketRow.ticket_id == ticket_id)
        row = await session.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise TicketNotFound(f"no ticket {ticket_id!r}")
        return row

    @staticmethod
    def _to_ticket(row: TicketRow, *, history: bool = True) -> Ticket:
        return Ticket(
            ticket_id=row.ticket_id,
            channel=row.channel,
            conversation_key=row.conversation_key,
            contact=row.contact,
            title=row.title,
            description=row.description,
            category=list(row.category),
            request_type=row.request_type,
            urgent=row.urgent,
            location=LocationInfo.model_validate(row.location),
            departments=list(row.departments),
            attachments=list(row.attachments),
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
            rating=row.rating,
            rating_comment=row.rating_comment,
            solved=row.solved,
            platform_request_id=row.link.request_id if row.link is not None else None,
            merged_into=row.merged_into,
            withdrawn_at=row.withdrawn_at,
            done_at=row.done_at,
            done_late=row.done_late,
            responded_at=row.responded_at,
            responded_late=row.responded_late,
            extended_until=row.extended_until,
            extension_requests=[
                ExtensionRequest(at=r.at, unit=r.unit, until=r.until, reason=r.reason, outcome=r.outcome,
                                 decided_at=r.decided_at, decided_by=r.decided_by, answer=r.answer,
                                 granted_until=r.granted_until)
                for r in row.extension_requests
            ],
            followups=[FollowUp(kind=f.kind, at=f.at, note=f.note, unit=f.unit or "") for f in row.followups],
            revisions=[
                Revision(at=r.at, by=r.by, reason=r.reason, before=r.before, after=r.after, dispatched=r.dispatched)
                for r in row.revisions
            ],
            history=[
                StatusChange(
                    seq=change.id,
                    ticket_id=row.ticket_id,
                    conversation_key=row.conversation_key,
                    channel=row.channel,
                    status=change.status,
                    note=change.note,
                    at=change.at,
                    kind=change.kind,
                )
                for change in (row.history if history else ())
            ],
        )

    # -- the TicketClient protocol ----------------------------------------------------------

    async def file(self, draft: TicketDraft, idempotency_key: str) -> TicketRef:
        """File ``draft`` once per ``idempotency_key``; a repeat returns the first ticket."""
        if not idempotency_key:
            raise ValueError("idempotency_key must not be empty")
        async with self._edge("filing a ticket"):
            try:
                return await self._file(draft, idempotency_key)
            except IntegrityError:
                # Belt and braces: writes are serialised, but if another filer with the same key
                # still won, the unique index refused us and its ticket is the answer.
                existing = await self._ref_by_key(idempotency_key)
                if existing is None:
                    raise
                return existing

    async def _file(self, draft: TicketDraft, idempotency_key: str) -> TicketRef:
        now = self._now()
        async with self._writing() as session:
            found = (
                await session.execute(
                    select(TicketRow.ticket_id, TicketRow.status).where(
                        TicketRow.idempotency_key == idempotency_key
                    )
                )
            ).first()
            if found is not None:
                return TicketRef(ticket_id=found[0], status=found[1], created=False)
            day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
            number = await self._next_number(session, day)
            row = TicketRow(
                ticket_id=f"{self.prefix}-{day}-{number:06d}",
                idempotency_key=idempotency_key,
                channel=draft.channel,
                conversation_key=draft.conversation_key,
                contact=draft.contact,
                title=draft.title,
                description=draft.description,
                category=list(draft.category),
                request_type=draft.request_type,
                urgent=draft.urgent,
                location=draft.location.model_dump(),
                place=draft.location.place(),
                departments=list(draft.departments),
                attachments=list(draft.attachments),
                status="received",
                rating=None,
                rating_comment="",
                created_at=now,
                updated_at=now,
                history=[StatusHistoryRow(status="received", note="", at=now)],
            )
            session.add(row)
            await session.flush()
            return TicketRef(ticket_id=row.ticket_id, status=row.status, created=True)

    async def get(self, ticket_id: str) -> Ticket:
        async with self._edge("reading a ticket"), self._read_sessions() as session:
            return self._to_ticket(await self._row(session, ticket_id))

    async def list_for(self, conversation_key: str, limit: int = 10) -> list[Ticket]:
        """The conversation's own tickets, newest first (citizens see only theirs)."""
        async with self._edge("listing tickets"), self._read_sessions() as session:
            rows = await session.scalars(
                select(TicketRow)
                .where(TicketRow.conversation_key == conversation_key)
                .order_by(TicketRow.id.desc())
                .limit(max(limit, 0))
            )
            return [self._to_ticket(row) for row in rows]

    async def search(self, query: TicketQuery) -> list[Ticket]:
        """Tickets matching ``query``, newest first (the console's 工单查询).

        One word that is a whole ticket number (with or without its prefix), platform number or
        contact phone finds its tickets through an index, at once. Otherwise each word is matched as a substring (wildcards
        escaped; ``ILIKE`` for words with letters, the cheaper ``LIKE`` for Chinese and digits), so
        a number's tail ("000123"), part of a phone number or an e-mail sender finds the ticket:
        newest first by primary key, so a common word stops at the first page, while a word found
        nowhere reads every ticket in ``since`` (bench/ticket_search.py).
        """
        async with self._edge("searching tickets"), self._read_sessions() as session:
            return await self._page(session, await self._matching(session, query), query)

    async def scan(self, query: TicketQuery, size: int = 500) -> AsyncGenerator[list[Ticket], None]:
        """Every ticket ``search`` finds for ``query`` (its ``limit`` and ``offset`` aside), newest
        first, ``size`` at a time: the CSV export. Each page starts below the last one's primary
        key (keyset paging), so the hundredth page costs what the first did, and a ticket filed
        meanwhile is neither exported twice nor shifts a page. One short read per page: no
        transaction is held open while the caller writes a page out. The tickets come without
        their ``history`` (an export has no column for it; reading it took a third of the time).

        Read as plain rows, not ORM objects: a page is three queries (the tickets with their
        platform numbers, then their follow-ups and revisions by ticket), and the tickets are
        built without validating again what the ledger wrote (twice the rows a second)."""
        conditions: list[Any] | None = None
        below: int | None = None
        while True:
            async with self._edge("exporting tickets"), self._read_sessions() as session:
                if conditions is None:
                    conditions = await self._matching(session, query)
                rows = (await session.execute(
                    select(*_SCANNED, PlatformLinkRow.request_id)
                    .outerjoin(PlatformLinkRow, PlatformLinkRow.ticket_pk == TicketRow.id)
                    .where(*conditions, *(() if below is None else (TicketRow.id < below,)))
                    .order_by(TicketRow.id.desc())
                    .limit(size)
                )).all()
                page = await self._built(session, rows)
            if page:
                yield page
            if len(rows) < size:
                return
            below = rows[-1].id

    @staticmethod
    async def _built(session: AsyncSession, rows: Sequence[Any]) -> list[Ticket]:
        """``scan``'s tickets from its rows, with their follow-ups and revisions (two queries).
        Validated from plain dicts: pydantic's core does that faster than building each model."""
        pks = [row.id for row in rows]
        followups: dict[int, list[dict[str, Any]]] = {pk: [] for pk in pks}
        revisions: dict[int, list[dict[str, Any]]] = {pk: [] for pk in pks}
        if pks:
            for pk, kind, at, note, unit in await session.execute(
                select(FollowUpRow.ticket_pk, FollowUpRow.kind, FollowUpRow.at, FollowUpRow.note, FollowUpRow.unit)
                .where(FollowUpRow.ticket_pk.in_(pks)).order_by(FollowUpRow.id)
            ):
                followups[pk].append({"kind": kind, "at": at, "note": note, "unit": unit or ""})
            for pk, at, by, reason, before, after, dispatched in await session.execute(
                select(RevisionRow.ticket_pk, RevisionRow.at, RevisionRow.by, RevisionRow.reason, RevisionRow.before,
                       RevisionRow.after, RevisionRow.dispatched)
                .where(RevisionRow.ticket_pk.in_(pks)).order_by(RevisionRow.id)
            ):
                revisions[pk].append({"at": at, "by": by, "reason": reason, "before": before, "after": after,
                                      "dispatched": dispatched})
        return [
            Ticket.model_validate({
                **dict(zip(_SCANNED_NAMES, row, strict=False)), "platform_request_id": row.request_id,
                "followups": followups[row.id],
                "revisions": revisions[row.id],
            })
            for row in rows
        ]

    async def _matching(self, session: AsyncSession, query: TicketQuery) -> list[Any]:
        """The conditions of ``query``: a whole number or phone's exact matches when it has any,
        else every word as a substring (so paging on through a part of a phone number reads on
        through its substring matches)."""
        filters = self._narrowing(query)
        words = query.words()
        if len(words) == 1 and not _CJK.search(words[0]):
            word = words[0]
            number = f"{self.prefix}-{word}" if _DAY_AND_SEQUENCE.fullmatch(word) else word
            exact = union(  # each through its own index
                select(TicketRow.id).where(TicketRow.ticket_id == number),
                select(TicketRow.id).where(TicketRow.contact == word),
                select(PlatformLinkRow.ticket_pk).where(PlatformLinkRow.request_id == word),
            )
            conditions = [TicketRow.id.in_(exact), *filters]
            if await session.scalar(select(TicketRow.id).where(*conditions).limit(1)) is not None:
                return conditions
        return [*(or_(*(_contains(column, word) for column in _SEARCHED)) for word in words), *filters]

    @staticmethod
    def _narrowing(query: TicketQuery) -> list[Any]:
        conditions: list[Any] = []
        if query.status == "withdrawn":  # 已撤单: closed at the citizen's request
            conditions.append(TicketRow.withdrawn_at.is_not(None))
        elif query.status == "open":  # 未办结: named, so the status index is read
            conditions.append(TicketRow.status.in_(OPEN))
        elif query.status == "to_accept":  # 待签收
            conditions.append(TicketRow.status.in_(TO_ACCEPT))
        elif query.status:
            conditions.append(TicketRow.status == query.status)
        if query.channel.endswith(":"):
            conditions.append(TicketRow.channel.startswith(query.channel, autoescape=True))
        elif query.channel:
            conditions.append(TicketRow.channel == query.channel)
        if query.urgent is not None:
            conditions.append(TicketRow.urgent == query.urgent)
        if query.rating == "none":
            conditions.append(TicketRow.rating.is_(None))
        elif query.rating:
            conditions.append(TicketRow.rating == query.rating)
        for level, name in enumerate(query.category):  # this category or one below it
            conditions.append(TicketRow.category[level].as_string() == name)
        if query.solved == "none":
            conditions.append(TicketRow.solved.is_(None))
        elif query.solved == "redo":  # "= false", not "IS false": PostgreSQL reads the index only so
            conditions += [TicketRow.solved == false(), TicketRow.status.in_(DONE), _main(TicketRow)]
        elif query.solved in SOLVED_ANSWERS:
            conditions.append(TicketRow.solved == (true() if SOLVED_ANSWERS[query.solved] else false()))
        if query.since is not None:
            conditions.append(TicketRow.created_at >= query.since)
        if query.until is not None:
            conditions.append(TicketRow.created_at < query.until)
        if query.urged:  # its own citizen pressed for it, or one of a repeat merged into it (heard on the main)
            urged = select(FollowUpRow.id).where(FollowUpRow.ticket_pk == TicketRow.id, FollowUpRow.kind == "urge").exists()
            repeat = aliased(TicketRow)
            through = (select(FollowUpRow.id).join(repeat, FollowUpRow.ticket_pk == repeat.id)
                       .where(repeat.merged_into == TicketRow.ticket_id, FollowUpRow.kind == "urge").exists())
            conditions += [or_(urged, through), TicketRow.status.in_(OPEN)]
        if query.reviewed:
            conditions.append(select(RevisionRow.id).where(RevisionRow.ticket_pk == TicketRow.id).exists())
        if query.merged_into:
            conditions.append(TicketRow.merged_into == query.merged_into)
        if query.done_late:  # 超期办结: each matter once, by its main
            conditions += [TicketRow.done_late.is_(True), _main(TicketRow)]
        if query.unanswered:
            conditions.append(_unanswered(query))
        if query.extended:
            conditions.append(TicketRow.extended_until.is_not(None))
        if query.extension_pending:  # the few waiting, from their unique index (a ticket done, merged or withdrawn has none)
            conditions.append(TicketRow.id.in_(select(ExtensionRequestRow.ticket_pk).where(
                ExtensionRequestRow.outcome == literal_column("'pending'"))))
        if query.place:
            conditions.append(TicketRow.place == query.place)
        if query.repeated_since is not None:  # the spots of the period's open tickets shared by two or more
            # grouped by an expression, not the column: SQLite would walk the place's index (the whole
            # ledger) to group in order, where the period's index reads a month
            place, kind = func.coalesce(TicketRow.place, "").label("spot"), _kind()
            shared = (select(place, kind).where(*_open_since(query.repeated_since))
                      .group_by(place, kind).having(func.count(TicketRow.id) > 1))
            conditions += [*_open_since(query.repeated_since), tuple_(TicketRow.place, _kind()).in_(shared)]
        if query.main_only:
            conditions.append(_main(TicketRow))
        if query.returned:
            conditions.append(_returned_by(query.department.strip()))
        elif query.department.strip():
            # the unit as the JSON list holds it, quotes included: "城管局" is not "区城管局"
            conditions.append(cast(TicketRow.departments, Text).contains(json.dumps(query.department.strip()),
                                                                          autoescape=True))
        if query.overdue or query.due_soon:
            late: list[Any] = []
            started: Any = TicketRow.created_at
            if query.from_redispatch:  # the last 改派, where there was one (few are: a subquery)
                last = (select(func.max(RevisionRow.at))
                        .where(RevisionRow.ticket_pk == TicketRow.id, RevisionRow.dispatched.is_(True))
                        .scalar_subquery())
                started = func.coalesce(last, TicketRow.created_at)
            extended = TicketRow.extended_until
            for limit in query.time_limits:  # a kind no limit names has none: never late
                kind = [extended.is_(None), TicketRow.urgent == limit.urgent]
                if not limit.others:
                    kind.append(TicketRow.request_type.in_(limit.request_types))
                elif limit.request_types:  # the column is NOT NULL: NOT IN keeps the empty type
                    kind.append(TicketRow.request_type.not_in(limit.request_types))
                if query.overdue:
                    late.append(and_(*kind, started < limit.due_before))
                if query.due_soon and limit.soon_before is not None:
                    late.append(and_(*kind, started >= limit.due_before, started < limit.soon_before))
            if query.extended_due_before is not None:  # 延期: by the 办理时限 granted
                if query.overdue:
                    late.append(extended < query.extended_due_before)
                if query.due_soon and query.extended_soon_before is not None:
                    late.append(and_(extended >= query.extended_due_before, extended < query.extended_soon_before))
            # a ticket merged into another is late, or not, with its main: counted once, there
            conditions += [TicketRow.status.in_(OPEN), _main(TicketRow),
                           or_(*late) if late else false()]
        return conditions

    async def count(self, query: TicketQuery) -> int:
        """How many tickets match ``query``'s narrowing (its words are not counted: the 超期 card)."""
        async with self._edge("counting tickets"), self._read_sessions() as session:
            found = await session.scalar(select(func.count(TicketRow.id)).where(*self._narrowing(query)))
            return int(found or 0)

    async def category_trends(self, since: datetime, until: datetime, limit: int = 15,
                              before: datetime | None = None) -> list[CategoryTrend]:
        """See ``TicketClient.category_trends``: one grouped pass over both periods (the filing
        time's index), this one's count and the one before's side by side."""
        start = before if before is not None else since - (until - since)
        first, second = (func.coalesce(TicketRow.category[i].as_string(), "") for i in (0, 1))
        now = func.sum(case((TicketRow.created_at >= since, 1), else_=0))
        async with self._edge("counting tickets by category"), self._read_sessions() as session:
            rows = await session.execute(
                select(first, second, now, func.sum(case((TicketRow.created_at < since, 1), else_=0)))
                .where(TicketRow.created_at >= start, TicketRow.created_at < until, first != "")
                .group_by(first, second).having(now > 0).order_by(now.desc(), first, second).limit(limit)
            )
            return [CategoryTrend(category=[a, b] if b else [a], filed=n, before=m) for a, b, n, m in rows]

    async def hotspots(self, since: datetime, limit: int = 15, until: datetime | None = None) -> list[Hotspot]:
        """See ``TicketClient.hotspots``: the period's tickets with a spot, grouped by it (by an
        expression, as ``repeated_since``: SQLite would otherwise walk the whole place index)."""
        place, kind = func.coalesce(TicketRow.place, "").label("spot"), _kind()
        filed = func.count(TicketRow.id)
        latest = func.max(TicketRow.created_at)
        still = func.sum(case((and_(TicketRow.status.not_in(DONE), _main(TicketRow)), 1), else_=0))
        async with self._edge("counting tickets by place"), self._read_sessions() as session:
            rows = await session.execute(
                select(place, kind, filed, still, latest)
                .where(TicketRow.created_at >= since, *(() if until is None else (TicketRow.created_at < until,)),
                       TicketRow.place != "")
                .group_by(place, kind).having(filed > 1).order_by(filed.desc(), latest.desc()).limit(limit)
            )
            return [Hotspot(place=p, kind=k, filed=n, open=o, latest=at) for p, k, n, o, at in rows]

    async def department_tallies(self, query: TicketQuery, limit: int = 100) -> list[DepartmentTally]:
        """See ``TicketClient.department_tallies``: one pass over the tickets ``query`` narrows to,
        each unit of a ticket's list a row (SQLite's ``json_each``, PostgreSQL's
        ``json_array_elements_text``), counted by unit with what each ticket is now."""
        base = query.model_copy(update={"overdue": False, "due_soon": False, "urged": False, "unanswered": False,
                                        "repeated_since": None, "main_only": True})
        where = self._narrowing(base)
        alone = query.department.strip()  # one unit's figures: read its tickets only
        late = and_(*self._narrowing(TicketQuery(overdue=True, time_limits=query.time_limits,
                                                 from_redispatch=query.from_redispatch,
                                                 extended_due_before=query.extended_due_before)))
        urged = and_(*self._narrowing(TicketQuery(urged=True)))
        units = (func.json_array_elements_text(TicketRow.departments) if self._dialect == "postgresql"
                 else func.json_each(TicketRow.departments)).table_valued("value").alias("unit")
        unit = units.c.value

        def tally(condition: Any) -> Any:
            return func.sum(case((condition, 1), else_=0))

        withdrawn = TicketRow.withdrawn_at.is_not(None)
        columns = [func.count(TicketRow.id), tally(unit == TicketRow.departments[0].as_string()),
                   tally(and_(TicketRow.status.in_(DONE), ~withdrawn)), tally(late),
                   tally(TicketRow.status == "returned"), tally(urged), tally(withdrawn),
                   tally(TicketRow.done_late.is_(True)), tally(TicketRow.responded_at.is_not(None)),
                   tally(TicketRow.responded_late.is_(True)), tally(_unanswered(query)),
                   tally(TicketRow.solved.is_(True)), tally(TicketRow.solved.is_(False)),
                   tally(TicketRow.extended_until.is_not(None)),
                   *(tally(TicketRow.rating == r) for r in RATINGS)]
        async with self._edge("counting tickets by department"), self._read_sessions() as session:
            rows = await session.execute(
                select(unit, *columns).select_from(TicketRow).join(units, true())
                .where(*where, unit == alone if alone else unit != "").group_by(unit)
                .order_by(func.count(TicketRow.id).desc(), unit).limit(limit)
            )
            tallies = [DepartmentTally(department=name, filed=filed, primary=primary, done=done, overdue=overdue,
                                       returned=returned, urged=pressed, withdrawn=gone, done_late=slow,
                                       responded=took, responded_late=took_late, unanswered=waiting,
                                       solved=yes, unsolved=no, extended=longer,
                                       ratings={r: int(n) for r, n in zip(RATINGS, rated, strict=True) if n})
                       for name, filed, primary, done, overdue, returned, pressed, gone, slow, took, took_late, waiting,
                       yes, no, longer, *rated in rows]
            # its 退回 as the whole report counts them: of the tickets 改派'd away from it too
            returns = await _returns_by_unit(
                session, self._narrowing(base.model_copy(update={"department": ""})) if alone else where, query.since)
        if alone:  # not the other units of its tickets: part of their figures only
            returns = Counter({alone: returns[alone]}) if alone in returns else Counter()
        by_unit = {t.department: t for t in tallies}
        for name, n in returns.items():
            if name in by_unit:
                by_unit[name].returns = n
            elif len(tallies) < limit:  # 改派'd away from it: it names none of them now
                tallies.append(DepartmentTally(department=name, returns=n))
        return tallies

    async def open_at(self, spots: Sequence[Spot], since: datetime) -> dict[Spot, int]:
        """See ``TicketClient.open_at``: one grouped count through the place's index."""
        wanted = {spot for spot in spots if spot[0]}
        if not wanted:
            return {}
        kind = _kind()
        async with self._edge("counting tickets by place"), self._read_sessions() as session:
            rows = await session.execute(
                select(TicketRow.place, kind, func.count(TicketRow.id))
                .where(TicketRow.place.in_(sorted({place for place, _ in wanted})), *_open_since(since))
                .group_by(TicketRow.place, kind)
            )
            return {(place, k): int(n) for place, k, n in rows if (place, k) in wanted}

    async def _page(self, session: AsyncSession, conditions: list[Any], query: TicketQuery) -> list[Ticket]:
        rows = await session.scalars(
            select(TicketRow)
            .outerjoin(PlatformLinkRow, PlatformLinkRow.ticket_pk == TicketRow.id)
            .where(*conditions)
            .order_by(TicketRow.id.desc())
            .offset(query.offset)
            .limit(query.limit)
        )
        return [self._to_ticket(row) for row in rows]

    async def last_change(self) -> int:
        """See ``TicketClient.last_change``: the history's highest id."""
        async with self._edge("reading status changes"), self._read_sessions() as session:
            return int(await session.scalar(select(func.max(StatusHistoryRow.id))) or 0)

    async def followups_since(self, cursor: int, kinds: Sequence[FollowUpKind] = ("urge",),
                              limit: int = 100) -> list[FollowUpEvent]:
        """See ``TicketClient.followups_since``: the follow-ups of ``kinds`` by id."""
        async with self._edge("reading follow-ups"), self._read_sessions() as session:
            rows = await session.execute(
                select(FollowUpRow.id, TicketRow.ticket_id, FollowUpRow.kind, FollowUpRow.at, FollowUpRow.note,
                       FollowUpRow.unit)
                .join(TicketRow, FollowUpRow.ticket_pk == TicketRow.id)
                .where(FollowUpRow.id > cursor, FollowUpRow.kind.in_(list(kinds)))
                .order_by(FollowUpRow.id).limit(max(limit, 0)))
            return [FollowUpEvent(seq=seq, ticket_id=tid, kind=kind, at=at, note=note, unit=unit or "")
                    for seq, tid, kind, at, note, unit in rows]

    async def last_followup(self) -> int:
        """See ``TicketClient.last_followup``: the highest id of the follow-ups."""
        async with self._edge("reading follow-ups"), self._read_sessions() as session:
            return int(await session.scalar(select(func.max(FollowUpRow.id))) or 0)

    async def last_change_before(self, at: datetime) -> int:
        """See ``TicketClient.last_change_before``: the highest id of the history rows before ``at``."""
        async with self._edge("reading status changes"), self._read_sessions() as session:
            return int(await session.scalar(select(func.max(StatusHistoryRow.id)).where(StatusHistoryRow.at < at)) or 0)

    async def cursor(self, reader: str) -> int | None:
        """See ``TicketClient.cursor``: kept among the platform state as ``cursor:<reader>``."""
        kept = await self.platform_state(f"cursor:{reader}")
        return int(kept) if kept else None

    async def keep_cursor(self, reader: str, seq: int) -> None:
        await self.set_platform_state(f"cursor:{reader}", str(seq))

    async def changes_since(self, cursor: int, limit: int = 100) -> list[StatusChange]:
        """History rows with ``seq > cursor`` in ``seq`` order, including each ``received`` and
        each progress note (``kind="note"``)."""
        async with self._edge("reading status changes"), self._read_sessions() as session:
            result = await session.execute(
                select(
                    StatusHistoryRow.id,
                    TicketRow.ticket_id,
                    TicketRow.conversation_key,
                    TicketRow.channel,
                    StatusHistoryRow.status,
                    StatusHistoryRow.note,
                    StatusHistoryRow.at,
                    StatusHistoryRow.kind,
                )
                .join(TicketRow, StatusHistoryRow.ticket_pk == TicketRow.id)
                .where(StatusHistoryRow.id > cursor)
                .order_by(StatusHistoryRow.id)
                .limit(max(limit, 0))
            )
            return [
                StatusChange(
                    seq=seq,
                    ticket_id=tid,
                    conversation_key=conv,
                    channel=chan,
                    status=st,
                    note=note,
                    at=at,
                    kind=kind,
                )
                for seq, tid, conv, chan, st, note, at, kind in result
            ]

    async def set_status(self, ticket_id: str, status: str, note: str = "") -> Ticket:
        """Move a ticket along ``TRANSITIONS`` and record it; a refusal writes nothing."""
        if status not in STATUSES:
            raise UnknownStatus(f"unknown status {status!r}; known statuses: {', '.join(STATUSES)}")
        async with self._edge("changing a ticket's status"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                _not_merged(row)
                allowed = TRANSITIONS.get(row.status, frozenset())
                if status not in allowed:
                    raise InvalidTransition(
                        f"ticket {ticket_id} cannot go from {row.status!r} to {status!r}; "
                        f"allowed from {row.status!r}: {', '.join(sorted(allowed)) or 'none'}"
                    )
                before, row.status, row.updated_at = row.status, status, now
                if status == "reopened":
                    row.withdrawn_at = None  # withdrawn, then the problem came back: handled again
                _settle(row, before, now, self._limits)
                row.history.append(StatusHistoryRow(status=status, note=note, at=now))
                for follower in await self._followers(session, row):
                    _follow(follower, status, note, now, self._limits)
                await session.flush()
                return self._to_ticket(row)

    async def withdraw(self, ticket_id: str, reason: str) -> Ticket:
        """撤单 (see ``TicketClient.withdraw``): closed from any open status, outside ``TRANSITIONS``
        (the citizen, not the department, ends it)."""
        said = _reason(reason, "撤单")
        async with self._edge("withdrawing a ticket"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                if row.status in DONE:
                    raise WithdrawRefused(f"工单 {ticket_id} 已办结或已归档，不能撤单")
                if followers := await self._followers(session, row):
                    raise WithdrawRefused(
                        f"已有 {len(followers)} 件工单并入工单 {ticket_id}，其他市民反映的问题仍需办理，不能撤单")
                row.merged_into = row.merged_at = None  # a repeat withdrawn: its main goes on for the others
                row.status, row.withdrawn_at, row.updated_at = "closed", now, now
                row.history.append(StatusHistoryRow(status="closed", note=said, at=now, kind="withdraw"))
                _lapse(row, now)
                await session.flush()
                return self._to_ticket(row)

    async def extend(self, ticket_id: str, until: datetime, reason: str) -> Ticket:
        """延期 (see ``TicketClient.extend``); a 延期申请 waiting on the ticket is granted by it."""
        cleaned = _reason(reason, "延期")
        async with self._edge("extending a ticket"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                await self._grant(session, row, until, cleaned, now)
                await session.flush()
                return self._to_ticket(row)

    async def ask_extension(self, ticket_id: str, until: datetime, reason: str, unit: str) -> Ticket:
        """延期申请 (see ``TicketClient.ask_extension``)."""
        cleaned = _reason(reason, "延期申请")
        named = " ".join(unit.split())[:MAX_UNIT]
        if not named:
            raise InvalidNote("申请延期的承办单位不能为空")
        async with self._edge("asking for an extension"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                if named not in row.departments:  # a unit handling it asks, 主办 or 协办
                    raise ExtensionRequestRefused(
                        f"{named}不是工单 {ticket_id} 的承办单位（{'、'.join(row.departments) or '尚未派单'}）")
                if waiting := _pending(row):
                    raise ExtensionRequestRefused(
                        f"工单 {ticket_id} 已有待审核的延期申请（{waiting.unit}，申请延至{said_due(waiting.until)}）")
                self._check_extension(row, until, now)
                row.extension_requests.append(ExtensionRequestRow(
                    at=now, unit=named, until=until, reason=cleaned, outcome="pending", decided_by="", answer=""))
                row.updated_at = now
                await session.flush()
                return self._to_ticket(row)

    async def decide_extension(self, ticket_id: str, *, approve: bool, by: str, reason: str = "",
                               until: datetime | None = None) -> Ticket:
        """审核延期申请 (see ``TicketClient.decide_extension``)."""
        async with self._edge("deciding an extension"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                waiting = _pending(row)
                if waiting is None:
                    raise ExtensionRequestRefused(f"工单 {ticket_id} 没有待审核的延期申请")
                if approve:
                    await self._grant(session, row, until or waiting.until, _reason(reason or waiting.reason, "延期"), now)
                else:
                    said = " ".join(reason.split())[:MAX_REASON]
                    if not said:
                        raise InvalidNote("驳回理由不能为空")
                    waiting.outcome, waiting.decided_at, waiting.answer = "rejected", now, said
                    row.followups.append(FollowUpRow(kind="decision", at=now, note=REJECTED_NOTE.format(reason=said),
                                                     unit=waiting.unit))
                waiting.decided_by = by[:64]
                row.updated_at = now
                await session.flush()
                return self._to_ticket(row)

    def _check_extension(self, row: TicketRow, until: datetime, now: datetime) -> None:
        """What a 延期 of ``row`` to ``until`` cannot be (ExtendRefused): against the 办理时限
        ``limits.due`` gives it now (a second 延期 must go past the first)."""
        if until.tzinfo is None:
            raise ValueError("a 延期 must be timezone-aware")
        if row.status in DONE:
            raise ExtendRefused(f"工单 {row.ticket_id} 已办结或已归档，不能延期")
        if row.merged_into:
            raise ExtendRefused(f"工单 {row.ticket_id} 已并入工单 {row.merged_into}，随主单办理，请为主单延期")
        due = self._limits.due(self._to_ticket(row, history=False)) if self._limits.due is not None else None
        if due is None:
            raise ExtendRefused(f"工单 {row.ticket_id} 没有办理时限，无需延期")
        if until <= due:
            raise ExtendRefused(f"新的办理时限须晚于现在的办理时限（{said_due(due)}）")
        if until <= now or until > now + EXTEND_AHEAD:
            raise ExtendRefused("新的办理时限须在今后一年之内")

    async def _grant(self, session: AsyncSession, row: TicketRow, until: datetime, reason: str, now: datetime) -> None:
        """延期 ``row`` to ``until``: its own history and each follower's get the note, which the
        status poller tells their citizens; a 延期申请 waiting on it is granted (a decision kept for
        the unit that asked)."""
        self._check_extension(row, until, now)
        note = EXTENDED_NOTE.format(until=said_due(until), reason=reason)
        row.extended_until, row.extended_at, row.updated_at = until, now, now
        row.history.append(StatusHistoryRow(status=row.status, note=note, at=now, kind="extend"))
        for follower in await self._followers(session, row):  # their citizens wait on it too
            follower.history.append(StatusHistoryRow(status=follower.status, note=note, at=now, kind="extend"))
            follower.updated_at = now
        if waiting := _pending(row):
            waiting.outcome, waiting.decided_at, waiting.answer, waiting.granted_until = "approved", now, reason, until
            # the unit that asked hears of it (the units' mailer follows these decisions)
            row.followups.append(FollowUpRow(kind="decision", at=now, note=APPROVED_NOTE.format(until=said_due(until)),
                                             unit=waiting.unit))

    async def rate(self, ticket_id: str, rating: str, comment: str = "") -> Ticket:
        """Record the citizen's satisfaction; a later rating replaces an earlier one."""
        if rating not in RATINGS:
            raise InvalidRating(f"unknown rating {rating!r}; allowed: {', '.join(RATINGS)}")
        async with self._edge("rating a ticket"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                row.rating = rating
                row.rating_comment = comment
                row.updated_at = now
                await session.flush()
                return self._to_ticket(row)

    async def mark_solved(self, ticket_id: str, solved: bool) -> Ticket:
        """Record whether the citizen says the problem was solved (see ``TicketClient.mark_solved``)."""
        async with self._edge("recording whether a ticket was solved"):
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                row.solved = solved
                row.updated_at = self._now()
                await session.flush()
                return self._to_ticket(row)

    async def add_note(self, ticket_id: str, note: str) -> Ticket:
        """Record a progress note (办理进展, e.g. a department's 阶段性答复) with the ticket's
        current status, which it does not change; the status poller tells the citizen.

        A closed ticket is archived and takes none (NoteRefused: reopen it first); a resolved one
        does, as a word after the 答复 (a re-inspection), which never repeats the survey.
        """
        cleaned = checked_note(note)
        async with self._edge("adding a progress note"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                _not_merged(row)
                if row.status == "closed":
                    raise NoteRefused(f"工单 {ticket_id} 已归档，不能再添加办理进展（如需继续办理，请先重新办理）")
                row.updated_at = now
                row.history.append(StatusHistoryRow(status=row.status, note=cleaned, at=now, kind="note"))
                for follower in await self._followers(session, row):
                    _follow(follower, "", cleaned, now, self._limits)
                await session.flush()
                return self._to_ticket(row)

    async def urge(self, ticket_id: str, note: str, key: str = "") -> Urged:
        """Record a 催办 (see ``TicketClient.urge``): a row of its own, not of the history, so the
        status poller never tells the citizen of it and the ticket's last step stays its last."""
        async with self._edge("recording an urge"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                if (same := _keyed(row, key)) is not None:  # this message's, recorded already
                    return Urged(ticket=self._to_ticket(row), recorded=True, at=same.at)
                if row.status in ("resolved", "closed"):
                    raise NoteRefused(f"工单 {ticket_id} 已办结，无需催办")
                last = max((f.at for f in row.followups if f.kind == "urge"), default=None)
                if last is not None and now - last < self._urge_quiet:
                    return Urged(ticket=self._to_ticket(row), recorded=False, at=last)
                row.followups.append(FollowUpRow(kind="urge", at=now, note=note.strip()[:MAX_URGE_NOTE], key=key or None))
                await session.flush()
                return Urged(ticket=self._to_ticket(row), recorded=True, at=now)

    async def add_info(self, ticket_id: str, note: str, attachments: Sequence[str] = (), key: str = "") -> Ticket:
        """Record a 补充 (see ``TicketClient.add_info``), beside the history like an urge."""
        cleaned = note.strip()
        if not cleaned:
            raise InvalidNote("补充内容不能为空")
        if len(cleaned) > MAX_INFO_NOTE:
            raise InvalidNote(f"补充内容过长（最多{MAX_INFO_NOTE}字，现有{len(cleaned)}字）")
        async with self._edge("recording a 补充"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                if _keyed(row, key) is not None:  # this message's, added already
                    return self._to_ticket(row)
                if row.status in ("resolved", "closed"):
                    raise NoteRefused(f"工单 {ticket_id} 已办结，不能再补充")
                row.followups.append(FollowUpRow(kind="info", at=now, note=cleaned, key=key or None))
                if attachments:  # a new list: the JSON column notices assignment, not appending
                    row.attachments = list(dict.fromkeys([*row.attachments, *attachments]))
                await session.flush()
                return self._to_ticket(row)

    async def assist(self, ticket_id: str, unit: str, note: str) -> Ticket:
        """Record a 协办意见 (see ``TicketClient.assist``), beside the history like a 补充: the
        citizen's status poller never reads it."""
        cleaned, unit = checked_note(note, "协办意见"), unit.strip()
        if not unit:
            raise InvalidNote("填写协办意见的协办单位不能为空")
        async with self._edge("recording a 协办意见"):
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                if unit not in row.departments[1:]:
                    raise AssistRefused(f"{unit}不是工单 {ticket_id} 的协办单位")
                if row.merged_into:
                    raise AssistRefused(f"工单 {ticket_id} 已并入工单 {row.merged_into}，请在主单上填写")
                if row.status in ("resolved", "closed"):
                    raise AssistRefused(f"工单 {ticket_id} 已办结")
                row.followups.append(FollowUpRow(kind="assist", at=self._now(), note=cleaned, unit=unit))
                await session.flush()
                return self._to_ticket(row)

    async def correct(self, ticket_id: str, correction: Correction) -> Ticket:
        """Record an operator's 更正, 改派 or confirmation (see ``TicketClient.correct``)."""
        async with self._edge("correcting a ticket"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                before, after = _changes(row, correction)
                if "departments" in after and row.merged_into:
                    raise CorrectionRefused(f"工单 {ticket_id} 已并入工单 {row.merged_into}，承办部门随主单（请在主单上改派）")
                dispatch = row.status == "returned" and correction.departments is not None and not row.merged_into
                if "departments" in after and row.status in ("resolved", "closed"):
                    raise CorrectionRefused(f"工单 {ticket_id} 已办结，不能改派（可更正分类）")
                if dispatch and not after.get("departments", row.departments):
                    raise CorrectionRefused(f"工单 {ticket_id} 改派须指定承办部门")
                if not after and not dispatch:
                    last = row.revisions[-1] if row.revisions else None
                    if last is not None and not last.after and last.by == correction.by:
                        return self._to_ticket(row)  # a second press of 审核无误
                for name, value in after.items():
                    if name == "location":  # written anew: the parts and map point read from the old one go with it
                        place = LocationInfo(text=value, parts=correction.location_parts if value else {})
                        row.location, row.place = place.model_dump(), place.place()
                    else:
                        setattr(row, name, value)
                if dispatch:
                    primary = row.departments[0] if row.departments else ""
                    note = f"已改派至{primary}" if primary else ""
                    row.status = "accepted"
                    _settle(row, "returned", now, self._limits)  # taken on now, if it never was
                    row.history.append(StatusHistoryRow(status="accepted", at=now, note=note))
                    for follower in await self._followers(session, row):
                        _follow(follower, "accepted", note, now, self._limits)
                row.updated_at = now
                row.revisions.append(RevisionRow(at=now, by=correction.by, reason=correction.reason.strip(),
                                                 before=before, after=after, dispatched=dispatch))
                await session.flush()
                return self._to_ticket(row)

    async def merge(self, ticket_id: str, into: str) -> Ticket:
        """并单 (see ``TicketClient.merge``): both rows locked, in the order of their keys."""
        async with self._edge("merging tickets"):
            if ticket_id == into:
                raise MergeRefused(f"工单 {ticket_id} 不能并入自身")
            now = self._now()
            async with self._writing() as session:
                rows = {r.ticket_id: r for r in await session.scalars(
                    select(TicketRow).where(TicketRow.ticket_id.in_((ticket_id, into))).order_by(TicketRow.id)
                    .with_for_update())}
                if ticket_id not in rows or into not in rows:
                    raise TicketNotFound(f"no ticket {ticket_id if ticket_id not in rows else into!r}")
                row, main = rows[ticket_id], rows[into]
                if row.merged_into:
                    raise MergeRefused(f"工单 {ticket_id} 已并入工单 {row.merged_into}")
                if await self._followers(session, row):
                    raise MergeRefused(f"已有工单并入工单 {ticket_id}，它只能作为主单")
                if main.merged_into:
                    raise MergeRefused(f"工单 {into} 已并入工单 {main.merged_into}，请并入工单 {main.merged_into}")
                if row.status in ("resolved", "closed"):
                    raise MergeRefused(f"工单 {ticket_id} 已办结，不能再并入其他工单")
                if main.status in ("resolved", "closed"):
                    raise MergeRefused(f"工单 {into} 已办结，不能作为主单（问题仍在的，请先将其重新办理）")
                steps = walk(row.status, main.status)
                if steps is None:
                    raise MergeRefused(f"工单 {ticket_id} 的办理进度已在主单 {into} 之前，不能并入（可将工单 {into} 并入工单 {ticket_id}）")
                row.merged_into, row.merged_at = into, now
                _lapse(row, now)  # its 办理时限 is the main's now
                # brought to the main's status as a follower is (the word on the last step), or told in a note
                _follow(row, main.status if steps else "", MERGED_NOTE.format(main=into), now, self._limits)
                row.updated_at = now
                await session.flush()
                return self._to_ticket(row)

    async def unmerge(self, ticket_id: str) -> Ticket:
        """取消并单 (see ``TicketClient.unmerge``)."""
        async with self._edge("unmerging a ticket"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                if not row.merged_into:
                    raise MergeRefused(f"工单 {ticket_id} 未并入其他工单")
                row.merged_into = row.merged_at = None
                if row.status != "closed":
                    row.history.append(StatusHistoryRow(status=row.status, note=UNMERGED_NOTE, at=now, kind="note"))
                row.updated_at = now
                await session.flush()
                return self._to_ticket(row)

    @staticmethod
    async def _followers(session: AsyncSession, row: TicketRow) -> list[TicketRow]:
        """The tickets merged into ``row`` (并单), locked: each of its steps is theirs too."""
        return list(await session.scalars(
            select(TicketRow).where(TicketRow.merged_into == row.ticket_id).order_by(TicketRow.id).with_for_update()))

    async def abandon(self, idempotency_key: str) -> str | None:
        """Forget the ticket filed under ``idempotency_key`` when its filing was given up (a
        supervisor discarded it, or an operator filed the matter by hand) and nobody can have heard
        of it: still 已受理 with no other step, unrated, and never possibly sent to a platform (no
        request number, no token, no POST whose answer was lost). The citizen never got its number,
        and left alone it would sit at 已受理 for ever, in their 查询 and in the 受理 figures.
        Returns its number, or None when there is none or it is kept."""
        async with self._edge("abandoning a filing"):
            async with self._writing() as session:
                row = await session.scalar(
                    select(TicketRow).where(TicketRow.idempotency_key == idempotency_key).with_for_update()
                )
                if row is None:
                    return None
                link = row.link
                sent = link is not None and (link.request_id or link.token or link.posted_at)
                if row.status != "received" or len(row.history) > 1 or row.rating or row.followups or row.revisions or sent:
                    return None
                if await self._followers(session, row):  # a main: the tickets merged into it follow it
                    return None
                await session.execute(delete(PlatformLinkRow).where(PlatformLinkRow.ticket_pk == row.id))
                await session.execute(delete(StatusHistoryRow).where(StatusHistoryRow.ticket_pk == row.id))
                await session.execute(delete(TicketRow).where(TicketRow.id == row.id))
                return row.ticket_id

    # -- the mirror of a ticket platform (open311) -------------------------------------------

    @staticmethod
    def _link_of(ticket_id: str, status: str, link: PlatformLinkRow | None) -> PlatformLink:
        if link is None:
            return PlatformLink(ticket_id=ticket_id, status=status)
        return PlatformLink(
            ticket_id=ticket_id,
            status=status,
            request_id=link.request_id,
            token=link.token,
            posted_at=link.posted_at,
            sending_until=link.sending_until,
            platform_status=link.platform_status,
            platform_updated=link.platform_updated,
        )

    @staticmethod
    def _new_link(session: AsyncSession, row: TicketRow) -> PlatformLinkRow:
        link = PlatformLinkRow(ticket_pk=row.id, platform_status="", platform_updated="")
        session.add(link)
        return link

    async def claim_sending(self, ticket_id: str, lease: timedelta) -> tuple[PlatformLink, bool]:
        """Take the right to send ``ticket_id`` to the platform for ``lease``.

        Returns the link as it was and whether the right was given: not when the ticket is filed
        there already, nor while another filer's lease runs. Taking it marks ``posted_at`` (kept
        from an earlier attempt if there was one): until an answer is stored, the request may
        exist on the platform.
        """
        async with self._edge("claiming a ticket for the platform"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                link = await session.get(PlatformLinkRow, row.id)
                before = self._link_of(row.ticket_id, row.status, link)
                if before.filed or (before.sending_until is not None and before.sending_until > now):
                    return before, False
                link = link or self._new_link(session, row)
                link.posted_at = link.posted_at or now
                link.sending_until = now + lease
                return before, True

    async def end_sending(
        self, ticket_id: str, *, request_id: str | None = None, token: str | None = None, unsent: bool = False
    ) -> PlatformLink:
        """The POST is over: with ``request_id`` or ``token`` the ticket is linked for good
        (``posted_at`` cleared); without, only the lease is given back (``posted_at`` stays, but
        for ``unsent``: the platform refused the only POST there was, so nothing exists there)."""
        async with self._edge("linking a ticket to the platform"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                if request_id:
                    other = await session.scalar(
                        select(TicketRow.ticket_id)
                        .join(PlatformLinkRow, PlatformLinkRow.ticket_pk == TicketRow.id)
                        .where(PlatformLinkRow.request_id == request_id, TicketRow.id != row.id)
                    )
                    if other is not None:
                        raise TicketError(
                            f"platform request {request_id} is linked to ticket {other} already"
                        )
                link = await session.get(PlatformLinkRow, row.id) or self._new_link(session, row)
                link.sending_until = None
                if unsent:
                    link.posted_at = None
                if request_id or token:
                    link.request_id = request_id or link.request_id
                    link.token = token or link.token
                    link.posted_at = None
                    link.linked_at = link.linked_at or now
                await session.flush()
                return self._link_of(row.ticket_id, row.status, link)

    async def link(self, ticket_id: str) -> PlatformLink:
        async with self._edge("reading a platform link"), self._read_sessions() as session:
            row = await self._row(session, ticket_id)
            return self._link_of(row.ticket_id, row.status, await session.get(PlatformLinkRow, row.id))

    async def pending_tokens(self, limit: int = 100) -> list[PlatformLink]:
        """Tickets the platform answered with a token and no number yet, oldest first."""
        return await self._links(
            [PlatformLinkRow.token.is_not(None), PlatformLinkRow.request_id.is_(None)], limit
        )

    async def unseen_links(self, limit: int = 50) -> list[PlatformLink]:
        """Linked tickets no poll has seen on the platform yet, oldest first."""
        return await self._links(
            [PlatformLinkRow.request_id.is_not(None), PlatformLinkRow.platform_status == ""], limit
        )

    async def followed_links(self, resolved_since: datetime, limit: int = 10_000) -> list[PlatformLink]:
        """Linked tickets still worth asking the platform about: not closed, and resolved ones only
        while recent (a platform may reopen them)."""
        return await self._links(
            [
                PlatformLinkRow.request_id.is_not(None),
                TicketRow.status != "closed",
                or_(TicketRow.status != "resolved", TicketRow.updated_at >= resolved_since),
            ],
            limit,
        )

    async def links_by_request_id(self, request_ids: Iterable[str]) -> dict[str, PlatformLink]:
        """The mirrored tickets among the platform's ``request_ids`` (others' requests are not ours)."""
        wanted = sorted(set(request_ids))
        found: dict[str, PlatformLink] = {}
        for start in range(0, len(wanted), 500):
            for link in await self._links(
                [PlatformLinkRow.request_id.in_(wanted[start : start + 500])], None
            ):
                assert link.request_id is not None
                found[link.request_id] = link
        return found

    async def first_link_at(self) -> datetime | None:
        """When the first ticket still on the platform was linked (where a first poll starts)."""
        async with self._edge("reading platform links"), self._read_sessions() as session:
            found: datetime | None = await session.scalar(select(func.min(PlatformLinkRow.linked_at)))
            return found

    async def _links(self, conditions: list[Any], limit: int | None) -> list[PlatformLink]:
        async with self._edge("reading platform links"), self._read_sessions() as session:
            query = (
                select(TicketRow.ticket_id, TicketRow.status, PlatformLinkRow)
                .join(PlatformLinkRow, PlatformLinkRow.ticket_pk == TicketRow.id)
                .where(*conditions)
                .order_by(TicketRow.id)
            )
            if limit is not None:
                query = query.limit(limit)
            result = await session.execute(query)
            return [self._link_of(ticket_id, status, link) for ticket_id, status, link in result]

    async def follow_platform(
        self,
        request_id: str,
        platform_status: str,
        platform_updated: str,
        target: str | None,
        note: str,
        at: datetime,
    ) -> Followed | None:
        """Record what the platform says of its request ``request_id``: the status it maps to
        (``target``; None when unmapped) as a walk of the workflow (``walk``), the platform's note on
        the last step. A new note with the status the ticket has already (the platform's staff
        commented) is a progress note (``kind="note"``), once: ``platform_note`` keeps the last
        note recorded, by a change or as a note, and a closed ticket takes none. None when the
        platform said nothing new (same status, update time and note) or the request is not one of
        ours. ``at`` is kept between the last recorded change and now.
        """
        async with self._edge("recording a platform status"):
            now = self._now()
            async with self._writing() as session:
                link = await session.scalar(
                    select(PlatformLinkRow).where(PlatformLinkRow.request_id == request_id)
                )
                if link is None:
                    return None
                if (link.platform_status, link.platform_updated, link.platform_note) == (
                    platform_status,
                    platform_updated,
                    note,
                ):
                    return None
                row = await session.scalar(
                    select(TicketRow).where(TicketRow.id == link.ticket_pk).with_for_update()
                )
                assert row is not None  # the foreign key
                link.platform_status, link.platform_updated = platform_status, platform_updated
                before = row.status
                steps = None if target is None else walk(row.status, target)
                if steps is None:  # not followed: neither the status nor its note is recorded
                    link.platform_note = note
                    await session.flush()
                    return Followed(row.ticket_id, before, [], fits=False)
                last = max((h.at for h in row.history), default=row.created_at)
                when = min(max(at.astimezone(UTC), last), now)
                if not steps:
                    noted = bool(note) and note != link.platform_note and row.status != "closed"
                    link.platform_note = note
                    if noted:
                        row.history.append(StatusHistoryRow(status=row.status, note=note, at=when, kind="note"))
                        row.updated_at = now
                    await session.flush()
                    return Followed(row.ticket_id, before, [], fits=True, noted=noted)
                for i, status in enumerate(steps):
                    row.history.append(
                        StatusHistoryRow(status=status, note=note if i == len(steps) - 1 else "", at=when)
                    )
                link.platform_note = note  # carried by the change: not again as a note
                before, row.status, row.updated_at = row.status, steps[-1], now
                _settle(row, before, when, self._limits)
                await session.flush()
                return Followed(row.ticket_id, before, steps, fits=True)

    async def platform_state(self, name: str) -> str:
        """A named value of the platform backend ("" when never set)."""
        async with self._edge("reading platform state"), self._read_sessions() as session:
            found = await session.get(PlatformStateRow, name)
            return found.value if found is not None else ""

    async def set_platform_state(self, name: str, value: str) -> None:
        async with self._edge("writing platform state"), self._writing() as session:
            found = await session.get(PlatformStateRow, name)
            if found is None:
                session.add(PlatformStateRow(name=name, value=value))
            else:
                found.value = value

    async def summary(self, since: datetime, until: datetime | None = None) -> Summary:
        """Tickets filed in [since, until) by channel; those resolved in it, and their ratings (as
        they are now); how many tickets were urged (催办), sent out again (改派), merged, withdrawn
        and 办结 in it (until None: to now)."""

        def within(column: Any) -> list[Any]:
            return [column >= since, *(() if until is None else (column < until,))]

        async with self._edge("summarising tickets"), self._read_sessions() as session:
            filed = await session.execute(
                select(TicketRow.channel, func.count())
                .where(*within(TicketRow.created_at))
                .group_by(TicketRow.channel)
            )
            # the tickets resolved in the period (a progress note on a resolved ticket resolves nothing
            # again; one resolved twice counts once) and their 回访, both answers in one grouped pass:
            # from the period's steps by their index to each ticket by key. Asked as "id IN (steps)",
            # PostgreSQL hashed the steps and read every ticket (1 s a month at a city's volume),
            # SQLite read the whole history in ticket order when the steps were DISTINCT
            counts: Counter[str | None] = Counter()
            solved: Counter[bool] = Counter()
            for rating, answer, n in await session.execute(
                select(TicketRow.rating, TicketRow.solved, func.count(func.distinct(TicketRow.id)))
                .select_from(StatusHistoryRow).join(TicketRow, TicketRow.id == StatusHistoryRow.ticket_pk)
                .where(
                    # the partial index's very words, as literals: a planner uses it only so
                    StatusHistoryRow.status == literal_column("'resolved'"),
                    StatusHistoryRow.kind == literal_column("'status'"),
                    *within(StatusHistoryRow.at),
                )
                .group_by(TicketRow.rating, TicketRow.solved)
            ):
                counts[rating] += int(n)
                if answer is not None:
                    solved[bool(answer)] += int(n)
            urged = await session.scalar(
                select(func.count(func.distinct(FollowUpRow.ticket_pk)))
                .where(FollowUpRow.kind == "urge", *within(FollowUpRow.at))
            )
            redispatched = await session.scalar(
                select(func.count(func.distinct(RevisionRow.ticket_pk)))
                .where(RevisionRow.dispatched.is_(True), *within(RevisionRow.at))
            )
            merged = await session.scalar(select(func.count(TicketRow.id)).where(*within(TicketRow.merged_at)))
            withdrawn = await session.scalar(select(func.count(TicketRow.id)).where(*within(TicketRow.withdrawn_at)))
            extended = await session.scalar(select(func.count(TicketRow.id)).where(*within(TicketRow.extended_at)))
            done, late = (await session.execute(  # 按期办结率: from the moment's covering index alone
                select(func.count(), func.sum(case((TicketRow.done_late.is_(True), 1), else_=0)))
                .where(*within(TicketRow.done_at), _main(TicketRow)))).one()
            return Summary(
                since=since,
                until=until,
                filed={channel: int(n) for channel, n in filed.all()},
                resolved=sum(counts.values()),
                ratings={r: n for r, n in counts.items() if r is not None},
                urged=int(urged or 0),
                redispatched=int(redispatched or 0),
                merged=int(merged or 0),
                withdrawn=int(withdrawn or 0),
                extended=int(extended or 0),
                done=int(done or 0),
                done_late=int(late or 0),
                solved=solved.get(True, 0),
                unsolved=solved.get(False, 0),
            )

    async def rejudge(self, since: datetime, until: datetime | None = None) -> Rejudged:
        """Judge 按期 and 响应 again by ``limits`` as they stand now (after the holidays file gained
        a year, a setting changed): the tickets finished or taken on in [since, until), newest
        first, ``REJUDGE_BATCH`` in one short write each (keyset paging, as ``scan``); a ticket's
        moments and its ``updated_at`` stay, only a verdict that changed is written."""
        def within(at: datetime | None) -> bool:
            return at is not None and at >= since and (until is None or at < until)

        def window(column: Any) -> Any:
            return and_(column >= since, *(() if until is None else (column < until,)))

        counts: Counter[str] = Counter()  # done, done_late_before, done_late, responded, …
        changed: set[int] = set()
        below: int | None = None
        while True:
            async with self._edge("judging tickets again"), self._writing() as session:
                rows = (await session.execute(
                    select(*_SCANNED, PlatformLinkRow.request_id)
                    .outerjoin(PlatformLinkRow, PlatformLinkRow.ticket_pk == TicketRow.id)
                    .where(or_(window(TicketRow.done_at), window(TicketRow.responded_at)),
                           *(() if below is None else (TicketRow.id < below,)))
                    .order_by(TicketRow.id.desc())
                    .limit(REJUDGE_BATCH)
                )).all()
                writes: dict[tuple[str, bool], list[int]] = {}
                for pk, ticket in zip((row.id for row in rows), await self._built(session, rows), strict=True):
                    for name, moment, limit in (("done", ticket.done_at, self._limits.due),
                                                ("responded", ticket.responded_at, self._limits.respond)):
                        if moment is None or not within(moment):
                            continue
                        field = f"{name}_late"  # the verdict, on the ticket as in Rejudged
                        was, late = bool(getattr(ticket, field)), _late(limit, ticket, moment)
                        counts.update({name: 1, f"{field}_before": was, field: late})
                        if late != was:
                            writes.setdefault((field, late), []).append(pk)
                            changed.add(pk)
                for (field, late), pks in writes.items():
                    await session.execute(update(TicketRow).where(TicketRow.id.in_(pks)).values({field: late}))
            if len(rows) < REJUDGE_BATCH:
                break
            below = rows[-1].id
        return Rejudged(since=since, until=until, changed=len(changed), **counts)

    async def correction_counts(self, since: datetime) -> list[CorrectionCount]:
        """The revisions since ``since`` that changed a category's first level or a primary
        department, counted by pair (a 改派 to the same department again counts nothing)."""
        async with self._edge("counting corrections"), self._read_sessions() as session:
            rows = await session.execute(
                select(RevisionRow.before, RevisionRow.after, TicketRow.category)
                .join(TicketRow, TicketRow.id == RevisionRow.ticket_pk)
                .where(RevisionRow.at >= since)
            )
            counts: Counter[tuple[str, str, str, str]] = Counter()
            for before, after, category in rows.all():
                for name in ("category", "departments"):
                    was, now = (before.get(name) or [""])[0], (after.get(name) or [""])[0]
                    if name in after and was != now:
                        counts[(name, was, now, "/".join(category[:2]) if name == "departments" else "")] += 1
            return [CorrectionCount(field=name, before=was, after=now, category=category, count=n)  # type: ignore[arg-type]
                    for (name, was, now, category), n in sorted(counts.items(), key=lambda c: (-c[1], c[0]))]

    async def ping(self) -> None:
        """Raise ``PlatformUnavailable`` unless the database answers."""
        async with self._edge("pinging"), self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> LocalLedger:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
