"""撤单: a ticket its citizen withdrew (the problem went away, or it was filed twice) is closed
with ``withdrawn_at`` set, so the centre counts it apart: it is no department's 办结, and the
承办单位考核 leaves it out of the 办结率. Cleared when the ticket is reopened. Indexed: 服务质量
counts the withdrawals of a period at each refresh.

Also a partial index of the returns among the status history (``ix_status_history_returned``):
承办单位考核 credits each return of a period's tickets to the unit that made it, and a return is
a step in thirty: found by when it came (a return comes after its ticket's filing).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tickets_withdrawn_at", "tickets", ["withdrawn_at"])
    op.create_index("ix_status_history_returned", "status_history", ["at"],
                    sqlite_where=sa.text("status = 'returned'"), postgresql_where=sa.text("status = 'returned'"))


def downgrade() -> None:
    op.drop_index("ix_status_history_returned", table_name="status_history")
    op.drop_index("ix_tickets_withdrawn_at", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("withdrawn_at")
