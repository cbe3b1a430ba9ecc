"""SQLAlchemy models of the local ticket ledger.

The schema itself is owned by the Alembic migrations in ``ticket_client/migrations``; these models
must stay in step with them (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from ticket_client.base import ChangeKind, ExtensionOutcome, FollowUpKind

# Stable constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type, so values are stored as naive UTC there and made aware again
    on the way out; PostgreSQL uses ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class TicketRow(Base):
    __tablename__ = "tickets"
    # 按期办结率 of a period (服务质量, at each refresh): counted from the index alone, each matter once
    # (the repeats merged into another left out by ``merged_into``), migration 0012
    __table_args__ = (Index("ix_tickets_done", "done_at", "done_late", "merged_into"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    channel: Mapped[str] = mapped_column(String(64))
    conversation_key: Mapped[str] = mapped_column(String(255), index=True)
    contact: Mapped[str] = mapped_column(Text, default="", index=True)  # 工单查询 by phone
    title: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[list[str]] = mapped_column(JSON)
    request_type: Mapped[str] = mapped_column(String(64), default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    location: Mapped[dict[str, Any]] = mapped_column(JSON)
    departments: Mapped[list[str]] = mapped_column(JSON)
    attachments: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # 待改派 counted live (migration 0007)
    # 并单: the ticket_id of the main ticket this one follows (migration 0008)
    merged_into: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)  # 并单工单 of a period
    # the spot it is about (LocationInfo.place, migration 0009): 疑似重复 are the open tickets sharing it
    place: Mapped[str] = mapped_column(String(40), default="", server_default="", index=True)
    rating: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # 解决情况 (migration 0010): the 回访's second answer, True 已解决 / False 未解决 / None not given
    solved: Mapped[bool | None] = mapped_column(Boolean, nullable=True, index=True)  # the 回访未解决 card
    # 撤单: when the citizen withdrew it (closed then; None again once reopened), migration 0011
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    # 办结 (migration 0012): when the work last finished it (None while open, and for a 撤单), and
    # whether past its 办理时限 then (超期办结): 按期办结率 of a period, read by when it finished
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    done_late: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # 响应 (签收, migration 0012): when a department first took it on, and whether past its limit
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    responded_late: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # 延期 (migration 0013): the 办理时限 the centre granted in place of the one counted from filing;
    # 超期 and 即将超期 read it among the open tickets (not indexed: SQLite, without statistics, would
    # read "IS NULL" through it, nearly every ticket, rather than the open ones by status)
    extended_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)  # 延期工单 of a period
    rating_comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # 工单查询 by period
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    history: Mapped[list[StatusHistoryRow]] = relationship(
        back_populates="ticket", order_by="StatusHistoryRow.id", lazy="selectin"
    )
    link: Mapped[PlatformLinkRow | None] = relationship(lazy="selectin", viewonly=True)
    followups: Mapped[list[FollowUpRow]] = relationship(order_by="FollowUpRow.id", lazy="selectin")
    revisions: Mapped[list[RevisionRow]] = relationship(order_by="RevisionRow.id", lazy="selectin")
    extension_requests: Mapped[list[ExtensionRequestRow]] = relationship(
        order_by="ExtensionRequestRow.id", lazy="selectin")


class StatusHistoryRow(Base):
    """One status change, or one progress note (``kind="note"``, ``status`` the ticket's status
    when it was written); ``id`` is the global ``seq`` cursor of ``changes_since``."""

    __tablename__ = "status_history"
    # 承办单位考核's 退回: a period's few returns among millions of steps, found by when they came
    # without reading the rest (migration 0011; a query names the status as a literal, so the
    # planners may use it)
    # 服务质量's 回访 (three periods at each refresh of the 班长视图): the period's status changes to
    # 已办结 and their tickets, read from the index alone (migration 0012; 0013 added the ticket and
    # left the progress notes out: checking each step's kind read 57,000 rows a month at a city's volume)
    __table_args__ = (Index("ix_status_history_returned", "at", sqlite_where=text("status = 'returned'"),
                            postgresql_where=text("status = 'returned'")),
                      Index("ix_status_history_resolved", "at", "ticket_pk",
                            sqlite_where=text("status = 'resolved' AND kind = 'status'"),
                            postgresql_where=text("status = 'resolved' AND kind = 'status'")))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_pk: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[ChangeKind] = mapped_column(String(8), default="status", server_default="status")  # 0003

    ticket: Mapped[TicketRow] = relationship(back_populates="history")


class FollowUpRow(Base):
    """A word on a filed ticket (migration 0005): the citizen's 催办 (``kind="urge"``: they pressed
    for it) or 补充 (``kind="info"``: more about the matter), or a 协办 unit's 协办意见
    (``kind="assist"``, with its ``unit``: migration 0015), or the centre's decision on a unit's
    延期申请 (``kind="decision"``, with the unit that asked). Kept apart from the history: none is
    a step of the work, so the citizen is never told of it as news."""

    __tablename__ = "ticket_followups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_pk: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[FollowUpKind] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # 服务质量: tickets urged in a period
    note: Mapped[str] = mapped_column(Text, default="")
    # the citizen's message it came from: a turn run again (a redelivery, a retried commit) finds
    # it and adds nothing (None: an operator's click, not a message)
    key: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    unit: Mapped[str | None] = mapped_column(String(64), nullable=True)  # a 协办意见's unit, a decision's asker


class RevisionRow(Base):
    """An operator's 更正 or 改派 of a filed ticket (migration 0006): who, when, why, and the fields
    it changed as they were (``before``) and became (``after``); both empty: a confirmation
    (审核无误). Kept apart from the history: a correction is no step of the work (a 改派 of a
    returned ticket also records its ``accepted`` step there, which the citizen hears)."""

    __tablename__ = "ticket_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_pk: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # 改派 figures of a period
    by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict[str, Any]] = mapped_column(JSON)
    after: Mapped[dict[str, Any]] = mapped_column(JSON)
    dispatched: Mapped[bool] = mapped_column(Boolean, default=False)


class ExtensionRequestRow(Base):
    """A department's 延期申请 and the centre's decision (migration 0014). Kept apart from the history:
    the citizen hears of a 延期 only once granted (then as a step of kind ``extend``)."""

    __tablename__ = "ticket_extension_requests"
    # at most one waiting per ticket; 延期待审核 finds the waiting ones without reading the decided
    __table_args__ = (Index("ux_extension_requests_pending", "ticket_pk", unique=True,
                            sqlite_where=text("outcome = 'pending'"), postgresql_where=text("outcome = 'pending'")),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_pk: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    unit: Mapped[str] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)
    outcome: Mapped[ExtensionOutcome] = mapped_column(String(8), default="pending")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[str] = mapped_column(String(64), default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    granted_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class TicketCounter(Base):
    """The daily ticket-number sequence, one row per Asia/Shanghai date (``YYYYMMDD``)."""

    __tablename__ = "ticket_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class PlatformLinkRow(Base):
    """A mirrored ticket's request on the ticket platform (the ``open311`` backend), one per ticket.

    ``request_id`` (the platform's ``service_request_id``) or ``token`` (its promise of one) set:
    the ticket is filed there and is never sent again. ``posted_at`` is when the first POST whose
    answer never came was sent (the request may exist: look before sending again);
    ``sending_until`` the lease of the POST in flight. ``platform_status`` and
    ``platform_updated`` are the platform's last word, as it said it, so a poll that sees it again
    records nothing; ``platform_note`` its ``status_notes`` as last recorded (with a change, or as
    a progress note), so a note is relayed once however often it is seen.
    """

    __tablename__ = "platform_links"

    ticket_pk: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    token: Mapped[str | None] = mapped_column(String(255), nullable=True)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sending_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    platform_status: Mapped[str] = mapped_column(String(64), default="")
    platform_updated: Mapped[str] = mapped_column(String(64), default="")
    platform_note: Mapped[str] = mapped_column(Text, default="", server_default="")  # migration 0003


class PlatformStateRow(Base):
    """Small named values a platform backend keeps across restarts (its poll cursor)."""

    __tablename__ = "platform_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
