"""延期: the 办理时限 the centre granted a ticket (``tickets.extended_until``), in place of the one
counted from its filing: 超期, 即将超期 and 按期办结 are judged against it; and when it was last
granted (``tickets.extended_at``), by which 服务质量 counts a period's 延期工单 (indexed). The limit
is not indexed: 超期 reads it among the open tickets, found by status, and SQLite without
statistics would read "extended_until IS NULL" through an index of it, nearly every ticket.

Also 0012's partial index of the steps to 已办结 (``ix_status_history_resolved``) is built again with
the ticket beside the moment and only the status changes in it (a progress note on a resolved
ticket is no 办结): 服务质量 then reads a period's resolved tickets from the index alone, where
checking each step's kind read 57,000 history rows for a month at a city's volume.

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
    op.drop_index("ix_status_history_resolved", table_name="status_history")
    steps = "status = 'resolved' AND kind = 'status'"
    op.create_index("ix_status_history_resolved", "status_history", ["at", "ticket_pk"],
                    sqlite_where=sa.text(steps), postgresql_where=sa.text(steps))


def downgrade() -> None:
    op.drop_index("ix_status_history_resolved", table_name="status_history")
    op.create_index("ix_status_history_resolved", "status_history", ["at"],
                    sqlite_where=sa.text("status = 'resolved'"), postgresql_where=sa.text("status = 'resolved'"))
    op.drop_index("ix_tickets_extended_at", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("extended_at")
        batch.drop_column("extended_until")
