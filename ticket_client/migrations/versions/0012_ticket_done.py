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
    op.create_index("ix_tickets_done_at", "tickets", ["done_at"])
    tickets = sa.table("tickets", sa.column("id", sa.Integer), sa.column("status", sa.String),
                       sa.column("urgent", sa.Boolean), sa.column("request_type", sa.String),
                       sa.column("created_at", UTCDateTime()), sa.column("withdrawn_at", UTCDateTime()),
                       sa.column("done_at", UTCDateTime()), sa.column("done_late", sa.Boolean))
    history = sa.table("status_history", sa.column("id", sa.Integer), sa.column("ticket_pk", sa.Integer),
                       sa.column("status", sa.String), sa.column("at", UTCDateTime()), sa.column("kind", sa.String))
    revisions = sa.table("ticket_revisions", sa.column("ticket_pk", sa.Integer), sa.column("at", UTCDateTime()),
                         sa.column("dispatched", sa.Boolean))
    conn = op.get_bind()
    # 办结: the first step to resolved or closed after the ticket's last open step (a reopened one
    # was finished again), for every ticket at once: two grouped passes over the steps, joined to
    # the tickets by key (a subquery per ticket took over ten minutes for a year's on PostgreSQL)
    steps = [history.c.kind == "status"]
    last_open = (sa.select(history.c.ticket_pk.label("pk"), sa.func.max(history.c.id).label("id"))
                 .where(*steps, history.c.status.not_in(DONE)).group_by(history.c.ticket_pk).subquery("last_open"))
    finished = (sa.select(history.c.ticket_pk.label("pk"), sa.func.min(history.c.at).label("at"))
                .select_from(history.outerjoin(last_open, last_open.c.pk == history.c.ticket_pk))
                .where(*steps, history.c.status.in_(DONE), history.c.id > sa.func.coalesce(last_open.c.id, 0))
                .group_by(history.c.ticket_pk).subquery("finished"))
    conn.execute(tickets.update()
                 .where(tickets.c.id == finished.c.pk, tickets.c.status.in_(DONE), tickets.c.withdrawn_at.is_(None))
                 .values(done_at=finished.c.at, done_late=False))  # each row written once: late ones below
    settings = _settings()
    due = _judge(settings)
    below: int | None = None
    while True:  # 超期办结: judged here, by the calendar; written as the few late ones' keys
        rows = conn.execute(
            sa.select(tickets.c.id, tickets.c.urgent, tickets.c.request_type, tickets.c.created_at, tickets.c.done_at)
            .where(tickets.c.done_at.is_not(None), *(() if below is None else (tickets.c.id < below,)))
            .order_by(tickets.c.id.desc()).limit(BATCH)
        ).all()
        again: dict[int, datetime] = {}
        if rows and settings.resolve_restart_on_redispatch:
            again = dict(conn.execute(
                sa.select(revisions.c.ticket_pk, sa.func.max(revisions.c.at))
                .where(revisions.c.ticket_pk.in_([r.id for r in rows]), revisions.c.dispatched.is_(True))
                .group_by(revisions.c.ticket_pk)
            ).all())
        late = [r.id for r in rows
                if (limit := due(r.created_at, bool(r.urgent), r.request_type or "", again.get(r.id))) is not None
                and r.done_at > limit]
        if late:
            conn.execute(tickets.update().where(tickets.c.id.in_(late)).values(done_late=True))
        if len(rows) < BATCH:
            return
        below = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_tickets_done_at", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("done_late")
        batch.drop_column("done_at")
