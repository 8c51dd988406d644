"""Conversations: one per pair of people, with its Matrix room.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_a",
            sa.String(255),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_conversations_user_a_users"),
            nullable=False,
        ),
        sa.Column(
            "user_b",
            sa.String(255),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_conversations_user_b_users"),
            nullable=False,
        ),
        sa.Column("started_by", sa.String(255), nullable=False),
        sa.Column("room_id", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_a", "user_b", name="uq_conversations_pair"),
        sa.UniqueConstraint("room_id", name="uq_conversations_room_id"),
    )
    op.create_index("ix_conversations_user_b", "conversations", ["user_b"])


def downgrade() -> None:
    op.drop_table("conversations")
