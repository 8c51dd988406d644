"""The bridge's memory with a large history: 100,000 conversations and 1,000,000 messages.

The database is filled first, as the bench's own set-up: a roster through the bridge's roster
repository (one institution; 20,000 students, 2,000 tutors, each tutor teaching one batch of
50 students, each student in 5 batches), then, written directly, a conversation for every
student–tutor pair of a batch (100,000, each with a room id), 10 messages in each (1,000,000,
the two people taking turns, each with its `message.created` in the event log) and both read
markers. Then one Synapse and the bridge as a process of its own (`python -m bridge run`), so
that its resident memory is read from /proc without this process's in it. No account is made
on Synapse for the people: what is measured is what the bridge holds for what it has stored.

The bridge's RSS is read once it has gone quiet after start, or after 5 minutes (on start it
reads every conversation room's history back to before its last contact, and checks every
conversation against a roster written by another process), and after each workload through the
LMS API: conversation lists of 5,000 people, the newest page of history of 5,000 conversations,
the whole event feed read in pages of 1,000, 5,000 policy answers and 1,000 contact searches.
The peak (VmHWM) over the run is printed last.

    python -m bench.memory [--students 20000] [--messages-per-conversation 10]
        [--database sqlite|postgresql|URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from sqlalchemy import Connection, Table, delete, func, select

from bench.common import (
    in_pool,
    on_database,
    print_table,
    progress,
)
from bench.processes import quiet, rss_kib, synapse_and_bridge
from bridge.config import driver_database_url
from bridge.domain.roster import (
    AssignmentPut,
    BatchPut,
    CoursePut,
    InstitutionPut,
    MembershipPut,
    RosterChange,
    UserPut,
)
from bridge.store import migrate
from bridge.store.bulk import insert_rows
from bridge.store.database import Database
from bridge.store.roster import RosterRepository
from bridge.store.schema import (
    conversations,
    events,
    messages,
    profile_sync_queue,
    read_markers,
    webhook_cursor,
)

T = TypeVar("T")
TUTORS_PER_STUDENT = 5
BATCH_SIZE = 50
TARGET_MIB = 150 * 1000 * 1000 / 1024 / 1024  # 150 MB
ROWS_PER_UNIT = 20_000
CONCURRENCY = 10
# At most this long for the bridge to go quiet after start: it reads every conversation room's
# history then (catching up), which for 100,000 rooms takes longer; the workloads run beside it.
SETTLE_SECONDS = 300.0
BODY = "Could we go over question {n} of the problem sheet before Thursday's tutorial?"


def _insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """The bench's own rows (dicts with the same keys) written in one go."""
    columns = list(rows[0]) if rows else []
    insert_rows(conn, table, columns, [tuple(row[c] for c in columns) for row in rows])


def roster_changes(students: int) -> list[RosterChange]:
    """The roster: batch j is taught by tutor j; student i is in batches 5i … 5i+4 (mod)."""
    tutors = students * TUTORS_PER_STUDENT // BATCH_SIZE
    changes: list[RosterChange] = [InstitutionPut("inst", "Memory U")]
    changes += [CoursePut(f"c{j}", "inst", f"Course {j}") for j in range(100)]
    for j in range(tutors):
        changes += [
            UserPut(f"t{j}", f"Tutor {j}"),
            MembershipPut("inst", f"t{j}", "tutor"),
            BatchPut(f"b{j}", f"c{j % 100}", f"Group {j}"),
            AssignmentPut("tutor", f"b{j}", f"t{j}"),
        ]
    for i in range(students):
        changes += [UserPut(f"s{i}", f"Student {i}"), MembershipPut("inst", f"s{i}", "student")]
        changes += [
            AssignmentPut("student", f"b{batch}", f"s{i}") for batch in batches_of(i, tutors)
        ]
    return changes


def batches_of(student: int, tutors: int) -> list[int]:
    return [(student * TUTORS_PER_STUDENT + k) % tutors for k in range(TUTORS_PER_STUDENT)]


