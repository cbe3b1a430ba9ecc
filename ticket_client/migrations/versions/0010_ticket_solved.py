"""解决情况: the citizen's answer to the 回访's second question, whether the problem was solved
(``solved``: true 已解决, false 未解决, null not asked or not answered), for the centre's 解决率
beside its 满意率. Nothing to fill in: tickets rated before were never asked. Indexed: the
班长视图's 回访未解决 card counts the few said 未解决 among every ticket, at each refresh.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("solved", sa.Boolean(), nullable=True))
    op.create_index("ix_tickets_solved", "tickets", ["solved"])


def downgrade() -> None:
    op.drop_index("ix_tickets_solved", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("solved")
