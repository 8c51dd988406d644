"""The database layer's units of work: what they count, and on SQLite that a writing unit holds
the write lock from its start while a reading one takes no lock at all."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, select, text
from sqlalchemy.exc import IntegrityError

from bridge.store import migrate
from bridge.store.bulk import insert_rows
from bridge.store.database import Database
from bridge.store.schema import institutions
from tests.support.waiting import eventually

NOW = datetime(2026, 9, 1, tzinfo=UTC)


async def test_the_counts_name_each_statement_read_and_write(db: Database) -> None:
    await migrate.upgrade(db)
    before = (db.stats.statements, db.stats.reads, db.stats.writes)

    def write(conn: Connection) -> None:
        conn.execute(institutions.insert().values(id="i1", name="One", updated_at=NOW))
        # many rows in one driver call are one statement
        more = [(f"i{n}", "N", NOW) for n in (2, 3)]
        insert_rows(conn, institutions, ("id", "name", "updated_at"), more)

    await db.write(write)
    assert await db.scalar(select(institutions.c.name).where(institutions.c.id == "i1")) == "One"
    assert await db.rows(select(institutions.c.id)) != []
    after = (db.stats.statements, db.stats.reads, db.stats.writes)
    # 2 statements in the write (its BEGIN is not the bridge's own), 1 in each read
    assert [b - a for a, b in zip(before, after, strict=True)] == [4, 2, 1]


def test_no_listener_slows_every_statement(db: Database) -> None:
    # A listener on the connection's events sends each statement, begin and commit through
    # SQLAlchemy's event-dispatching path, a cost paid by every unit of work.
    assert not db.engine._has_events


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    path = tmp_path / "bridge.db"
    database = Database(f"sqlite:///{path}")
    await migrate.upgrade(database)
    yield database, path
    await database.close()


def _other_process_may_write(path: Path) -> bool:
    """Whether another connection (as another process would) gets the write lock at once."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
        return False
    finally:
        other.close()


@pytest.mark.parametrize("writing", [True, False])
async def test_a_writing_unit_holds_sqlite_write_lock_from_its_start(
    sqlite_db: tuple[Database, Path], writing: bool
) -> None:
    db, path = sqlite_db
    inside, release = threading.Event(), threading.Event()

    def unit(conn: Connection) -> None:
        conn.execute(text("SELECT 1"))  # reads first, as a read-then-write unit does
        inside.set()
        assert release.wait(10)

    running = asyncio.ensure_future(db.write(unit) if writing else db.read(unit))
    try:
        assert await asyncio.to_thread(inside.wait, 10)
        assert _other_process_may_write(path) is not writing
    finally:
        release.set()
        await running
    assert _other_process_may_write(path)


async def test_units_that_finish_together_each_answer_their_own_task(db: Database) -> None:
    # Results that reach the event loop in one wake-up still go to the task that asked; a task
    # that stopped waiting, or a unit that failed, leaves the others' answers alone.
    await migrate.upgrade(db)
    release, all_ran = threading.Event(), threading.Event()

    def held(conn: Connection) -> int:
        release.wait(10)  # the others queue up behind it
        return conn.execute(text("SELECT 0")).scalar_one()

    def failing(conn: Connection) -> int:
        conn.execute(text("SELECT no_such_column FROM institutions"))
        return -1

    def select(n: int) -> Callable[[Connection], int]:
        return lambda conn: conn.execute(text(f"SELECT {n}")).scalar_one()

    queued = 0

    async def read(work: Callable[[Connection], Any]) -> Any:
        nonlocal queued
        unit = db.read(work)
        queued += 1  # the unit is queued in this same step, before `unit` first waits
        return await unit

    first = asyncio.ensure_future(read(held))
    given_up = asyncio.ensure_future(read(held))  # held too: it can't end before it is given up
    asked = [asyncio.ensure_future(read(select(n))) for n in range(1, 21)]
    broken = asyncio.ensure_future(read(failing))
    last = asyncio.ensure_future(read(lambda conn: all_ran.set()))

    async def all_queued() -> bool:
        return queued == 24

    await eventually(all_queued, "every unit queued")
    given_up.cancel()
    release.set()
    # Held here, the event loop can't take any answer before the last unit has run: they
    # all come back in one wake-up.
    assert all_ran.wait(10)
    answers = asyncio.gather(first, *asked, last)
    assert await asyncio.wait_for(answers, 10) == [0, *range(1, 21), None]
    with pytest.raises(Exception, match="no_such_column"):
        await broken
    assert given_up.cancelled()
    assert await db.scalar(text("SELECT 7")) == 7  # the threads go on serving


async def test_sqlite_keeps_its_connection_open_between_units(
    sqlite_db: tuple[Database, Path],
) -> None:
    # Checking SQLite's one connection out of the pool and back cost as much as a short query.
    db, _ = sqlite_db
    checkouts: list[object] = []
    event.listen(db.engine, "checkout", lambda *_: checkouts.append(None))

    def failing_write(conn: Connection) -> None:
        conn.execute(institutions.insert().values(id="i1", name="One", updated_at=NOW))
        conn.execute(institutions.insert().values(id="i1", name="Again", updated_at=NOW))

    with pytest.raises(IntegrityError):
        await db.write(failing_write)
    await db.execute(institutions.insert().values(id="i2", name="Two", updated_at=NOW))
    # The failed unit was rolled back whole, and the connection serves the next units.
    assert [r.id for r in await db.rows(select(institutions.c.id))] == ["i2"]
    assert checkouts == []
