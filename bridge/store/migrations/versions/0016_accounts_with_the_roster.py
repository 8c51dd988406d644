"""People already on the roster without a Matrix account are queued for one: accounts are now
made when the roster names a person, not when someone first writes to them.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_users = sa.table("users", sa.column("id", sa.String))
_accounts = sa.table("matrix_accounts", sa.column("platform_id", sa.String))
_queue = sa.table(
    "profile_sync_queue",
    sa.column("user_id", sa.String),
    sa.column("queued_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    without_account = (
        sa.select(_users.c.id, sa.literal(datetime.now(UTC), sa.DateTime(timezone=True)))
        .where(~sa.exists().where(_accounts.c.platform_id == _users.c.id))
        .where(~sa.exists().where(_queue.c.user_id == _users.c.id))
    )
    op.execute(sa.insert(_queue).from_select(["user_id", "queued_at"], without_account))


def downgrade() -> None:
    pass  # the queue only asks for work that is harmless to do
