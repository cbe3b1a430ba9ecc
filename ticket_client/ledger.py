"""``LocalLedger``: the ``local`` ticket backend, a ledger kept in SQLite or PostgreSQL.

Every write runs in one transaction that is serialised against the other writers: on SQLite by
``BEGIN IMMEDIATE``, on PostgreSQL by a transaction-scoped advisory lock. Serialising writes
keeps three promises cheaply: ticket numbers never collide, a status change is checked against
the status it really replaces, and history ids (the ``changes_since`` cursor) become visible in
commit order, so a poller that has read up to ``seq`` never misses a smaller one later.

Library errors stop here: connection trouble becomes ``PlatformUnavailable``, unknown ids
``TicketNotFound``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from types import TracebackType
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from ticket_client.base import (
    RATINGS,
    STATUSES,
    TRANSITIONS,
    InvalidRating,
    InvalidTransition,
    LocationInfo,
    PlatformUnavailable,
    StatusChange,
    Ticket,
    TicketDraft,
    TicketNotFound,
    TicketRef,
    UnknownStatus,
)
from ticket_client.db import UNAVAILABLE_ERRORS, async_url, connect_args
from ticket_client.models import StatusHistoryRow, TicketCounter, TicketRow

# Ticket numbers carry the date in China (no daylight saving, so a fixed offset is exact).
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
WRITE_LOCK_KEY = 0x12345_0002  # pg_advisory_xact_lock key serialising ledger writes


def utcnow() -> datetime:
    return datetime.now(UTC)


def _describe(err: BaseException) -> str:
    """A short cause without SQL parameters (they may hold citizens' words)."""
    cause = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"


class LocalLedger:
    """The TicketClient of the ``local`` backend.

    ``database_url`` is an async SQLAlchemy URL (plain ``sqlite:///`` and ``postgresql://`` are
    converted). Run ``ticket_client.migrate`` first. ``clock`` exists for tests (ticket dates).
    """

    def __init__(
        self,
        database_url: str,
        *,
        prefix: str = "12345",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
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
    def _to_ticket(row: TicketRow) -> Ticket:
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
            history=[
                StatusChange(
                    seq=change.id,
                    ticket_id=row.ticket_id,
                    conversation_key=row.conversation_key,
                    channel=row.channel,
                    status=change.status,
                    note=change.note,
                    at=change.at,
                )
                for change in row.history
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

    async def changes_since(self, cursor: int, limit: int = 100) -> list[StatusChange]:
        """History rows with ``seq > cursor`` in ``seq`` order, including each ``received``."""
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
                )
                .join(TicketRow, StatusHistoryRow.ticket_pk == TicketRow.id)
                .where(StatusHistoryRow.id > cursor)
                .order_by(StatusHistoryRow.id)
                .limit(max(limit, 0))
            )
            return [
                StatusChange(
                    seq=seq, ticket_id=tid, conversation_key=conv, channel=chan, status=st, note=note, at=at
                )
                for seq, tid, conv, chan, st, note, at in result
            ]

    async def set_status(self, ticket_id: str, status: str, note: str = "") -> Ticket:
        """Move a ticket along ``TRANSITIONS`` and record it; a refusal writes nothing."""
        if status not in STATUSES:
            raise UnknownStatus(f"unknown status {status!r}; known statuses: {', '.join(STATUSES)}")
        async with self._edge("changing a ticket's status"):
            now = self._now()
            async with self._writing() as session:
                row = await self._row(session, ticket_id, lock=True)
                allowed = TRANSITIONS.get(row.status, frozenset())
                if status not in allowed:
                    raise InvalidTransition(
                        f"ticket {ticket_id} cannot go from {row.status!r} to {status!r}; "
                        f"allowed from {row.status!r}: {', '.join(sorted(allowed)) or 'none'}"
                    )
                row.status = status
                row.updated_at = now
                row.history.append(StatusHistoryRow(status=status, note=note, at=now))
                await session.flush()
                return self._to_ticket(row)

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
