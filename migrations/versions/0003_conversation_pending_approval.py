"""Conversations keep the tool call a paused turn waits to have approved.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 14:30:00+00:00

A turn that calls a tool needing the user's approval pauses: the conversation's reply claim
stays held until the approval expires, and ``pending_approval`` (JSON: id, tool, arguments,
times, the reply so far) says what it waits for. Only a held claim can wait for an approval.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("conversations", sa.Column("pending_approval", postgresql.JSONB(), nullable=True))
    op.create_check_constraint(
        "ck_conversations_pending_approval_claimed",
        "conversations",
        "pending_approval IS NULL OR reply_claim_id IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_constraint("ck_conversations_pending_approval_claimed", "conversations", type_="check")
    op.drop_column("conversations", "pending_approval")
