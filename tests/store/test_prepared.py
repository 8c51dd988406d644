"""Prepared statements (both databases): what they read is what SQLAlchemy's own execution
reads, types converted both ways; driver errors are SQLAlchemy's exceptions; statements are
counted; a lost PostgreSQL connection is given up and the next unit works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, DateTime, bindparam, create_engine, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from bridge.store import migrate, prepared
from bridge.store.database import Database
from bridge.store.schema import users

WHEN = datetime(2026, 9, 1, 8, 30, 15, 123456, tzinfo=UTC)

_ACTIVE_BY_ID = select(users).where(users.c.id == bindparam("id"), users.c.active.is_(True))
_ALL = select(users.c.id, users.c.updated_at, users.c.active).order_by(users.c.id)
_CHANGED_SINCE = text(
    "SELECT id, display_name AS name FROM users WHERE updated_at >= :since "
    "AND (updated_at < :since OR active) ORDER BY id"
).bindparams(bindparam("since", type_=DateTime(timezone=True)))
_RENAME = update(users).where(users.c.id == bindparam("user")).values(display_name=bindparam("n"))
_ADD = users.insert()
_DOTTED = select(users.c.id).where(users.c.id == bindparam("user.id"))
_EXPANDING = select(users.c.id).where(users.c.id.in_(bindparam("ids", expanding=True)))


def _user(n: int, *, active: bool = True) -> dict[str, object]:
    return {
        "id": f"u{n}",
        "display_name": f"Person {n}",
        "name_key": f"person {n}",
        "active": active,
        "updated_at": WHEN + timedelta(seconds=n),
        "avatar_url": None,
        "availability": None,
    }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _people(db: Database) -> None:
    await migrate.upgrade(db)
    await db.write(lambda conn: conn.execute(_ADD, [_user(n, active=n != 2) for n in range(4)]))


async def test_rows_read_as_sqlalchemy_reads_them(db: Database) -> None:
    await _people(db)

    def both(conn: Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        return (
            [tuple(row) for row in conn.execute(_ALL).all()],
            [tuple(row) for row in prepared.all_rows(conn, _ALL, {})],
        )

    ours, theirs = await db.read(both)
    assert theirs == ours
    assert [type(value) for value in theirs[0]] == [str, datetime, bool]

    row = await db.read(lambda conn: prepared.first(conn, _ACTIVE_BY_ID, {"id": "u1"}))
    assert (row.id, row.display_name, row.active, row.avatar_url) == ("u1", "Person 1", True, None)
    assert _aware(row.updated_at) == WHEN + timedelta(seconds=1)
    assert row[0] == "u1"  # by position too
    # The literal True written into the statement is bound on every run.
    assert await db.read(lambda conn: prepared.first(conn, _ACTIVE_BY_ID, {"id": "u2"})) is None
    assert await db.read(lambda conn: prepared.scalar(conn, _ACTIVE_BY_ID, {"id": "u3"})) == "u3"
    # A name the statement's text spells otherwise (PostgreSQL's named style) still binds.
    assert await db.read(lambda conn: prepared.scalar(conn, _DOTTED, {"user.id": "u2"})) == "u2"


async def test_textual_sql_converts_a_typed_parameter_used_twice(db: Database) -> None:
    await _people(db)
    since = WHEN + timedelta(seconds=1)

    def read(conn: Connection) -> list[tuple[object, ...]]:
        return [tuple(r) for r in prepared.all_rows(conn, _CHANGED_SINCE, {"since": since})]

    assert await db.read(read) == [("u1", "Person 1"), ("u3", "Person 3")]
    rows = await db.read(lambda conn: prepared.all_rows(conn, _CHANGED_SINCE, {"since": since}))
    assert [row.name for row in rows] == ["Person 1", "Person 3"]


async def test_a_change_counts_its_rows_and_every_statement_is_counted(db: Database) -> None:
    await _people(db)
    before = db.stats.statements
    changed = await db.write(
        lambda conn: prepared.execute(conn, _RENAME, {"user": "u0", "n": "Renamed"})
    )
    missing = await db.write(
        lambda conn: prepared.execute(conn, _RENAME, {"user": "nobody", "n": "x"})
    )
    assert (changed, missing) == (1, 0)
    assert db.stats.statements - before == 2
    row = await db.first(select(users.c.display_name).where(users.c.id == "u0"))
    assert row is not None and row.display_name == "Renamed"


async def test_driver_errors_are_sqlalchemys_and_the_unit_rolls_back(db: Database) -> None:
    await _people(db)

    def duplicate(conn: Connection) -> None:
        prepared.execute(conn, _RENAME, {"user": "u1", "n": "Not kept"})
        prepared.execute(conn, _ADD, _user(1))

    with pytest.raises(IntegrityError):
        await db.write(duplicate)
    row = await db.first(select(users.c.display_name).where(users.c.id == "u1"))
    assert row is not None and row.display_name == "Person 1"


async def test_what_it_cannot_run_faithfully_is_refused_by_name(db: Database) -> None:
    await _people(db)
    with pytest.raises(ValueError, match="expand"):
        await db.read(lambda conn: prepared.all_rows(conn, _EXPANDING, {"ids": ["u1"]}))
    with pytest.raises(ValueError, match="'id'"):
        await db.read(lambda conn: prepared.first(conn, _ACTIVE_BY_ID, {}))


async def test_a_lost_postgresql_connection_is_given_up(pg_db: Database) -> None:
    db = pg_db
    await _people(db)
    backend = await db.read(lambda conn: conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
    other = create_engine(db.url)
    with other.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
    other.dispose()

    # The next unit takes the same connection (the pool's most recent, used a moment ago).
    with pytest.raises(DBAPIError) as lost:
        await db.read(lambda conn: prepared.first(conn, _ACTIVE_BY_ID, {"id": "u1"}))
    assert lost.value.connection_invalidated
    row = await db.read(lambda conn: prepared.first(conn, _ACTIVE_BY_ID, {"id": "u1"}))
    assert row is not None and row.id == "u1"
