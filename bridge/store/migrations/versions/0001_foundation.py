"""Foundation: inbound appservice events, transaction ids, bridged accounts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "appservice_transactions",
        sa.Column("txn_id", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
    )
    op.create_index(
        "ix_appservice_transactions_received_at", "appservice_transactions", ["received_at"]
    )
    op.create_table(
        "inbound_events",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(255), nullable=True, unique=True),
        sa.Column("room_id", sa.String(255), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("processed_at", _TS, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("failed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_inbound_events_pending", "inbound_events", ["processed_at", "failed", "seq"]
    )
    op.create_table(
        "matrix_accounts",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("platform_id", sa.String(1024), nullable=False, unique=True),
        sa.Column("registered_at", _TS, nullable=False),
        sa.Column("display_name", sa.Text, nullable=True),
        sa.Column("avatar_source", sa.Text, nullable=True),
        sa.Column("avatar_mxc", sa.Text, nullable=True),
        sa.Column("profile_synced_at", _TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("matrix_accounts")
    op.drop_index("ix_inbound_events_pending", table_name="inbound_events")
    op.drop_table("inbound_events")
    op.drop_index("ix_appservice_transactions_received_at", table_name="appservice_transactions")
    op.drop_table("appservice_transactions")
