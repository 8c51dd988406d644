"""The moderators' admin room, report cards, reaction prompts and suspensions.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _report_fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey("reports.id", ondelete="CASCADE", name=f"fk_{table}_report_id_reports")


def upgrade() -> None:
    op.create_table(
        "admin_room",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "report_cards",
        sa.Column("report_id", sa.String(64), _report_fk("report_cards"), primary_key=True),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False, unique=True),
        sa.Column("shown_state", sa.String(16), nullable=False),
        sa.Column("posted_at", _TS, nullable=False),
    )
    op.create_table(
        "card_prompts",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("report_id", sa.String(64), _report_fk("card_prompts"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("moderator", sa.String(255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("answered_at", _TS, nullable=True),
    )
    op.create_table(
        "suspensions",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("until", _TS, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("moderator", sa.String(255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("lifted_at", _TS, nullable=True),
        sa.Column("homeserver_suspended", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("suspensions")
    op.drop_table("card_prompts")
    op.drop_table("report_cards")
    op.drop_table("admin_room")
