"""按期办结 and 响应: when the work last finished a ticket (``tickets.done_at``: resolved or closed,
not a 撤单; None while open) and whether that came after its 办理时限 (``tickets.done_late``,
超期办结); when a department first took it on (``tickets.responded_at``: accepted, or further) and
whether after its time to (``tickets.responded_late``, HOTLINE_RESPOND_HOURS, 超时签收). Both are
judged when they happen. 服务质量 and the 周报 read a period's 按期办结率 through the moment's
index; 承办单位考核 counts each unit's 超期办结 and 响应率 with the rest of its tally.

The tickets already filed get theirs from their status history: the first step to accepted,
processing or resolved; the moment they last came to resolved or closed from an open status. They
are judged by the settings the upgrade runs with (``HOTLINE_RESOLVE_*``, ``HOTLINE_RESPOND_*`` and
the holidays file, as the gateway reads them at start). Each ticket is written once, in one
statement, and the late ones once more by key; the index comes after (bench/ledger_upgrade.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op
from pydantic import ValidationError

from config.settings import Settings
from config.workdays import BEIJING
from ticket_client import deadlines
from ticket_client.models import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000  # tickets judged at a time (a ledger of a year holds over a million)
# as ticket_client.deadlines.DONE and ticket_client.ledger.RESPONDED, written here: a migration stays as it ran
DONE = ("resolved", "closed")
RESPONDED = ("accepted", "processing", "resolved")


def _settings() -> Settings:
    """The gateway's settings from the environment; the defaults when they do not validate (the
    gateway itself then refuses to start, and the upgrade must not be the thing that breaks)."""
    try:
        return Settings()
    except ValidationError:
        return Settings.model_construct()


def _judge(settings: Settings) -> Callable[[datetime, bool, str, datetime | None], datetime | None]:
    """Deadlines by (clock start, urgent, request type), those in working days cached by the day
    they start (a year's tickets share a few hundred days)."""
    cache: dict[tuple[Any, ...], datetime | None] = {}

    def due(filed: datetime, urgent: bool, request_type: str, redispatched: datetime | None) -> datetime | None:
        start = redispatched or filed  # a 改派 is looked up only with HOTLINE_RESOLVE_RESTART_ON_REDISPATCH
        if urgent or not settings.resolve_workdays:
            return deadlines.deadline(start, urgent, settings, request_type)
        key = (start.astimezone(BEIJING).date(), deadlines.resolve_days(request_type, settings))
        if key not in cache:
            cache[key] = deadlines.deadline(start, urgent, settings, request_type)
        return cache[key]

    return due


def upgrade() -> None:
    op.add_column("tickets", sa.Column("done_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tickets", sa.Column("done_late", sa.Boolean(), nullable=True))
    op.add_column("tickets", sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tickets", sa.Column("responded_late", sa.Boolean(), nullable=True))
    tickets = sa.table("tickets", sa.column("id", sa.Integer), sa.column("status", sa.String),
                       sa.column("urgent", sa.Boolean), sa.column("request_type", sa.String),
                       sa.column("created_at", UTCDateTime()), sa.column("withdrawn_at", UTCDateTime()),
                       sa.column("done_at", UTCDateTime()), sa.column("done_late", sa.Boolean),
                       sa.column("responded_at", UTCDateTime()), sa.column("responded_late", sa.Boolean))
    history = sa.table("status_history", sa.column("id", sa.Integer), sa.column("ticket_pk", sa.Integer),
                       sa.column("status", sa.String), sa.column("at", UTCDateTime()), sa.column("kind", sa.String))
    revisions = sa.table("ticket_revisions", sa.column("ticket_pk", sa.Integer), sa.column("at", UTCDateTime()),
                         sa.column("dispatched", sa.Boolean))
    conn = op.get_bind()
    # per ticket, in two grouped passes over the steps: the first time it was taken on, and the first
    # step to resolved or closed after its last open step (a reopened one was finished again); then
    # each ticket written once, joined by key (a subquery per ticket took over ten minutes for a
    # year's on PostgreSQL)
    status = history.c.kind == "status"
    last_open = (sa.select(history.c.ticket_pk.label("pk"), sa.func.max(history.c.id).label("id"))
                 .where(status, history.c.status.not_in(DONE)).group_by(history.c.ticket_pk).subquery("last_open"))
    found = (sa.select(
        history.c.ticket_pk.label("pk"),
        sa.func.min(sa.case((history.c.status.in_(RESPONDED), history.c.at))).label("responded"),
        sa.func.min(sa.case((sa.and_(history.c.status.in_(DONE), history.c.id > sa.func.coalesce(last_open.c.id, 0)),
                             history.c.at))).label("done"))
        .select_from(history.outerjoin(last_open, last_open.c.pk == history.c.ticket_pk))
        .where(status).group_by(history.c.ticket_pk).subquery("found"))
    finished = sa.and_(tickets.c.status.in_(DONE), tickets.c.withdrawn_at.is_(None), found.c.done.is_not(None))
    conn.execute(tickets.update().where(tickets.c.id == found.c.pk).values(
        responded_at=found.c.responded,
        responded_late=sa.case((found.c.responded.is_not(None), sa.false()), else_=sa.null()),
        done_at=sa.case((finished, found.c.done), else_=sa.null()),
        done_late=sa.case((finished, sa.false()), else_=sa.null()),
    ))
    _judge_late(conn, tickets, revisions, _settings())
    # after the writes: built once; covering, so 服务质量's 按期办结率 reads no ticket
    op.create_index("ix_tickets_done", "tickets", ["done_at", "done_late", "merged_into"])
    # 服务质量 finds a period's steps to 已办结 by when they came, as 承办单位考核 its returns (0011)
    op.create_index("ix_status_history_resolved", "status_history", ["at"],
                    sqlite_where=sa.text("status = 'resolved'"), postgresql_where=sa.text("status = 'resolved'"))


def _judge_late(conn: sa.Connection, tickets: Any, revisions: Any, settings: Settings) -> None:
    """超期办结 and 超时签收 of the tickets filled in: judged here, by the calendar and the hours;
    written as the late ones' keys."""
    due = _judge(settings)
    hours = {False: settings.respond_hours, True: settings.respond_urgent_hours}
    below: int | None = None
    while True:
        rows = conn.execute(
            sa.select(tickets.c.id, tickets.c.urgent, tickets.c.request_type, tickets.c.created_at,
                      tickets.c.done_at, tickets.c.responded_at)
            .where(sa.or_(tickets.c.done_at.is_not(None), tickets.c.responded_at.is_not(None)),
                   *(() if below is None else (tickets.c.id < below,)))
            .order_by(tickets.c.id.desc()).limit(BATCH)
        ).all()
        again: dict[int, datetime] = {}
        if rows and settings.resolve_restart_on_redispatch:
            again = dict(conn.execute(
                sa.select(revisions.c.ticket_pk, sa.func.max(revisions.c.at))
                .where(revisions.c.ticket_pk.in_([r.id for r in rows]), revisions.c.dispatched.is_(True))
                .group_by(revisions.c.ticket_pk)
            ).all())
        done_late = [r.id for r in rows if r.done_at is not None
                     and (limit := due(r.created_at, bool(r.urgent), r.request_type or "", again.get(r.id))) is not None
                     and r.done_at > limit]
        taken_late = [r.id for r in rows if r.responded_at is not None and (h := hours[bool(r.urgent)])
                      and r.responded_at > r.created_at + timedelta(hours=h)]
        if done_late:
            conn.execute(tickets.update().where(tickets.c.id.in_(done_late)).values(done_late=True))
        if taken_late:
            conn.execute(tickets.update().where(tickets.c.id.in_(taken_late)).values(responded_late=True))
        if len(rows) < BATCH:
            return
        below = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_status_history_resolved", table_name="status_history")
    op.drop_index("ix_tickets_done", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("responded_late")
        batch.drop_column("responded_at")
        batch.drop_column("done_late")
        batch.drop_column("done_at")