def _units(rows: Iterator[T]) -> Iterator[list[T]]:
    chunk: list[T] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == ROWS_PER_UNIT:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def fill(database_url: str, students: int, per_conversation: int) -> list[tuple[str, str]]:
    """Fill the database; returns (conversation id, student) of every conversation."""
    db = Database(driver_database_url(database_url, None))
    try:
        await migrate.upgrade(db)
        roster = RosterRepository(db)
        changes = roster_changes(students)
        for start in range(0, len(changes), ROWS_PER_UNIT):
            await roster.apply(changes[start : start + ROWS_PER_UNIT], datetime.now(UTC))
        # No Matrix accounts: the bench measures what the bridge holds, not Synapse's work.
        await db.write(lambda conn: conn.execute(delete(profile_sync_queue)))
        progress(f"roster: {len(changes):,} records")

        tutors = students * TUTORS_PER_STUDENT // BATCH_SIZE
        pairs = [
            (uuid.uuid4().hex, f"s{i}", f"t{j}")
            for i in range(students)
            for j in batches_of(i, tutors)
        ]
        start_time = datetime.now(UTC) - timedelta(days=60)

        def conversation_rows() -> Iterator[dict[str, Any]]:
            for n, (cid, student, tutor) in enumerate(pairs):
                user_a, user_b = sorted((student, tutor))
                yield {
                    "id": cid,
                    "user_a": user_a,
                    "user_b": user_b,
                    "started_by": student,
                    "room_id": f"!room{n}:bench.local",
                    "state": "active",
                    "created_at": start_time,
                    "last_message_at": start_time + timedelta(minutes=per_conversation),
                    "encrypted": False,
                }

        for chunk in _units(conversation_rows()):
            await db.write(lambda conn, c=chunk: _insert(conn, conversations, c))
        progress(f"conversations: {len(pairs):,}")

        def message_rows() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
            for n, (cid, student, tutor) in enumerate(pairs):
                for k in range(per_conversation):
                    sender = student if k % 2 == 0 else tutor
                    at = start_time + timedelta(minutes=k)
                    message_id = uuid.uuid4().hex
                    body = BODY.format(n=k + 1)
                    message = {
                        "id": message_id,
                        "conversation_id": cid,
                        "sender": sender,
                        "client_message_id": f"lms-{n}-{k}",
                        "body": body,
                        "format": "plain",
                        "html": None,
                        "event_id": f"${n}_{k}:bench.local",
                        "status": "sent",
                        "created_at": at,
                        "sent_at": at,
                        "revision": 0,
                    }
                    event = {
                        "id": uuid.uuid4().hex,
                        "type": "message.created",
                        "data": json.dumps(
                            {
                                "message": {
                                    "id": message_id,
                                    "conversation_id": cid,
                                    "sender": sender,
                                    "body": body,
                                    "format": "plain",
                                    "created_at": at.isoformat(),
                                }
                            }
                        ),
                        "created_at": at,
                    }
                    yield message, event

        def write_messages(conn: Connection, rows: list[tuple[dict[str, Any], ...]]) -> None:
            _insert(conn, messages, [m for m, _ in rows])
            _insert(conn, events, [e for _, e in rows])

        for n, chunk in enumerate(_units(message_rows()), start=1):
            await db.write(lambda conn, c=chunk: write_messages(conn, c))
            if n * ROWS_PER_UNIT % 200_000 == 0:
                progress(f"messages: {n * ROWS_PER_UNIT:,}")

        def markers_and_cursor(conn: Connection) -> None:
            now = datetime.now(UTC)
            rows = [
                {"conversation_id": cid, "user_id": who, "up_to_seq": 0, "updated_at": now}
                for cid, student, tutor in pairs
                for who in (student, tutor)
            ]
            for start in range(0, len(rows), ROWS_PER_UNIT):
                _insert(conn, read_markers, rows[start : start + ROWS_PER_UNIT])
            last = conn.execute(select(func.max(events.c.seq))).scalar_one()
            # Every event already delivered: the bench is not about a webhook backlog.
            conn.execute(webhook_cursor.insert().values(id=1, delivered_seq=last, updated_at=now))

        await db.write(markers_and_cursor)
        total = await db.scalar(select(func.count()).select_from(messages))
        progress(f"messages: {total:,}; event log: {total:,}")
        return [(cid, student) for cid, student, _ in pairs]
    finally:
        await db.close()


