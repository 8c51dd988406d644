"""Statements built once, compiled once per connection and run on the driver's own cursor.

For every statement SQLAlchemy's execution builds an execution context, converts the
parameters through it, and wraps the cursor in a result object with its own metadata. For the
one-row reads and writes of the message path that cost several times what the database itself
did. The message path's statements are module constants, so they take this shorter path: each
compiles once for a connection; a run converts its parameters with the statement's own bind
types, executes on the DBAPI cursor, and converts the rows with the statement's result types,
as SQLAlchemy does. Driver errors come out as SQLAlchemy's own exceptions, and a lost
connection is invalidated as SQLAlchemy would invalidate it.

Only statements built once belong here: a compiled statement is kept under the statement object
itself. Statements whose parameters SQLAlchemy rewrites at execution (expanding `IN` lists,
column defaults computed in Python) are refused when first compiled.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from bridge.cache import BoundedCache

_INFO_KEY = "bridge.prepared"  # where a connection's PreparedStatements live in its `info`
_KEPT = 512  # compiled statements per connection (the bridge has far fewer constants)

Processor = Callable[[Any], Any]


class _Compiled:
    """One statement compiled for one dialect."""

    def __init__(self, statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> None:
        compiled = statement.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=list(keys) if keys else None
        )
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError(f"a prepared statement can't expand its parameters: {compiled}")
        defaults: dict[str, Any] = {}
        for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
            # A column's default SQLAlchemy would compute at execution: a constant is bound
            # like any literal; anything else is for SQLAlchemy's own execution.
            if column.default is None or not column.default.is_scalar:
                raise ValueError(f"a prepared statement needs {column.key}'s value: {compiled}")
            defaults[column.key] = column.default.arg
        self.statement = statement  # kept alive: its identity is the cache key
        self.sql: str = compiled.string
        self.positional = compiled.positiontup is not None
        # Each parameter position's name (a name may repeat), or the names of a named style.
        self.order: tuple[str, ...] = tuple(
            compiled.positiontup if self.positional else compiled.bind_names.values()
        )
        self.names = tuple(dict.fromkeys(self.order))  # each once
        # The name the driver sees, where the statement's text had to spell it otherwise.
        self.spelled = {n: compiled.escaped_bind_names.get(n, n) for n in self.names}
        self.converters: dict[str, Processor] = {}
        self.literals: dict[str, Any] = {}
        for name in self.names:
            bind = compiled.binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.converters[name] = processor
            if name in defaults:
                self.literals[name] = defaults[name]
            elif not bind.required and bind.callable is None:
                self.literals[name] = bind.value  # a value written into the statement
        columns = compiled._result_columns
        self.results: tuple[Processor | None, ...] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        self.row: type[tuple[Any, ...]] | None = (
            namedtuple("Row", [column.keyname for column in columns], rename=True)  # type: ignore[misc]
            if columns
            else None
        )
        self.converts_rows = any(p is not None for p in self.results)

    def parameters(self, given: Mapping[str, Any]) -> Any:
        values: dict[str, Any] = {}
        for name in self.names:
            if name in given:
                value = given[name]
            elif name in self.literals:
                value = self.literals[name]
            else:
                raise ValueError(f"no value for the parameter {name!r} of: {self.sql}")
            convert = self.converters.get(name)
            values[name] = value if convert is None or value is None else convert(value)
        if self.positional:
            return tuple(values[name] for name in self.order)
        return {self.spelled[name]: value for name, value in values.items()}

    def rows(self, cursor: Any, raw: list[Any]) -> list[Any]:
        if self.row is None:  # textual SQL: the cursor says what the columns are
            names = [d[0] for d in cursor.description or ()]
            self.row = namedtuple("Row", names, rename=True)  # type: ignore[misc]
            self.results = (None,) * len(names)
        make = self.row._make  # type: ignore[attr-defined]
        if not self.converts_rows:
            return [make(r) for r in raw]
        processors = self.results
        return [
            make(v if p is None or v is None else p(v) for p, v in zip(processors, r, strict=True))
            for r in raw
        ]


class PreparedStatements:
    """One connection's compiled statements (kept in the connection's `info`)."""

    def __init__(self, dialect: Dialect, counted: Callable[[], None]) -> None:
        self._dialect = dialect
        self._counted = counted
        self._compiled: BoundedCache[tuple[int, tuple[str, ...]], _Compiled] = BoundedCache(_KEPT)

    def run(
        self, conn: Connection, statement: Executable, given: Mapping[str, Any], fetch: bool
    ) -> tuple[list[Any], int]:
        """Execute; the rows (when `fetch`) and the row count."""
        keys = tuple(sorted(given)) if statement.is_dml else ()  # type: ignore[attr-defined]
        key = (id(statement), keys)
        compiled = self._compiled.get(key)
        if compiled is None or compiled.statement is not statement:
            compiled = self._compiled.put(key, _Compiled(statement, self._dialect, keys))
        parameters = compiled.parameters(given)
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            self._counted()
            cursor.execute(compiled.sql, parameters)
            raw = cursor.fetchall() if fetch else []
            return compiled.rows(cursor, raw), cursor.rowcount
        except self._dialect.loaded_dbapi.Error as error:
            lost = self._dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:
                conn.invalidate(error)
            raise DBAPIError.instance(
                compiled.sql,
                parameters,
                error,
                self._dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=self._dialect,
            ) from error
        finally:
            cursor.close()


def prepare_connection(info: dict[Any, Any], dialect: Dialect, counted: Callable[[], None]) -> None:
    """Give a new DBAPI connection (by its record's `info`) its compiled statements."""
    info[_INFO_KEY] = PreparedStatements(dialect, counted)


def _statements(conn: Connection) -> PreparedStatements:
    statements: PreparedStatements = conn.info[_INFO_KEY]
    return statements


def first(conn: Connection, statement: Executable, parameters: Mapping[str, Any]) -> Any:
    """The first row `statement` returns (its columns by name and position), or None."""
    rows, _count = _statements(conn).run(conn, statement, parameters, fetch=True)
    return rows[0] if rows else None


def all_rows(conn: Connection, statement: Executable, parameters: Mapping[str, Any]) -> list[Any]:
    """Every row `statement` returns."""
    rows, _count = _statements(conn).run(conn, statement, parameters, fetch=True)
    return rows


def scalar(conn: Connection, statement: Executable, parameters: Mapping[str, Any]) -> Any:
    """The first column of the first row, or None."""
    row = first(conn, statement, parameters)
    return None if row is None else row[0]


def execute(conn: Connection, statement: Executable, parameters: Mapping[str, Any]) -> int:
    """Run a changing statement (no RETURNING); how many rows it matched."""
    _rows, count = _statements(conn).run(conn, statement, parameters, fetch=False)
    return count
