"""Operators' corrections of filed tickets (更正, 改派), one row each: who, when, why, and the
fields changed before and after (both empty: a confirmation, 审核无误).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_pk", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("dispatched", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_pk"], ["tickets.id"], name="fk_ticket_revisions_ticket_pk_tickets", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_revisions"),
    )
    op.create_index("ix_ticket_revisions_ticket_pk", "ticket_revisions", ["ticket_pk"])
    op.create_index("ix_ticket_revisions_at", "ticket_revisions", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_revisions_at", table_name="ticket_revisions")
    op.drop_index("ix_ticket_revisions_ticket_pk", table_name="ticket_revisions")
    op.drop_table("ticket_revisions")
