"""Files carried by messages, and reactions.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("messages", sa.Column("attachment_kind", sa.String(16), nullable=True))
    op.add_column("messages", sa.Column("attachment_mxc", sa.String(512), nullable=True))
    op.add_column("messages", sa.Column("attachment_name", sa.String(255), nullable=True))
    op.add_column("messages", sa.Column("attachment_size", sa.BigInteger, nullable=True))
    op.add_column("messages", sa.Column("attachment_mimetype", sa.String(255), nullable=True))
    op.create_table(
        "reactions",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column(
            "message_id",
            sa.String(64),
            sa.ForeignKey(
                "messages.id", ondelete="CASCADE", name="fk_reactions_message_id_messages"
            ),
            nullable=False,
            index=True,
        ),
        sa.Column("sender", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("removed_at", _TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("reactions")
    with op.batch_alter_table("messages") as table:
        for column in (
            "attachment_mimetype",
            "attachment_size",
            "attachment_name",
            "attachment_mxc",
            "attachment_kind",
        ):
            table.drop_column(column)
