"""Roster: institutions, users, memberships, courses, batches, enrollments, teaching; people
search words; the profile sync queue.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.String(255)
_C_STRING = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
_C_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _fk(column: str, target: str, **kwargs: object) -> sa.Column:
    return sa.Column(
        column,
        _ID,
        sa.ForeignKey(
            target,
            ondelete="CASCADE",
            name=f"fk_{kwargs.pop('table')}_{column}_{target.split('.')[0]}",
        ),
        **kwargs,  # type: ignore[arg-type]
    )


def upgrade() -> None:
    op.create_table(
        "institutions",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("region", sa.String(8), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("name_key", sa.Text, nullable=False),
        sa.Column("avatar_url", sa.Text, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("availability", sa.Text, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "memberships",
        _fk("institution_id", "institutions.id", table="memberships", primary_key=True),
        _fk("user_id", "users.id", table="memberships", primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
    )
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"])
    op.create_table(
        "courses",
        sa.Column("id", _ID, primary_key=True),
        _fk("institution_id", "institutions.id", table="courses", nullable=False),
        sa.Column("title", sa.Text, nullable=False),
    )
    op.create_index("ix_courses_institution_id", "courses", ["institution_id"])
    op.create_table(
        "batches",
        sa.Column("id", _ID, primary_key=True),
        _fk("course_id", "courses.id", table="batches", nullable=False),
        sa.Column("title", sa.Text, nullable=False),
    )
    op.create_index("ix_batches_course_id", "batches", ["course_id"])
    for name in ("enrollments", "teaching"):
        op.create_table(
            name,
            _fk("batch_id", "batches.id", table=name, primary_key=True),
            _fk("user_id", "users.id", table=name, primary_key=True),
            sa.Column("begins_at", _TS, nullable=True),
            sa.Column("ends_at", _TS, nullable=True),
        )
        op.create_index(f"ix_{name}_user_id", name, ["user_id"])
    op.create_table(
        "contact_words",
        sa.Column("institution_id", _ID, primary_key=True),
        sa.Column("role", sa.String(16), primary_key=True),
        sa.Column("is_first", sa.Boolean, primary_key=True),
        sa.Column("word", _C_STRING, primary_key=True),
        sa.Column("name_key", _C_TEXT, primary_key=True),
        sa.Column("user_id", _ID, primary_key=True),
    )
    op.create_index("ix_contact_words_user_id", "contact_words", ["user_id"])
    op.create_table(
        "profile_sync_queue",
        sa.Column("user_id", _ID, primary_key=True),
        sa.Column("queued_at", _TS, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "profile_sync_queue",
        "contact_words",
        "teaching",
        "enrollments",
        "batches",
        "courses",
        "memberships",
        "users",
        "institutions",
    ):
        op.drop_table(name)
