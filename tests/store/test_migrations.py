"""Migrations on SQLite and PostgreSQL: applied once, in step with the schema, newer refused."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.schema import metadata


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
