"""延期申请: a department asks the centre for a later 办理时限 and a supervisor grants or refuses it
(``ticket_extension_requests``). At most one waits per ticket (a unique index of the waiting ones,
which is also how 延期待审核 finds them).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_extension_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_pk", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("granted_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["ticket_pk"], ["tickets.id"], name="fk_ticket_extension_requests_ticket_pk_tickets",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_extension_requests"),
    )
    op.create_index("ix_ticket_extension_requests_ticket_pk", "ticket_extension_requests", ["ticket_pk"])
    waiting = sa.text("outcome = 'pending'")
    op.create_index("ux_extension_requests_pending", "ticket_extension_requests", ["ticket_pk"], unique=True,
                    sqlite_where=waiting, postgresql_where=waiting)


def downgrade() -> None:
    op.drop_index("ux_extension_requests_pending", table_name="ticket_extension_requests")
    op.drop_index("ix_ticket_extension_requests_ticket_pk", table_name="ticket_extension_requests")
    op.drop_table("ticket_extension_requests")
