"""Edits, deletions, read markers and conversation activity.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("messages", sa.Column("revision", sa.Integer, nullable=False, server_default="0"))
    op.add_column("messages", sa.Column("edited_at", _TS, nullable=True))
    op.add_column("messages", sa.Column("deleted_at", _TS, nullable=True))
    op.add_column("messages", sa.Column("pending", sa.String(16), nullable=True))
    op.create_index("ix_messages_pending", "messages", ["pending"])
    op.add_column("conversations", sa.Column("last_message_at", _TS, nullable=True))
    op.add_column(
        "conversations",
        sa.Column("encrypted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "message_edits",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column(
            "message_id",
            sa.String(64),
            sa.ForeignKey(
                "messages.id", ondelete="CASCADE", name="fk_message_edits_message_id_messages"
            ),
            nullable=False,
        ),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_message_edits_message_id", "message_edits", ["message_id"])
    op.create_table(
        "read_markers",
        sa.Column(
            "conversation_id",
            sa.String(64),
            sa.ForeignKey(
                "conversations.id",
                ondelete="CASCADE",
                name="fk_read_markers_conversation_id_conversations",
            ),
            primary_key=True,
        ),
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("up_to_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("read_markers")
    op.drop_table("message_edits")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("encrypted")
        batch.drop_column("last_message_at")
    op.drop_index("ix_messages_pending", "messages")
    with op.batch_alter_table("messages") as batch:
        for column in ("pending", "deleted_at", "edited_at", "revision"):
            batch.drop_column(column)
