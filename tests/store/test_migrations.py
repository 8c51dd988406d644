"""Migrations on SQLite and PostgreSQL: applied once, in step with the schema, newer refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, select, text

from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.schema import matrix_accounts, metadata, profile_sync_queue, users


async def test_upgrade_creates_the_schema_once(db: Database) -> None:
    assert await migrate.current_revision(db) is None
    assert await migrate.upgrade(db) == (None, migrate.head_revision())
    assert await migrate.upgrade(db) == (migrate.head_revision(), migrate.head_revision())
    assert await migrate.current_revision(db) == migrate.head_revision()


async def test_migrated_tables_match_the_declared_schema(db: Database) -> None:
    await migrate.upgrade(db)

    def differences(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    assert await db.read(differences) == []


async def test_a_schema_newer_than_the_code_is_refused(db: Database) -> None:
    await migrate.upgrade(db)
    await db.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(migrate.SchemaTooNew, match="migrated by a newer bridge"):
        await migrate.upgrade(db)
    with pytest.raises(migrate.SchemaTooNew):
        await migrate.check_known(db)


async def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite+pysqlite:///{tmp_path / 'x.db'}")
    try:
        assert await db.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await db.scalar(text("PRAGMA foreign_keys")) == 1
        assert await db.scalar(text("PRAGMA synchronous")) == 2  # FULL
    finally:
        await db.close()


async def test_people_on_the_roster_without_an_account_are_queued_for_one(db: Database) -> None:
    def upgrade_to(revision: str) -> Callable[[Connection], None]:
        return lambda conn: command.upgrade(migrate._alembic_config(conn), revision)

    await db.write(upgrade_to("0015"))
    now = datetime.now(UTC)

    def people(conn: Connection) -> None:
        for person in ("with-account", "without-account"):
            conn.execute(
                users.insert().values(
                    id=person, display_name=person, name_key=person, active=True, updated_at=now
                )
            )
        conn.execute(
            matrix_accounts.insert().values(
                user_id="@_lms_with-account:test.local",
                platform_id="with-account",
                registered_at=now,
            )
        )

    await db.write(people)
    await db.write(upgrade_to("head"))
    queued = await db.rows(select(profile_sync_queue.c.user_id))
    assert [r.user_id for r in queued] == ["without-account"]
