"""The database layer's SQL helpers (both databases): rows written through `execute_many` are
stored exactly as SQLAlchemy's own execution stores them, dates, flags and empty values
included; `one_of` and `one_of_bound` find what an IN list finds, for any number of values."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Text, cast, select

from bridge.store import migrate
from bridge.store.database import Database, execute_many, one_of, one_of_bound
from bridge.store.schema import enrollments, users

WHEN = datetime(2026, 9, 1, 8, 30, 15, 123456, tzinfo=UTC)


def _user(n: int, **extra: object) -> dict[str, object]:
    return {
        "id": f"u{n}",
        "display_name": f"Person {n}",
        "name_key": f"person {n}",
        "active": n % 2 == 0,
        "updated_at": WHEN + timedelta(seconds=n),
        "avatar_url": None,
        **extra,
    }


async def test_rows_read_back_the_same_as_rows_written_one_by_one(db: Database) -> None:
    await migrate.upgrade(db)
    many = [_user(n) for n in range(0, 50)]
    single = [_user(n) for n in range(50, 100)]

    def write(conn: Connection) -> None:
        execute_many(conn, users.insert(), many)
        for row in single:
            conn.execute(users.insert(), row)
        execute_many(conn, enrollments.insert(), [])  # nothing to write is no statement

    await db.write(write)

    rows = await db.rows(select(users).order_by(users.c.updated_at))
    assert len(rows) == 100
    for row, written in zip(rows, [*many, *single], strict=True):
        assert row.id == written["id"]
        assert row.active is written["active"]
        assert row.avatar_url is None
        stored = row.updated_at
        assert stored.replace(tzinfo=stored.tzinfo or UTC) == written["updated_at"]

    # Stored in one form: the text of a moment has the same shape however it was written.
    def shape(conn: Connection, user_id: str) -> str:
        stored = conn.execute(
            select(cast(users.c.updated_at, Text)).where(users.c.id == user_id)
        ).scalar_one()
        return re.sub(r"[0-9]", "9", stored)

    assert await db.read(lambda conn: shape(conn, "u0")) == await db.read(
        lambda conn: shape(conn, "u50")
    )

    # Compared as the database compares them: a bound moment orders both kinds of rows alike.
    middle = WHEN + timedelta(seconds=25)
    later = await db.scalar(
        select(users.c.id).where(users.c.updated_at > middle).order_by(users.c.updated_at),
    )
    assert later == "u26"
    later_single = await db.scalar(
        select(users.c.id)
        .where(users.c.updated_at > WHEN + timedelta(seconds=75))
        .order_by(users.c.updated_at)
    )
    assert later_single == "u76"


async def test_one_of_finds_what_an_in_list_finds(db: Database) -> None:
    await migrate.upgrade(db)
    await db.write(lambda conn: execute_many(conn, users.insert(), [_user(n) for n in range(30)]))
    by_values = select(users.c.id)
    bound = select(users.c.id).where(one_of_bound(users.c.id, "ids", db.dialect))

    for wanted in ([], ["u3"], ["u1", "u2", "nobody", "u2"], [f"u{n}" for n in range(0, 40, 3)]):
        expected = {w for w in wanted if w in {f"u{n}" for n in range(30)}}
        query = by_values.where(one_of(users.c.id, wanted, db.dialect))
        assert {r.id for r in await db.rows(query)} == expected
        assert {r.id for r in await db.rows(bound, {"ids": wanted})} == expected
