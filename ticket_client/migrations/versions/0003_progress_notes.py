"""Progress notes: a history row may be a note (办理进展) rather than a status change, and a
platform link remembers the platform's last note, so a note is relayed once.

Existing history rows are status changes (``kind`` defaults to ``status``). Each link's
``platform_note`` starts as the note of its ticket's last history row: for a mirrored ticket that
is the platform's ``status_notes`` as last recorded, so the first poll after the upgrade does not
send the citizen a note they have heard already.

Revision ID: 0003
Revises: 0002
Create Date: 2026-03-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "status_history",
        sa.Column("kind", sa.String(length=8), nullable=False, server_default="status"),
    )
    op.add_column(
        "platform_links",
        sa.Column("platform_note", sa.Text(), nullable=False, server_default=""),
    )
    op.execute(
        """
        UPDATE platform_links SET platform_note = COALESCE((
            SELECT h.note FROM status_history h
            WHERE h.ticket_pk = platform_links.ticket_pk
            ORDER BY h.id DESC LIMIT 1
        ), '')
        """
    )


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place
    with op.batch_alter_table("platform_links") as batch:
        batch.drop_column("platform_note")
    with op.batch_alter_table("status_history") as batch:
        batch.drop_column("kind")
