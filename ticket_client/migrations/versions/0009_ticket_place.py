"""The spot a ticket is about (``tickets.place``, ``LocationInfo.place``: its estate or village,
landmark, road and number, or road), indexed: 工单查询 flags each open ticket that shares it with
another open one of the last 30 days (疑似重复) with one grouped count for a whole page, and 并单
lists those first. The tickets already filed get theirs from the place stored with them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pydantic import ValidationError

from ticket_client.base import LocationInfo

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000  # tickets read and written at a time (a ledger of a year holds over a million)


def _place(location: object) -> str:
    """The spot of a stored place; "" for one that does not read as a place (never stops the upgrade)."""
    try:
        return LocationInfo.model_validate(location or {}).place()
    except ValidationError:
        return ""


def upgrade() -> None:
    op.add_column("tickets", sa.Column("place", sa.String(length=40), server_default="", nullable=False))
    op.create_index("ix_tickets_place", "tickets", ["place"])
    tickets = sa.table("tickets", sa.column("id", sa.Integer), sa.column("location", sa.JSON),
                       sa.column("place", sa.String))
    conn = op.get_bind()
    below: int | None = None
    while True:
        rows = conn.execute(
            sa.select(tickets.c.id, tickets.c.location)
            .where(*(() if below is None else (tickets.c.id < below,)))
            .order_by(tickets.c.id.desc()).limit(BATCH)
        ).all()
        placed = [{"pk": pk, "place": place} for pk, location in rows if (place := _place(location))]
        if placed:
            conn.execute(tickets.update().where(tickets.c.id == sa.bindparam("pk"))
                         .values(place=sa.bindparam("place")), placed)
        if len(rows) < BATCH:
            return
        below = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_tickets_place", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("place")
