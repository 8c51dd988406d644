"""The inbound processor on a real database: order within rooms, retries, giving up, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from bridge.services.inbound import EventDispatcher, InboundProcessor
from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.inbox import InboxRepository, NewEvent, StoredEvent
from tests.support.waiting import eventually


@pytest.fixture
async def inbox(db: Database) -> InboxRepository:
    await migrate.upgrade(db)
    return InboxRepository(db)


def _now_true(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def poll() -> bool:
        return check()

    return poll


async def _store(inbox: InboxRepository, txn: str, pairs: list[tuple[str, str]]) -> None:
    events = [NewEvent(e, room, "timeline", "m.room.message", {"e": e}) for e, room in pairs]
    await inbox.store_transaction(txn, txn, events, datetime.now(UTC), timedelta(hours=1))


async def test_events_are_processed_in_order_within_each_room(inbox: InboxRepository) -> None:
    pairs = [(f"$e{i}", f"!room{i % 3}") for i in range(30)]
    await _store(inbox, "1", pairs)
    seen: list[StoredEvent] = []

    async def handler(event: StoredEvent) -> None:
        await asyncio.sleep(0.001 * (hash(event.room_id) % 3))  # rooms interleave
        seen.append(event)

    dispatcher = EventDispatcher()
    dispatcher.on("m.room.message", handler)
    processor = InboundProcessor(inbox, dispatcher)
    assert await processor.process_pending() == 30
    for room in ("!room0", "!room1", "!room2"):
        expected = [e for e, r in pairs if r == room]
        assert [e.event_id for e in seen if e.room_id == room] == expected
    assert await inbox.counts() == {"pending": 0, "processed": 30, "failed": 0}


async def test_a_failing_event_holds_back_its_room_only(inbox: InboxRepository) -> None:
    await _store(inbox, "1", [("$bad", "!a"), ("$after", "!a"), ("$other", "!b")])
    seen: list[str | None] = []
    failures = {"$bad": 1}

    async def handler(event: StoredEvent) -> None:
        if failures.get(event.event_id or "", 0) > 0:
            failures[event.event_id or ""] -= 1
            raise RuntimeError("homeserver hiccup")
        seen.append(event.event_id)

    dispatcher = EventDispatcher()
    dispatcher.on(None, handler)
    processor = InboundProcessor(inbox, dispatcher, base_delay=0.2)
    await processor.process_pending()
    assert seen == ["$other"]  # "$after" waits for "$bad"
    assert await processor.process_pending() == 0  # not due yet: nothing is attempted
    await asyncio.sleep(0.25)
    await processor.process_pending()
    assert seen == ["$other", "$bad", "$after"]


async def test_a_backlog_behind_a_failing_event_does_not_stall_other_rooms(
    inbox: InboxRepository,
) -> None:
    await _store(inbox, "1", [(f"$busy{n}", "!busy") for n in range(30)])
    await _store(inbox, "2", [("$quiet", "!quiet")])
    seen: list[str | None] = []

    async def handler(event: StoredEvent) -> None:
        if event.event_id == "$busy0":
            raise RuntimeError("keeps failing for now")
        seen.append(event.event_id)

    dispatcher = EventDispatcher()
    dispatcher.on(None, handler)
    processor = InboundProcessor(inbox, dispatcher, batch_size=10, base_delay=60)
    await processor.process_pending()
    await processor.process_pending()
    assert seen == ["$quiet"]


async def test_an_event_that_always_fails_is_set_aside(inbox: InboxRepository) -> None:
    await _store(inbox, "1", [("$poison", "!a"), ("$next", "!a")])
    seen: list[str | None] = []

    async def handler(event: StoredEvent) -> None:
        if event.event_id == "$poison":
            raise ValueError("strange event")
        seen.append(event.event_id)

    dispatcher = EventDispatcher()
    dispatcher.on(None, handler)
    processor = InboundProcessor(inbox, dispatcher, max_attempts=3, base_delay=0.01)
    task = asyncio.create_task(processor.run())
    try:
        async with asyncio.timeout(5):
            while seen != ["$next"]:
                await asyncio.sleep(0.02)
    finally:
        processor.stop()
        await task
    assert await inbox.counts() == {"pending": 0, "processed": 1, "failed": 1}


async def test_unprocessed_events_are_picked_up_by_the_next_run(inbox: InboxRepository) -> None:
    await _store(inbox, "1", [("$1", "!a"), ("$2", "!a")])
    gate = asyncio.Event()

    async def stuck(event: StoredEvent) -> None:
        await gate.wait()

    first = EventDispatcher()
    first.on(None, stuck)
    crashed = InboundProcessor(inbox, first)
    task = asyncio.create_task(crashed.run())
    await asyncio.sleep(0.1)
    task.cancel()  # as if the process died while handling "$1"
    with pytest.raises(asyncio.CancelledError):
        await task

    seen: list[str | None] = []

    async def record(event: StoredEvent) -> None:
        seen.append(event.event_id)

    second = EventDispatcher()
    second.on(None, record)
    assert await InboundProcessor(inbox, second).process_pending() == 2
    assert seen == ["$1", "$2"]


async def test_a_batch_costs_one_read_and_its_marks_bring_the_next(
    db: Database, inbox: InboxRepository
) -> None:
    # The processor's turn: the batch read after a wake-up, then one write that marks it handled
    # and reads the next batch, or when none is due, when the next postponed event falls due.
    seen: list[str | None] = []

    async def handler(event: StoredEvent) -> None:
        seen.append(event.event_id)

    dispatcher = EventDispatcher()
    dispatcher.on(None, handler)
    processor = InboundProcessor(inbox, dispatcher)
    start = (db.stats.reads, db.stats.writes)
    running = asyncio.create_task(processor.run())
    try:
        await eventually(_now_true(lambda: db.stats.reads > start[0]), "the first look")
        before = (db.stats.reads, db.stats.writes)
        for n in range(2):
            await _store(inbox, str(n), [(f"$e{n}", "!a")])
            processor.wake()
            # the store and the mark (polled on the counts: a read would count itself)
            marked = before[1] + 2 * (n + 1)
            await eventually(_now_true(lambda m=marked: db.stats.writes == m), f"batch {n}")
        assert seen == ["$e0", "$e1"]
        assert db.stats.reads - before[0] == 2
    finally:
        processor.stop()
        await asyncio.wait_for(running, 10)
    assert await inbox.counts() == {"pending": 0, "processed": 2, "failed": 0}
