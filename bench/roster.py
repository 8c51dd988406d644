"""Roster load and policy speed on a synthetic institution, on SQLite and PostgreSQL.

The institution: 200,000 students, 4,000 tutors, 1,000 courses of 5 batches each, 600,000
enrollments (3 courses per student), 1-2 tutors per batch, 1 admin. It is loaded through the
bulk API of a running bridge (HTTP on loopback), then timed: `may_start` over 10,000 random pairs
and contacts searches with one- and two-letter queries for a student, a tutor and the admin.
On PostgreSQL the tables are vacuumed after the load, as the server's autovacuum would do
within a minute or so (it may be off on a test server). The first 1,000 pairs are timed apart:
they include each database connection's first use of the policy's query (PostgreSQL plans a
statement afresh for its first few runs on a connection).

    python -m bench.roster [--students 200000] [--pairs 10000] [--searches 200] [--only sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import bridge_config, drop_pg_database, new_pg_database, percentile, print_table
from bridge.app import Bridge

_FIRST_PAIRS = 1_000

SYLLABLES = [
    "ka",
    "li",
    "mo",
    "ra",
    "ve",
    "na",
    "to",
    "si",
    "de",
    "lu",
    "ba",
    "ne",
    "ri",
    "sa",
    "po",
    "mi",
    "el",
    "an",
    "or",
    "is",
    "ul",
    "en",
    "ar",
    "ta",
    "jo",
    "be",
    "ho",
    "ky",
    "za",
    "fe",
    "gu",
    "wi",
    "da",
    "qui",
    "ster",
    "mar",
    "len",
    "vik",
]
CHUNK = 20_000


def _name(rng: random.Random) -> str:
    def word() -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()

    return f"{word()} {word()}"


@dataclass(frozen=True)
class Institution:
    """The synthetic roster as bulk records, plus who is who."""

    records: list[dict[str, Any]]
    students: list[str]
    tutors: list[str]
    admin: str


def generate(students: int, tutors: int, courses: int, seed: int = 7) -> Institution:
    """A deterministic synthetic institution of the given size."""
    rng = random.Random(seed)
    batches_per_course = 5
    records: list[dict[str, Any]] = [{"type": "institution", "id": "inst", "name": "Big U"}]
    student_ids = [f"s{n}" for n in range(students)]
    tutor_ids = [f"t{n}" for n in range(tutors)]
    people = [*student_ids, *tutor_ids, "admin"]
    records += [{"type": "user", "id": p, "display_name": _name(rng)} for p in people]
    roles = {**dict.fromkeys(student_ids, "student"), **dict.fromkeys(tutor_ids, "tutor")}
    roles["admin"] = "admin"
    records += [
        {"type": "member", "institution_id": "inst", "user_id": p, "role": roles[p]} for p in people
    ]
    records += [
        {"type": "course", "id": f"c{n}", "institution_id": "inst", "title": f"Course {n}"}
        for n in range(courses)
    ]
    batch_ids = [f"c{c}-b{b}" for c in range(courses) for b in range(batches_per_course)]
    records += [
        {"type": "batch", "id": b, "course_id": b.split("-")[0], "title": f"Batch {b}"}
        for b in batch_ids
    ]
    for s in student_ids:
        for course in rng.sample(range(courses), 3):
            batch = f"c{course}-b{rng.randrange(batches_per_course)}"
            records.append({"type": "enrollment", "batch_id": batch, "user_id": s})
    for n, b in enumerate(batch_ids):
        teachers = {tutor_ids[n % tutors]}
        if rng.random() < 0.5:
            teachers.add(rng.choice(tutor_ids))
        records += [{"type": "teaching", "batch_id": b, "user_id": t} for t in teachers]
    return Institution(records, student_ids, tutor_ids, "admin")


def _chunks(records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(records), CHUNK):
        yield records[start : start + CHUNK]


async def _vacuum(database_url: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("VACUUM (ANALYZE)")


async def measure(
    database_url: str, institution: Institution, pairs: int, searches: int
) -> dict[str, Any]:
    """Load, then time the policy; one result row per database."""
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as folder:
        config = bridge_config(Path(folder), database_url, "http://127.0.0.1:9")
        bridge = Bridge(config)
        await bridge.start(checks=False)
        base = config.appservice.public_url
        headers = {"Authorization": f"Bearer {config.lms.api_token}"}
        try:
            # Encoded beforehand: the LMS's cost of writing JSON is not the bridge's.
            bodies = [json.dumps({"records": c}).encode() for c in _chunks(institution.records)]
            headers["Content-Type"] = "application/json"
            async with aiohttp.ClientSession(headers=headers) as http:
                started = time.perf_counter()
                for body in bodies:
                    async with http.post(base + "/api/v1/roster/bulk", data=body) as r:
                        assert r.status == 200, await r.text()
                load_seconds = time.perf_counter() - started
            if database_url.startswith("postgresql"):
                await _vacuum(database_url)
            everyone = [*institution.students, *institution.tutors, institution.admin]
            first_pairs: list[float] = []
            may_start: list[float] = []
            allowed = 0
            for _ in range(_FIRST_PAIRS):
                a, b = rng.choice(everyone), rng.choice(everyone)
                t0 = time.perf_counter()
                await bridge.policy.can_start(a, b)
                first_pairs.append((time.perf_counter() - t0) * 1000)
            for _ in range(pairs):
                a, b = rng.choice(everyone), rng.choice(everyone)
                t0 = time.perf_counter()
                decision = await bridge.policy.can_start(a, b)
                may_start.append((time.perf_counter() - t0) * 1000)
                allowed += decision.allowed
            contacts: dict[str, list[float]] = {}
            letters = "abdegikmnorstvz"
            for label, searchers in (
                ("student", institution.students),
                ("tutor", institution.tutors),
                ("admin", [institution.admin]),
            ):
                for size in (1, 2):
                    times = []
                    for _ in range(searches):
                        query = "".join(rng.choice(letters) for _ in range(size))
                        t0 = time.perf_counter()
                        await bridge.policy.contacts(rng.choice(searchers), query, 20)
                        times.append((time.perf_counter() - t0) * 1000)
                    contacts[f"{label} q={size}"] = times
        finally:
            await bridge.stop()
    return {
        "rows": len(institution.records),
        "load_seconds": load_seconds,
        "first_pairs": first_pairs,
        "may_start": may_start,
        "allowed": allowed,
        "contacts": contacts,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=200_000)
    parser.add_argument("--tutors", type=int, default=4_000)
    parser.add_argument("--courses", type=int, default=1_000)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    args = parser.parse_args()
    institution = generate(args.students, args.tutors, args.courses)
    # The bench's own million records stay out of the collector's way: they are not the
    # bridge's, and scanning them would be counted as its cost.
    gc.collect()
    gc.freeze()
    results: dict[str, dict[str, Any]] = {}
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as folder:
            results["sqlite"] = await measure(
                f"sqlite:///{folder}/bench.db", institution, args.pairs, args.searches
            )
    if args.only in (None, "postgresql"):
        url = await new_pg_database()
        try:
            results["postgresql"] = await measure(url, institution, args.pairs, args.searches)
        finally:
            await drop_pg_database(url)

    first = next(iter(results.values()))
    print(
        f"\nRoster: {args.students:,} students, {args.tutors:,} tutors, {args.courses:,} courses, "
        f"{first['rows']:,} rows loaded through POST /api/v1/roster/bulk\n"
    )
    rows: list[list[object]] = []
    for backend, r in results.items():
        rows.append(
            [backend, "load", f"{r['rows'] / r['load_seconds']:,.0f} rows/s", "", "≥ 50,000 rows/s"]
        )
        rows.append(
            [
                backend,
                f"may_start, first {len(r['first_pairs'])} pairs",
                f"{percentile(r['first_pairs'], 50):.2f}",
                f"{percentile(r['first_pairs'], 99):.2f}",
                "",
            ]
        )
        rows.append(
            [
                backend,
                f"may_start, next {len(r['may_start'])} pairs",
                f"{percentile(r['may_start'], 50):.2f}",
                f"{percentile(r['may_start'], 99):.2f}",
                "p99 ≤ 1 ms",
            ]
        )
        for label, times in r["contacts"].items():
            rows.append(
                [
                    backend,
                    f"contacts {label}",
                    f"{percentile(times, 50):.2f}",
                    f"{percentile(times, 99):.2f}",
                    "p99 ≤ 20 ms",
                ]
            )
    print_table(["database", "what", "p50 ms / rate", "p99 ms", "target"], rows)


if __name__ == "__main__":
    asyncio.run(main())
