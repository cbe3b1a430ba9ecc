"""按期办结: when the work last finished a ticket (``tickets.done_at``: resolved or closed, not a
撤单; None while open) and whether that came after its 办理时限 (``tickets.done_late``, 超期办结),
judged when it happens. 服务质量 and the 周报 read a period's 按期办结率 through the moment's index;
承办单位考核 counts each unit's 超期办结 with the rest of its tally.

The tickets finished already get theirs from their status history: the moment they last came to
resolved or closed from an open status, judged against the 办理时限 of the settings the upgrade
runs with (``HOTLINE_RESOLVE_*`` and the holidays file, as the gateway reads them at start).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
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

BATCH = 2000  # tickets read and written at a time (a ledger of a year holds over a million)
DONE = ("resolved", "closed")  # as ticket_client.deadlines.DONE, written here: a migration stays as it ran


def _settings() -> Settings:
    """The gateway's settings from the environment; the defaults when they do not validate (the
    gateway itself then refuses to start, and the upgrade must not be the thing that breaks)."""
    try:
        return Settings()
    except ValidationError:
        return Settings.model_construct()


def _finished(steps: list[tuple[str, datetime]]) -> datetime | None:
    """When a ticket last came to resolved or closed from an open status, by its status history."""
    done: datetime | None = None
    was_open = True
    for status, at in steps:
        if status in DONE and was_open:
            done = at
        was_open = status not in DONE
    return done


def _judge(settings: Settings) -> Callable[[datetime, bool, str, datetime | None], datetime | None]:
    """Deadlines by (clock start, urgent, request type), those in working days cached by the day
    they start (a year's tickets share a few hundred days)."""
    cache: dict[tuple[Any, ...], datetime | None] = {}

    def due(filed: datetime, urgent: bool, request_type: str, redispatched: datetime | None) -> datetime | None:
        start = (redispatched or filed) if settings.resolve_restart_on_redispatch else filed
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
    op.create_index("ix_tickets_done_at", "tickets", ["done_at"])
    tickets = sa.table("tickets", sa.column("id", sa.Integer), sa.column("status", sa.String),
                       sa.column("urgent", sa.Boolean), sa.column("request_type", sa.String),
                       sa.column("created_at", UTCDateTime()), sa.column("withdrawn_at", UTCDateTime()),
                       sa.column("done_at", UTCDateTime()), sa.column("done_late", sa.Boolean))
    history = sa.table("status_history", sa.column("id", sa.Integer), sa.column("ticket_pk", sa.Integer),
                       sa.column("status", sa.String), sa.column("at", UTCDateTime()), sa.column("kind", sa.String))
    revisions = sa.table("ticket_revisions", sa.column("ticket_pk", sa.Integer), sa.column("at", UTCDateTime()),
                         sa.column("dispatched", sa.Boolean))
    due = _judge(_settings())
    conn = op.get_bind()
    below: int | None = None
    while True:
        rows = conn.execute(
            sa.select(tickets.c.id, tickets.c.urgent, tickets.c.request_type, tickets.c.created_at)
            .where(tickets.c.status.in_(DONE), tickets.c.withdrawn_at.is_(None),
                   *(() if below is None else (tickets.c.id < below,)))
            .order_by(tickets.c.id.desc()).limit(BATCH)
        ).all()
        _settle(conn, tickets, history, revisions, rows, due)
        if len(rows) < BATCH:
            return
        below = rows[-1].id


def _settle(conn: sa.Connection, tickets: Any, history: Any, revisions: Any, rows: Sequence[Any],
            due: Callable[[datetime, bool, str, datetime | None], datetime | None]) -> None:
    """One batch of finished tickets: their 办结 moment and whether it was late."""
    if not rows:
        return
    pks = [r.id for r in rows]
    steps: dict[int, list[tuple[str, datetime]]] = {}
    for pk, status, at in conn.execute(
        sa.select(history.c.ticket_pk, history.c.status, history.c.at)
        .where(history.c.ticket_pk.in_(pks), history.c.kind == "status").order_by(history.c.id)
    ):
        steps.setdefault(pk, []).append((status, at))
    again: dict[int, datetime] = dict(conn.execute(
        sa.select(revisions.c.ticket_pk, sa.func.max(revisions.c.at))
        .where(revisions.c.ticket_pk.in_(pks), revisions.c.dispatched.is_(True)).group_by(revisions.c.ticket_pk)
    ).all())
    settled = []
    for r in rows:
        done = _finished(steps.get(r.id, []))
        if done is None:
            continue
        limit = due(r.created_at, bool(r.urgent), r.request_type or "", again.get(r.id))
        settled.append({"pk": r.id, "done_at": done, "done_late": limit is not None and done > limit})
    if settled:
        conn.execute(tickets.update().where(tickets.c.id == sa.bindparam("pk"))
                     .values(done_at=sa.bindparam("done_at"), done_late=sa.bindparam("done_late")), settled)


def downgrade() -> None:
    op.drop_index("ix_tickets_done_at", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("done_late")
        batch.drop_column("done_at")
