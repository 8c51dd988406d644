"""The database layer's SQL helpers (both databases): rows written through `insert_rows` are
stored exactly as SQLAlchemy's own execution stores them, dates, flags and empty values
included, and its upserts replace or keep what is stored; `one_of` and `one_of_bound` find
what an IN list finds, for any number of values."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Text, cast, select

from bridge.store import migrate
from bridge.store.bulk import insert_rows
from bridge.store.database import Database, one_of, one_of_bound
from bridge.store.schema import contact_words, enrollments, users

WHEN = datetime(2026, 9, 1, 8, 30, 15, 123456, tzinfo=UTC)


_WORD_COLUMNS = ("institution_id", "role", "is_first", "word", "name_key", "user_id")
_COLUMNS = ("id", "display_name", "name_key", "active", "updated_at", "avatar_url")


def _row(user: dict[str, object]) -> tuple[object, ...]:
    return tuple(user[c] for c in _COLUMNS)


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
        insert_rows(conn, users, _COLUMNS, [_row(u) for u in many])
        for row in single:
            conn.execute(users.insert(), row)
        insert_rows(conn, enrollments, ("batch_id", "user_id"), [])  # nothing: no statement

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
    rows = [_row(_user(n)) for n in range(30)]
    await db.write(lambda conn: insert_rows(conn, users, _COLUMNS, rows))
    by_values = select(users.c.id)
    bound = select(users.c.id).where(one_of_bound(users.c.id, "ids", db.dialect))

    for wanted in ([], ["u3"], ["u1", "u2", "nobody", "u2"], [f"u{n}" for n in range(0, 40, 3)]):
        expected = {w for w in wanted if w in {f"u{n}" for n in range(30)}}
        query = by_values.where(one_of(users.c.id, wanted, db.dialect))
        assert {r.id for r in await db.rows(query)} == expected
        assert {r.id for r in await db.rows(bound, {"ids": wanted})} == expected


async def test_an_upsert_replaces_the_other_columns_or_keeps_the_row(db: Database) -> None:
    await migrate.upgrade(db)
    await db.write(
        lambda conn: insert_rows(conn, users, _COLUMNS, [_row(_user(1)), _row(_user(2))])
    )
    renamed = _user(1, display_name="Renamed", active=True, avatar_url="mxc://x/y")
    again = [_row(renamed), _row(_user(3))]
    await db.write(lambda conn: insert_rows(conn, users, _COLUMNS, again, ["id"]))
    rows = {r.id: r for r in await db.rows(select(users))}
    assert sorted(rows) == ["u1", "u2", "u3"]
    assert (rows["u1"].display_name, rows["u1"].active, rows["u1"].avatar_url) == (
        "Renamed",
        True,
        "mxc://x/y",
    )
    assert (rows["u2"].display_name, rows["u2"].active) == ("Person 2", True)

    # Keys alone: a stored row stays as it is, a new one is added.
    word = ("i1", "student", True, "person", "person 1", "u1")
    for words in ([word], [word, (*word[:5], "u2")]):
        await db.write(
            lambda conn, words=words: insert_rows(
                conn, contact_words, _WORD_COLUMNS, words, _WORD_COLUMNS
            )
        )
    stored = await db.rows(select(contact_words.c.user_id).order_by(contact_words.c.user_id))
    assert [r.user_id for r in stored] == ["u1", "u2"]
