"""Conversations count their history versions: clearing the history starts a new one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00+00:00

A reply is stored only into the history version its turn started in, so a reply still
being generated when the history is cleared (by any instance) is dropped instead of
landing, orphaned, in the new history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column("history_version", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    op.drop_column("conversations", "history_version")
