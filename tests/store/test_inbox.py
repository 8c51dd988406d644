"""The inbox repository on SQLite and PostgreSQL: transactions stored once, events once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.inbox import InboxRepository, NewEvent

WINDOW = timedelta(hours=1)


def _events(*ids: str, room: str = "!r:hs") -> list[NewEvent]:
    return [NewEvent(i, room, "timeline", "m.room.message", {"event_id": i}) for i in ids]


@pytest.fixture
async def inbox(db: Database) -> InboxRepository:
    await migrate.upgrade(db)
    return InboxRepository(db)


async def test_a_resent_transaction_writes_nothing(inbox: InboxRepository) -> None:
    now = datetime.now(UTC)
    first = await inbox.store_transaction("1", "fp", _events("$a", "$b"), now, WINDOW)
    again = await inbox.store_transaction("1", "fp", _events("$a", "$b"), now, WINDOW)
    assert (first.replay, first.new_events) == (False, 2)
    assert (again.replay, again.new_events) == (True, 0)
    assert [e.event_id for e in (await inbox.next_batch(datetime.now(UTC), 10)).events] == [
        "$a",
        "$b",
    ]


async def test_the_same_events_under_a_new_txn_id_are_stored_once(inbox: InboxRepository) -> None:
    now = datetime.now(UTC)
    await inbox.store_transaction("1", "fp1", _events("$a", "$b"), now, WINDOW)
    outcome = await inbox.store_transaction("2", "fp2", _events("$b", "$c"), now, WINDOW)
    assert (outcome.replay, outcome.new_events) == (False, 1)
    assert [e.event_id for e in (await inbox.next_batch(datetime.now(UTC), 10)).events] == [
        "$a",
        "$b",
        "$c",
    ]


async def test_a_reused_txn_id_with_new_content_is_a_new_transaction(
    inbox: InboxRepository,
) -> None:
    # A SQLite Synapse restarts its txn counter at 1 after a restart.
    now = datetime.now(UTC)
    await inbox.store_transaction("1", "fp-before-restart", _events("$a"), now, WINDOW)
    outcome = await inbox.store_transaction("1", "fp-after-restart", _events("$z"), now, WINDOW)
    assert (outcome.replay, outcome.new_events) == (False, 1)


async def test_txn_ids_are_forgotten_after_the_window(inbox: InboxRepository) -> None:
    old = datetime.now(UTC) - timedelta(hours=2)
    await inbox.store_transaction("1", "fp", _events("$a"), old, WINDOW)
    assert await inbox.prune_transactions(datetime.now(UTC) - WINDOW) == 1
    # Even when a txn id is forgotten, its events are still stored only once.
    outcome = await inbox.store_transaction("1", "fp", _events("$a"), datetime.now(UTC), WINDOW)
    assert (outcome.replay, outcome.new_events) == (False, 0)


async def test_a_txn_id_older_than_the_window_is_new_even_before_pruning(
    inbox: InboxRepository,
) -> None:
    old = datetime.now(UTC) - timedelta(hours=2)
    await inbox.store_transaction("7", "fp", _events("$old"), old, WINDOW)
    outcome = await inbox.store_transaction(
        "7", "fp", _events("$old", "$new"), datetime.now(UTC), WINDOW
    )
    assert (outcome.replay, outcome.new_events) == (False, 1)


async def test_processed_events_are_pruned_after_the_retention(inbox: InboxRepository) -> None:
    now = datetime.now(UTC)
    await inbox.store_transaction("1", "fp", _events("$done", "$bad", "$open"), now, WINDOW)
    done, bad, _ = (await inbox.next_batch(now, 10)).events
    await inbox.mark_processed([done.seq], now - timedelta(days=8))
    await inbox.mark_failed(bad.seq, 8, "gave up")
    assert await inbox.prune_processed(now - timedelta(days=7)) == 1
    assert await inbox.counts() == {"pending": 1, "processed": 0, "failed": 1}


async def test_processing_marks(inbox: InboxRepository) -> None:
    now = datetime.now(UTC)
    await inbox.store_transaction("1", "fp", _events("$a", "$b", "$c"), now, WINDOW)
    a, b, c = (await inbox.next_batch(now, 10)).events
    marked = await inbox.next_batch(now, 10, [a.seq])  # marks "$a", reads the rest
    assert [e.event_id for e in marked.events] == ["$b", "$c"] and marked.next_retry is None
    later = now + timedelta(minutes=5)
    await inbox.mark_retry(b.seq, 1, "boom", later)
    await inbox.mark_failed(c.seq, 8, "gave up")
    assert (await inbox.next_batch(now, 10)).events == []  # "$b" waits for its retry
    pending = (await inbox.next_batch(later, 10)).events
    assert [(e.event_id, e.attempts) for e in pending] == [("$b", 1)]
    assert (await inbox.next_batch(now, 10)).next_retry == later
    assert await inbox.counts() == {"pending": 1, "processed": 1, "failed": 1}


async def test_a_room_waiting_for_a_retry_does_not_crowd_out_others(
    inbox: InboxRepository,
) -> None:
    now = datetime.now(UTC)
    backlog = _events(*(f"$a{n}" for n in range(20)), room="!busy:hs")
    await inbox.store_transaction("1", "fp1", backlog, now, WINDOW)
    await inbox.store_transaction("2", "fp2", _events("$quiet", room="!quiet:hs"), now, WINDOW)
    first = (await inbox.next_batch(now, 5)).events[0]
    await inbox.mark_retry(first.seq, 1, "boom", now + timedelta(minutes=1))
    assert [e.event_id for e in (await inbox.next_batch(now, 5)).events] == ["$quiet"]


async def test_ephemeral_events_without_ids_are_all_kept(inbox: InboxRepository) -> None:
    receipts = [NewEvent(None, "!r:hs", "ephemeral", "m.receipt", {"n": n}) for n in range(3)]
    outcome = await inbox.store_transaction("1", "fp", receipts, datetime.now(UTC), WINDOW)
    assert outcome.new_events == 3
    assert [e.payload for e in (await inbox.next_batch(datetime.now(UTC), 10)).events] == [
        {"n": 0},
        {"n": 1},
        {"n": 2},
    ]
