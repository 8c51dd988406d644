"""Table definitions (SQLAlchemy Core). Migrations under `migrations/` create them; repositories
are the only code that queries them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Sequence = BigInteger().with_variant(Integer(), "sqlite")

# Transaction ids recently received from the homeserver, with a fingerprint of their events so
# that a reused id after a homeserver restart is not mistaken for a resend.
appservice_transactions = Table(
    "appservice_transactions",
    metadata,
    Column("txn_id", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
)

# Every event received from the homeserver, written before the transaction is acknowledged and
# processed afterwards, in `seq` order within each room.
inbound_events = Table(
    "inbound_events",
    metadata,
    Column("seq", Sequence, primary_key=True, autoincrement=True),
    Column("event_id", String(255), nullable=True, unique=True),
    Column("room_id", String(255), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("event_type", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("failed", Boolean, nullable=False, default=False),
    Column("last_error", Text, nullable=True),
    Index("ix_inbound_events_pending", "processed_at", "failed", "seq"),
)

# Bridged Matrix accounts and the profile last written to each.
matrix_accounts = Table(
    "matrix_accounts",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("platform_id", String(1024), nullable=False, unique=True),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("display_name", Text, nullable=True),
    Column("avatar_source", Text, nullable=True),
    Column("avatar_mxc", Text, nullable=True),
    Column("profile_synced_at", DateTime(timezone=True), nullable=True),
)
