"""协办意见: a co-handling unit's word on a ticket for its 主办 and the centre, kept among the
follow-ups (``kind = 'assist'``) with the unit that wrote it (``ticket_followups.unit``; NULL for
the citizen's 催办 and 补充).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ticket_followups", sa.Column("unit", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_followups") as batch:
        batch.drop_column("unit")
