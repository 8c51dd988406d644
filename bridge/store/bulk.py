"""Writing many rows of one table at once, for the roster's bulk loads.

Rows come as tuples in a stated column order, never as one dict per row: at a few hundred
thousand rows, building and reading dicts cost more than the database's own work.

- SQLite: one statement run for every row in one driver call (`executemany`). The driver binds
  each tuple in C; only columns whose type converts values in Python (moments, flags) pass a
  conversion, column by column.
- PostgreSQL: one statement for the whole list, each column one array parameter, unpacked by
  `unnest` in the server. Run row by row, even in one driver call, every row was its own round
  of parsing, binding and executing in the server.

A list given with conflict keys must hold at most one row per key: PostgreSQL refuses to
update one row twice in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, Connection, String, Table, Text, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeEngine


def insert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    conflict_keys: Sequence[str] | None = None,
) -> None:
    """Insert `rows` (tuples in `columns` order). With `conflict_keys`, a row whose keys are
    stored replaces the stored row's other columns (when there are none, it is left alone)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _insert_arrays(conn, table, columns, rows, conflict_keys)
    else:
        _insert_each(conn, table, columns, rows, conflict_keys)


def _insert_each(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    conflict_keys: Sequence[str] | None,
) -> None:
    dialect = conn.dialect
    statement = _on_conflict(sqlite.insert(table), columns, conflict_keys)
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    # The statement binds in the table's column order, which may not be the rows' order.
    order = [list(columns).index(compiled.binds[name].key) for name in compiled.positiontup or ()]
    converters = [
        table.c[columns[n]].type.dialect_impl(dialect).bind_processor(dialect) for n in order
    ]
    values: Sequence[tuple[Any, ...]] = rows
    if order != list(range(len(columns))) or any(converters):
        given = list(zip(*rows, strict=True))
        by_column = [given[n] for n in order]
        for n, convert in enumerate(converters):
            if convert is not None:
                # Each distinct value converted once (a bulk load repeats a few: flags, the
                # moment of the load, no date at all), then mapped in C.
                converted = {v: convert(v) for v in set(by_column[n]) if v is not None}
                by_column[n] = tuple(map(converted.get, by_column[n], by_column[n]))
        values = list(zip(*by_column, strict=True))
    conn.exec_driver_sql(compiled.string, values)


def _insert_arrays(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    conflict_keys: Sequence[str] | None,
) -> None:
    arrays = [
        func.unnest(bindparam(f"c{n}", type_=ARRAY(_array_item(table.c[name].type))))
        for n, name in enumerate(columns)
    ]
    statement = _on_conflict(
        postgresql.insert(table).from_select(list(columns), select(*arrays)), columns, conflict_keys
    )
    values = {f"c{n}": list(column) for n, column in enumerate(zip(*rows, strict=True))}
    conn.execute(statement, values)


def _array_item(column_type: TypeEngine[Any]) -> TypeEngine[Any]:
    # The arrays' element types: text for every string column (the insert casts it to the
    # column's own length and collation, which an array type can't spell).
    if isinstance(column_type, String):
        return Text()
    return column_type


def _on_conflict(statement: Any, columns: Sequence[str], keys: Sequence[str] | None) -> Any:
    if keys is None:
        return statement
    updates = {c: statement.excluded[c] for c in columns if c not in keys}
    if updates:
        return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)
    return statement.on_conflict_do_nothing(index_elements=list(keys))
