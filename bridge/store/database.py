"""The database: SQLite (WAL, foreign keys on) or PostgreSQL, behind one async interface.

Repositories hand the database a *unit of work*, a plain function of a connection that runs all
its statements, and await the result: `await db.read(work)` or `await db.write(work)` (one
transaction, committed before the await returns). Each unit runs whole on a database thread, so
it costs one hand-off between the event loop and the driver, however many statements it runs.
(An async driver hands off every statement, its fetch and the connection's reset separately,
which made the hand-offs, not the database, most of the bridge's cost per message.)

SQLite gets one thread and one connection: it has one writer anyway, and one connection avoids
"database is locked" between our own units. PostgreSQL gets a thread per pooled connection.
The threads take units from one queue, and results that finish while the event loop has not yet
woken for an earlier one share its wake-up: under load a hand-off costs a fraction of a thread
pool's, whose every result wakes the loop on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Executable,
    Row,
    Text,
    TypeDecorator,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import StaticPool

from bridge.store.prepared import prepare_connection

T = TypeVar("T")


@dataclass
class DatabaseStats:
    """What the database has done since start (for metrics and benchmarks)."""

    statements: int = 0  # the bridge's own statements (not the BEGIN the database adds)
    reads: int = 0  # units of work that only read
    writes: int = 0  # units that wrote: a commit each
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, statements: int = 0, reads: int = 0, writes: int = 0) -> None:
        """Add to the counts (from any database thread)."""
        with self._lock:
            self.statements += statements
            self.reads += reads
            self.writes += writes


_POSTGRESQL_CONNECTIONS = 10
_SQLITE_CACHE_KIB = 16 * 1024
_PING_AFTER_IDLE_SECONDS = 1.0
_LAST_USED = "last_used"  # on a pooled PostgreSQL connection's record: when it was checked in


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        # One connection, used only by the database thread (an in-memory database lives in it);
        # every unit ends its own transaction, so nothing needs resetting between units.
        poolclass=StaticPool,
        pool_reset_on_return=None,
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_connected)
    return engine


def _sqlite_connected(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling begins lazily, only before data changes; the bridge
    # begins each writing unit itself (see `Database._unit`), so a write is one transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # FULL: a transaction acknowledged to the homeserver must survive even a power cut, as the
    # homeserver will never send it again.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # 16 MiB of pages in memory, not SQLite's 2: a roster of a large institution no longer
    # fits the default, and bulk writes into its indexes slowed by a third.
    cursor.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
    cursor.close()


def _postgresql_engine(url: str) -> Engine:
    # Last in, first out: a quiet bridge keeps reusing the same few connections, whose
    # prepared statements and plans are warm, rather than cycling through all of them.
    engine = create_engine(
        url, pool_size=_POSTGRESQL_CONNECTIONS, max_overflow=0, pool_use_lifo=True
    )
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _note_use)
    return engine


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    # A connection idle for a while may have been closed by a database restart: check it
    # before use (the pool then takes a fresh one). A busy connection is not checked on each
    # use, which would cost one more round trip per unit of work.
    if time.monotonic() - record.info.get(_LAST_USED, 0.0) < _PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.commit()  # not a rollback: it would drop the prepared statements
    except Exception as error:
        raise DisconnectionError(f"connection lost while idle: {error}") from error


def _note_use(_dbapi_connection: Any, record: Any) -> None:
    record.info[_LAST_USED] = time.monotonic()


class _JsonList(TypeDecorator[list[Any]]):
    """A list bound as one JSON text (for SQLite's `json_each`)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(list(value))


def _listed(column: ColumnElement[Any], parameter: BindParameter[Any], dialect: str) -> Any:
    if dialect == "postgresql":
        return column == any_(parameter)
    # SQLite: the list is one JSON parameter that `json_each` unpacks. An expanding IN list
    # binds every value apart: SQLAlchemy rewrites the statement's text for each list length
    # and converts each value, which cost several times the lookups themselves.
    values = func.json_each(parameter).table_valued("value")
    return column.in_(select(values.c.value).scalar_subquery())


def one_of(column: ColumnElement[Any], values: Sequence[Any], dialect: str) -> ColumnElement[bool]:
    """`column IN values` with the list as one parameter (an array on PostgreSQL, JSON on
    SQLite), so the statement's text is the same however many values there are: the driver
    parses it once and can prepare it, where a list of thousands of parameters was parsed
    afresh each time."""
    return _listed(
        column, bindparam(None, list(values), type_=_list_type(column, dialect)), dialect
    )


def one_of_bound(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """`column IN :name` for a prebuilt statement, given a list as `name` when it runs (as
    `one_of`, one parameter)."""
    return _listed(column, bindparam(name, type_=_list_type(column, dialect)), dialect)


def _list_type(column: ColumnElement[Any], dialect: str) -> Any:
    return ARRAY(column.type) if dialect == "postgresql" else _JsonList()


class Database:
    """Owns the engine and the database threads; repositories receive it."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url)
            workers = 1
        else:
            self.engine = _postgresql_engine(url)
            workers = _POSTGRESQL_CONNECTIONS
        self._reads_autocommit = self.dialect == "postgresql"
        self._begins_immediate = self.dialect == "sqlite"
        # SQLite's one connection never leaves its thread, so the thread keeps it open rather
        # than checking it out of the pool and back for every unit (which cost as much as a
        # short query). A PostgreSQL thread takes its connection from the pool for each unit,
        # so the pool checks an idle one and replaces a broken one.
        self._keeps_connection = self.dialect == "sqlite"
        self._kept = threading.local()
        self._units: queue.SimpleQueue[_Unit | None] = queue.SimpleQueue()
        self._answers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Answers] = (
            weakref.WeakKeyDictionary()
        )
        self._threads = [
            threading.Thread(target=self._serve, name=f"database-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        self.stats = DatabaseStats()
        # Statements are counted where the dialect hands them to the driver. A listener on the
        # connection's own events would do, but any such listener sends every statement,
        # begin and commit through SQLAlchemy's slower event-dispatching path.
        for hook in ("do_execute", "do_executemany", "do_execute_no_params"):
            event.listen(self.engine.dialect, hook, self._count_statement)
        # Each connection keeps the message path's statements compiled (`bridge.store.prepared`).
        event.listen(self.engine, "connect", self._prepare_connection)

    def _prepare_connection(self, _dbapi_connection: Any, record: Any) -> None:
        prepare_connection(record.info, self.engine.dialect, lambda: self.stats.count(statements=1))

    def _count_statement(self, _cursor: Any, statement: str, *_rest: Any) -> None:
        if not statement.startswith("BEGIN"):
            self.stats.count(statements=1)
        # (None: the dialect goes on to run the statement itself.)

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work`, which only reads, and return its result (on SQLite each of its
        statements runs on its own, outside a transaction: a unit that changes data is a
        `write`)."""
        return await self._run(work, writing=False)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction, committed before this returns (rolled back if `work`
        raises)."""
        return await self._run(work, writing=True)

    # Single statements, the most common units.

    async def first(self, query: Executable, parameters: Any = None) -> Row[Any] | None:
        """The first row `query` returns, if any."""
        return await self.read(lambda conn: conn.execute(query, parameters).first())

    async def rows(self, query: Executable, parameters: Any = None) -> list[Row[Any]]:
        """Every row `query` returns."""
        return await self.read(lambda conn: list(conn.execute(query, parameters).all()))

    async def scalar(self, query: Executable, parameters: Any = None) -> Any:
        """The first column of the first row `query` returns (None without one)."""
        return await self.read(lambda conn: conn.execute(query, parameters).scalar())

    async def execute(self, statement: Executable, parameters: Any = None) -> int:
        """Run one changing statement in a transaction of its own; how many rows it matched
        (reliable for UPDATE and DELETE only: an INSERT should say with RETURNING)."""
        return await self.write(lambda conn: conn.execute(statement, parameters).rowcount)

    async def _run(self, work: Callable[[Connection], T], *, writing: bool) -> T:
        loop = asyncio.get_running_loop()
        answers = self._answers.get(loop)
        if answers is None:
            answers = self._answers[loop] = _Answers(loop)
        answer: asyncio.Future[T] = loop.create_future()
        self._units.put((work, writing, answer, answers))
        return await answer

    def _serve(self) -> None:
        """A database thread: run units as they come, each answered as soon as it ends."""
        try:
            while (item := self._units.get()) is not None:
                work, writing, answer, answers = item
                try:
                    answers.give(answer, self._unit(work, writing), None)
                except BaseException as exc:  # raised in the awaiting task
                    answers.give(answer, None, exc)
        finally:
            kept: Connection | None = getattr(self._kept, "connection", None)
            if kept is not None:
                kept.close()

    def _unit(self, work: Callable[[Connection], T], writing: bool) -> T:
        if not self._keeps_connection:
            with self.engine.connect() as conn:
                return self._in_transaction(conn, work, writing)
        conn = getattr(self._kept, "connection", None)
        if conn is None:
            conn = self._kept.connection = self.engine.connect()
        return self._in_transaction(conn, work, writing)

    def _in_transaction(
        self, conn: Connection, work: Callable[[Connection], T], writing: bool
    ) -> T:
        if not writing and self._reads_autocommit:
            # Each statement of a read is its own transaction, as in one transaction at
            # READ COMMITTED (each statement sees what was committed when it began),
            # without the two round trips to begin and end one.
            conn.execution_options(isolation_level="AUTOCOMMIT")
        transaction = conn.begin()
        try:
            if writing and self._begins_immediate:
                # A writing unit takes SQLite's write lock at once, so two processes never
                # both read, then both try to write and one fails as busy. A reading unit
                # runs each statement on its own (WAL gives each a consistent view).
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            result = work(conn)
        except BaseException:
            transaction.rollback()
            raise
        # A read ends with a commit too: it changed nothing, and psycopg forgets every
        # prepared statement on a rollback, so PostgreSQL would plan each query afresh
        # (planning the policy's query costs ten times running it).
        transaction.commit()
        self.stats.count(writes=int(writing), reads=int(not writing))
        return result

    async def close(self) -> None:
        """Close every connection and stop the database threads."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        for _ in self._threads:
            self._units.put(None)
        for thread in self._threads:
            thread.join()
        self.engine.dispose()


class _Answers:
    """Results on their way back to one event loop's awaiting tasks.

    The first result to arrive wakes the loop; results that arrive before it has run join the
    same wake-up. So no answer waits, and under load one wake-up answers several units.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._waiting: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []

    def give(self, answer: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        """(On a database thread.) Hand over one unit's result or error."""
        with self._lock:
            self._waiting.append((answer, result, error))
            if len(self._waiting) > 1:
                return  # a wake-up is already on its way
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for answer, result, error in waiting:
            if answer.done():  # cancelled: its task stopped waiting; the unit ran all the same
                continue
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(result)


# A unit waiting for a database thread: the work, whether it writes, its answer and where the
# answer goes.
_Unit = tuple[Callable[[Connection], Any], bool, "asyncio.Future[Any]", _Answers]
