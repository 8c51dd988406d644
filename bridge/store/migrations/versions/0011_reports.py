"""Reports of messages, and how far the homeserver's report list has been read.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("reporter", sa.String(255), nullable=True),
        sa.Column(
            "message_id",
            sa.String(64),
            sa.ForeignKey("messages.id", ondelete="CASCADE", name="fk_reports_message_id_messages"),
            nullable=True,
        ),
        sa.Column("conversation_id", sa.String(64), nullable=True),
        sa.Column("reported_user", sa.String(255), nullable=True, index=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("filed_at", _TS, nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("room_id", sa.String(255), nullable=True),
        sa.Column("event_id", sa.String(255), nullable=True),
        sa.Column("reporter_matrix_id", sa.String(255), nullable=True),
        sa.Column("reported_matrix_id", sa.String(255), nullable=True),
        sa.Column("homeserver_report_id", sa.BigInteger, nullable=True, unique=True),
        sa.Column("homeserver_user_report_id", sa.BigInteger, nullable=True, unique=True),
        sa.Column("dismissed_at", _TS, nullable=True),
    )
    op.create_table(
        "report_poll",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_event_report_id", sa.BigInteger, nullable=False),
        sa.Column("last_user_report_id", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_reports_message_id", "reports", ["message_id"])
    op.create_index(
        "uq_reports_open_reporter_message",
        "reports",
        ["reporter", "message_id"],
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    )


def downgrade() -> None:
    op.drop_table("report_poll")
    op.drop_table("reports")
