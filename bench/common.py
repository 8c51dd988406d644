"""Helpers shared by the benchmarks: a configured bridge, percentiles, tables."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.config import Config, load_config, render_example, write_back
from bridge.demo.synapse import free_port
from bridge.matrix.registration import ensure_secrets

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
BODY_PADDING = " lorem ipsum dolor sit amet" * 3  # a message of about 100 characters


@dataclass(frozen=True)
class Conversation:
    """One conversation the bridge made: its ids and its two participants."""

    id: str
    room_id: str
    people: tuple[str, str]  # platform ids
    mxids: tuple[str, str]


def progress(text: str) -> None:
    """A line on stderr while the run goes on (the tables go to stdout at the end)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def roster(pairs: int, prefix: str = "") -> list[dict[str, Any]]:
    """One institution where student i is in batch i, taught by tutor i: `pairs` allowed pairs
    (people `{prefix}s{i}` and `{prefix}t{i}`)."""
    records: list[dict[str, Any]] = [
        {"type": "institution", "id": "inst", "name": "Bench U"},
        {"type": "course", "id": "course", "institution_id": "inst", "title": "Algebra"},
    ]
    for n in range(pairs):
        for person, role, name in (
            (f"{prefix}s{n}", "student", "Sam"),
            (f"{prefix}t{n}", "tutor", "Alex"),
        ):
            records.append({"type": "user", "id": person, "display_name": f"{name} Number{n}"})
            records.append(
                {"type": "member", "institution_id": "inst", "user_id": person, "role": role}
            )
        records += [
            {"type": "batch", "id": f"{prefix}b{n}", "course_id": "course", "title": f"Group {n}"},
            {"type": "enrollment", "batch_id": f"{prefix}b{n}", "user_id": f"{prefix}s{n}"},
            {"type": "teaching", "batch_id": f"{prefix}b{n}", "user_id": f"{prefix}t{n}"},
        ]
    return records


async def in_pool(count: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> None:
    """Run job(0) … job(count - 1), at most `concurrency` at a time, in order of start."""
    jobs = iter(range(count))

    async def worker() -> None:
        for n in jobs:  # shared: each worker takes the next job when it is free
            await job(n)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def bridge_config(folder: Path, database_url: str, homeserver_url: str, port: int = 0) -> Config:
    """A bridge config in `folder` (tokens generated) for the given database and homeserver."""
    path = folder / "config.yaml"
    path.write_text(render_example())
    port = port or free_port()
    write_back(
        path,
        {
            "homeserver.url": homeserver_url,
            "homeserver.server_name": "bench.local",
            "appservice.listen_port": port,
            "appservice.public_url": f"http://127.0.0.1:{port}",
            "database.url": database_url,
            "logging.level": "WARNING",
        },
    )
    ensure_secrets(path)
    return load_config(path)


async def new_pg_database() -> str:
    """A fresh PostgreSQL database for one run."""
    import psycopg

    name = f"lmsb_bench_{secrets.token_hex(4)}"
    async with await psycopg.AsyncConnection.connect(PG_ADMIN_URL, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def drop_pg_database(url: str) -> None:
    """Drop a database made by `new_pg_database`."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(PG_ADMIN_URL, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    """Print a plain aligned table."""
    cells = [headers, *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [isinstance(c, int | float) for c in rows[0]] if rows else []
    for n, row in enumerate(cells):
        line = [
            c.rjust(w) if n and numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(line).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
    return str(value)


median = statistics.median


async def on_database(choice: str, run: Callable[[str], Awaitable[None]]) -> None:
    """`run(url)` on the chosen database: "sqlite" (a temporary file), "postgresql" (a fresh
    database on the local server, dropped afterwards) or a URL."""
    if choice == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            await run(f"sqlite:///{folder}/bench.db")
    elif choice == "postgresql":
        url = await new_pg_database()
        try:
            await run(url)
        finally:
            await drop_pg_database(url)
    else:
        await run(choice)
