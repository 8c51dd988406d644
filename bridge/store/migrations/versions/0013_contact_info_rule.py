"""The contact-info rule of each institution, and the Matrix events it removed.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("institutions") as batch:
        batch.add_column(sa.Column("contact_info_rule", sa.String(8), nullable=True))
    op.create_table(
        "blocked_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blocked_events")
    with op.batch_alter_table("institutions") as batch:
        batch.drop_column("contact_info_rule")
