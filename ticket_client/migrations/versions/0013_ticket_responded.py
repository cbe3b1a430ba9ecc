"""响应 (签收): when a department first took a ticket on (``tickets.responded_at``: accepted, or
further) and whether after its limit to (``tickets.responded_late``, HOTLINE_RESPOND_HOURS, or
HOTLINE_RESPOND_URGENT_HOURS for an urgent one, clock hours from filing), judged when it happens.
承办单位考核 gives each unit its 响应率, the first of 接诉即办's 三率.

The tickets taken on already get theirs from their status history (the first step to accepted,
processing or resolved), judged by the settings the upgrade runs with, as 0012 does.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op
from pydantic import ValidationError

from config.settings import Settings
from ticket_client.models import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000  # tickets judged at a time (a ledger of a year holds over a million)
RESPONDED = ("accepted", "processing", "resolved")  # as ticket_client.ledger.RESPONDED, written here


def _settings() -> Settings:
    """As 0012: the gateway's settings, or the defaults when they do not validate."""
    try:
        return Settings()
    except ValidationError:
        return Settings.model_construct()


def upgrade() -> None:
    op.add_column("tickets", sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tickets", sa.Column("responded_late", sa.Boolean(), nullable=True))
    tickets = sa.table("tickets", sa.column("id", sa.Integer), sa.column("urgent", sa.Boolean),
                       sa.column("created_at", UTCDateTime()), sa.column("responded_at", UTCDateTime()),
                       sa.column("responded_late", sa.Boolean))
    history = sa.table("status_history", sa.column("ticket_pk", sa.Integer), sa.column("status", sa.String),
                       sa.column("at", UTCDateTime()), sa.column("kind", sa.String))
    conn = op.get_bind()
    first = (sa.select(history.c.ticket_pk.label("pk"), sa.func.min(history.c.at).label("at"))
             .where(history.c.kind == "status", history.c.status.in_(RESPONDED))
             .group_by(history.c.ticket_pk).subquery("first"))
    # one grouped pass over the steps, joined to the tickets by key (UPDATE … FROM), as 0012
    conn.execute(tickets.update().where(tickets.c.id == first.c.pk).values(responded_at=first.c.at, responded_late=False))
    settings = _settings()
    hours = {False: settings.respond_hours, True: settings.respond_urgent_hours}
    below: int | None = None
    while True:  # 超时签收: judged here; written as the late ones' keys
        rows = conn.execute(
            sa.select(tickets.c.id, tickets.c.urgent, tickets.c.created_at, tickets.c.responded_at)
            .where(tickets.c.responded_at.is_not(None), *(() if below is None else (tickets.c.id < below,)))
            .order_by(tickets.c.id.desc()).limit(BATCH)
        ).all()
        late = [r.id for r in rows
                if (limit := hours[bool(r.urgent)]) and r.responded_at > r.created_at + timedelta(hours=limit)]
        if late:
            conn.execute(tickets.update().where(tickets.c.id.in_(late)).values(responded_late=True))
        if len(rows) < BATCH:
            return
        below = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("responded_late")
        batch.drop_column("responded_at")
