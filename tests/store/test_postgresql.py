"""What the store does for PostgreSQL in particular: reads keep the driver's prepared
statements and run without a transaction of their own; a connection the server closed while it
sat idle is replaced before a unit of work uses it; a roster table filled with a few hundred
rows by one import gets planner statistics at once (without them PostgreSQL plans it as
near-empty)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Connection, text

import bridge.store.database as database_module
from bridge.domain.roster import CoursePut, InstitutionPut
from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.roster import RosterRepository
from tests.conftest import PG_ADMIN_URL

_ANSWER = text("SELECT CAST(:n AS integer) + 1 AS answer")


def _prepared_here(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one())


async def test_reads_keep_the_statements_the_driver_prepared(pg_db: Database) -> None:
    # The driver prepares a statement after a few runs on a connection; ending each read with a
    # rollback made it forget them all, so every query was planned afresh.
    for n in range(20):
        assert await pg_db.scalar(_ANSWER, {"n": n}) == n + 1
    assert await pg_db.read(_prepared_here) >= 1


async def test_a_read_runs_each_statement_on_its_own(pg_db: Database) -> None:
    def two_statements(conn: Connection) -> bool:
        conn.execute(text("SELECT pg_sleep(0.01)"))
        return bool(
            conn.execute(text("SELECT transaction_timestamp() = statement_timestamp()")).scalar()
        )

    # No transaction spans the read's statements: the second one began its own.
    assert await pg_db.read(two_statements) is True

    def write_two(conn: Connection) -> bool:
        return not two_statements(conn)

    # A write is still one transaction.
    assert await pg_db.write(write_two) is True


async def test_a_connection_closed_by_the_server_while_idle_is_replaced(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every checkout counts as after a long idle time, as after a database restart at night.
    monkeypatch.setattr(database_module, "_PING_AFTER_IDLE_SECONDS", 0.0)
    backend = await pg_db.scalar(text("SELECT pg_backend_pid()"))
    async with await psycopg.AsyncConnection.connect(PG_ADMIN_URL, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s, 10000)", [backend])

    assert await pg_db.scalar(_ANSWER, {"n": 41}) == 42
    assert await pg_db.scalar(text("SELECT pg_backend_pid()")) != backend


async def test_a_roster_table_filled_by_one_import_has_statistics(pg_db: Database) -> None:
    await migrate.upgrade(pg_db)
    courses = [CoursePut(f"c{n}", "inst", f"Course {n}") for n in range(800)]
    await RosterRepository(pg_db).apply(
        [InstitutionPut("inst", "Institute"), *courses], datetime(2026, 9, 1, tzinfo=UTC)
    )

    analysed = text("SELECT count(*) FROM pg_stats WHERE tablename = 'courses'")
    assert await pg_db.scalar(analysed) > 0
