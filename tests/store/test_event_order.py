"""On PostgreSQL, events become visible in `seq` order even when transactions overlap.

A sequence hands out `seq` at insert time, but a row is visible only from its commit: without
ordering the commits, a reader (and the webhook cursor) could see seq 2 before seq 1 and never
look back. SQLite has a single writer, so only PostgreSQL needs this proof.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, text

from bridge.contract.events import ConversationStateChanged
from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.events import EventLogRepository, append_event
from tests.support.waiting import eventually


def _numbered(n: int) -> ConversationStateChanged:
    """An event that says which it is."""
    return ConversationStateChanged("c", "active", "test", str(n))


@pytest.fixture
async def pg(pg_db: Database) -> Database:
    await migrate.upgrade(pg_db)
    return pg_db


async def test_a_later_event_waits_for_an_earlier_uncommitted_one(pg: Database) -> None:
    log = EventLogRepository(pg)
    now = datetime.now(UTC)

    first_appended = threading.Event()
    commit_first = threading.Event()

    def first(conn: Connection) -> None:
        append_event(conn, _numbered(1), now)
        first_appended.set()
        commit_first.wait(10)

    earlier = asyncio.create_task(pg.write(first))
    await asyncio.to_thread(first_appended.wait, 10)
    later = asyncio.create_task(pg.write(lambda conn: append_event(conn, _numbered(2), now)))

    async def second_waits_for_the_lock() -> bool:
        waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return bool(await pg.scalar(waiting))

    await eventually(second_waits_for_the_lock, "the second append waiting for the log's lock")
    assert not later.done()  # it waits for the first to commit
    assert await log.after(0, 10) == []
    commit_first.set()
    await earlier
    await later
    assert [e.data["reason"] for e in await log.after(0, 10)] == ["1", "2"]
