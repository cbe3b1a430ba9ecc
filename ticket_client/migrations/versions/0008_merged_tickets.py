"""并单: a ticket may follow another (the same matter reported again), ``merged_into`` holding the
main ticket's number; indexed, so a main finds the tickets that follow it at each step, and
``merged_at`` when, for the 班长视图's 并单工单 of a period.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("merged_into", sa.String(length=64), nullable=True))
    op.add_column("tickets", sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tickets_merged_into", "tickets", ["merged_into"])
    op.create_index("ix_tickets_merged_at", "tickets", ["merged_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_merged_at", table_name="tickets")
    op.drop_index("ix_tickets_merged_into", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("merged_at")
        batch.drop_column("merged_into")
