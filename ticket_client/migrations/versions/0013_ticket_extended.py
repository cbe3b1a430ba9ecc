"""延期: the 办理时限 the centre granted a ticket (``tickets.extended_until``), in place of the one
counted from its filing: 超期, 即将超期 and 按期办结 are judged against it; and when it was last
granted (``tickets.extended_at``), by which 服务质量 counts a period's 延期工单 (indexed). The limit
is not indexed: 超期 reads it among the open tickets, found by status, and SQLite without
statistics would read "extended_until IS NULL" through an index of it, nearly every ticket.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("extended_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tickets", sa.Column("extended_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tickets_extended_at", "tickets", ["extended_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_extended_at", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("extended_at")
        batch.drop_column("extended_until")
