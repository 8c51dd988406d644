"""The text of each edit and of the original, so a redacted edit can be undone.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Edits stored before this have no text: undoing one of them keeps the message as it is.
    op.add_column("message_edits", sa.Column("body", sa.Text, nullable=True))
    op.add_column("message_edits", sa.Column("html", sa.Text, nullable=True))
    op.add_column("message_edits", sa.Column("format", sa.String(16), nullable=True))
    op.add_column("message_edits", sa.Column("redacted_at", sa.DateTime(timezone=True)))
    op.add_column("messages", sa.Column("original_body", sa.Text, nullable=True))
    op.add_column("messages", sa.Column("original_html", sa.Text, nullable=True))
    op.add_column("messages", sa.Column("original_format", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as table:
        table.drop_column("original_format")
        table.drop_column("original_html")
        table.drop_column("original_body")
    with op.batch_alter_table("message_edits") as table:
        table.drop_column("redacted_at")
        table.drop_column("format")
        table.drop_column("html")
        table.drop_column("body")
