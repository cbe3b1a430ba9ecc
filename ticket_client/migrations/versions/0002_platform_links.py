"""Platform links: each mirrored ticket's request on the ticket platform, and the poll cursor.

Used by the ``open311`` backend, which keeps the ledger as the platform's mirror; the ``local``
backend leaves both tables empty.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "platform_links",
        sa.Column("ticket_pk", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=True),
        sa.Column("token", sa.String(length=255), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sending_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("platform_status", sa.String(length=64), nullable=False),
        sa.Column("platform_updated", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_pk"], ["tickets.id"], name="fk_platform_links_ticket_pk_tickets", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ticket_pk", name="pk_platform_links"),
        sa.UniqueConstraint("request_id", name="uq_platform_links_request_id"),
    )
    op.create_table(
        "platform_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_platform_state"),
    )


def downgrade() -> None:
    op.drop_table("platform_state")
    op.drop_table("platform_links")