async def measure(
    base: str, headers: dict[str, str], pid: int, pairs: list[tuple[str, str]], students: int
) -> list[tuple[str, int, float]]:
    """Run the workloads; (phase, RSS KiB, seconds) after each."""
    rng = random.Random(3)
    tutors = students * TUTORS_PER_STUDENT // BATCH_SIZE
    phases: list[tuple[str, int, float]] = []
    async with aiohttp.ClientSession(headers=headers) as http:

        async def get(path: str) -> Any:
            async with http.get(base + path) as response:
                assert response.status == 200, (path, response.status, await response.text())
                return await response.json()

        async def phase(name: str, count: int, job: Callable[[int], Awaitable[None]]) -> None:
            started = time.perf_counter()
            await in_pool(count, CONCURRENCY, job)
            seconds = time.perf_counter() - started
            phases.append((name, rss_kib(pid), seconds))
            progress(f"{name}: {seconds:.1f} s, RSS {rss_kib(pid) / 1024:.0f} MiB")

        people = [f"s{i}" for i in range(students)] + [f"t{j}" for j in range(tutors)]

        async def conversation_list(_n: int) -> None:
            await get(f"/api/v1/users/{rng.choice(people)}/conversations")

        async def history(_n: int) -> None:
            cid, student = rng.choice(pairs)
            await get(f"/api/v1/conversations/{cid}/messages?as={student}&limit=50")

        cursor = {"after": 0}

        async def feed(_n: int) -> None:
            page = await get(f"/api/v1/events?after={cursor['after']}&limit=1000")
            cursor["after"] = page["next_after"]

        async def policy(_n: int) -> None:
            await get(f"/api/v1/users/{rng.choice(people)}/can-message/{rng.choice(people)}")

        async def contacts(_n: int) -> None:
            query = rng.choice("abcdefghijklmnopqrstuvwxyz")
            await get(f"/api/v1/users/{rng.choice(people)}/contacts?q={query}&limit=20")

        await phase("conversation lists of 5,000 people", 5000, conversation_list)
        await phase("history of 5,000 conversations (50 messages)", 5000, history)
        started = time.perf_counter()
        while True:
            before = cursor["after"]
            await feed(0)
            if cursor["after"] == before:
                break
        phases.append(
            ("the whole event feed, pages of 1,000", rss_kib(pid), time.perf_counter() - started)
        )
        progress(f"event feed read to seq {cursor['after']:,}")
        await phase("5,000 policy answers", 5000, policy)
        await phase("1,000 contact searches", 1000, contacts)
    return phases


def peak_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


async def run(args: argparse.Namespace, database_url: str) -> None:
    """Fill the database, start Synapse and the bridge, measure, print the table."""
    started = time.perf_counter()
    pairs = await fill(database_url, args.students, args.messages_per_conversation)
    progress(f"database filled in {time.perf_counter() - started:.0f} s")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        synapse, config, bridge = synapse_and_bridge(folder, database_url)
        try:
            await asyncio.to_thread(synapse.start)
            await asyncio.to_thread(bridge.start)
            settled = await quiet(bridge.pid, within=SETTLE_SECONDS)
            state = "still busy" if settled >= SETTLE_SECONDS else "quiet"
            rows: list[tuple[str, int, float]] = [
                (f"start ({state} after {settled:.0f} s)", rss_kib(bridge.pid), settled)
            ]
            progress(f"bridge settled, RSS {rows[0][1] / 1024:.0f} MiB")
            headers = {"Authorization": f"Bearer {config.lms.api_token}"}
            rows += await measure(
                config.appservice.public_url, headers, bridge.pid, pairs, args.students
            )
            peak = peak_kib(bridge.pid)
        finally:
            await asyncio.to_thread(bridge.stop)
            await asyncio.to_thread(synapse.stop)
    print(
        f"\nMemory: {len(pairs):,} conversations, {len(pairs) * args.messages_per_conversation:,}"
        f" messages and as many events stored ({database_url.split(':')[0]}); the bridge's own "
        f"process's RSS after each workload (concurrency {CONCURRENCY})\n"
    )
    table = [[name, f"{kib / 1024:.0f}", f"{seconds:.1f}"] for name, kib, seconds in rows]
    table.append(
        [
            "peak over the run (VmHWM)",
            f"{peak / 1024:.0f}",
            f"target ≤ {TARGET_MIB:.0f} MiB (150 MB): "
            + ("met" if peak / 1024 <= TARGET_MIB else "MISSED"),
        ]
    )
    print_table(["after", "RSS MiB", "seconds"], table)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20_000)
    parser.add_argument("--messages-per-conversation", type=int, default=10)
    parser.add_argument("--database", default="sqlite")
    args = parser.parse_args()
    await on_database(args.database, lambda url: run(args, url))


if __name__ == "__main__":
    asyncio.run(main())
