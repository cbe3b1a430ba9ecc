"""The citizen's word on a filed ticket, one row each, apart from the status history: a 催办
(``kind`` urge: they pressed for it) or a 补充 (``kind`` info: more about the matter).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_followups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_pk"], ["tickets.id"], name="fk_ticket_followups_ticket_pk_tickets", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_followups"),
        sa.UniqueConstraint("key", name="uq_ticket_followups_key"),
    )
    op.create_index("ix_ticket_followups_ticket_pk", "ticket_followups", ["ticket_pk"])
    op.create_index("ix_ticket_followups_at", "ticket_followups", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_followups_at", table_name="ticket_followups")
    op.drop_index("ix_ticket_followups_ticket_pk", table_name="ticket_followups")
    op.drop_table("ticket_followups")
