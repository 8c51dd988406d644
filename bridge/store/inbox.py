"""Repository of what the homeserver sent: transaction ids and the events awaiting processing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.store import prepared
from bridge.store.database import Database
from bridge.store.schema import appservice_transactions, inbound_events


@dataclass(frozen=True)
class NewEvent:
    """An event as received, before it is stored."""

    event_id: str | None
    room_id: str | None
    kind: str  # "timeline" or "ephemeral"
    event_type: str
    payload: dict[str, Any]
    # Known to need no processing (the echo of one of the bridge's own messages): stored as
    # processed already, for the dedupe by event id, and never handed to a handler.
    handled: bool = False


@dataclass(frozen=True)
class StoredEvent:
    """A received event awaiting (or past) processing."""

    seq: int
    event_id: str | None
    room_id: str | None
    kind: str
    event_type: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class InboxBatch:
    """The events due for processing, and when none is, when the next postponed one falls due."""

    events: list[StoredEvent]
    next_retry: datetime | None


@dataclass(frozen=True)
class FailedEvent:
    """An event set aside after its handling failed too often (for an operator)."""

    seq: int
    event_id: str | None
    room_id: str | None
    event_type: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class TransactionOutcome:
    """What storing a transaction did."""

    replay: bool
    new_events: int
    to_process: int = 0  # of the new events, those not already handled


_t = appservice_transactions.c
_i = inbound_events.c
# Built once: they run for every transaction the homeserver sends.
_SEEN_TXN = select(_t.fingerprint, _t.received_at).where(_t.txn_id == bindparam("txn_id"))
_ADD_TXN = appservice_transactions.insert()
_RENEW_TXN = (
    update(appservice_transactions)
    .where(_t.txn_id == bindparam("renewed"))
    .values(fingerprint=bindparam("fingerprint"), received_at=bindparam("received_at"))
)
_waiting = inbound_events.alias("waiting")
_PENDING = (
    select(_i.seq, _i.event_id, _i.room_id, _i.kind, _i.event_type, _i.payload, _i.attempts)
    .where(
        _i.processed_at.is_(None),
        _i.failed.is_(False),
        # A room whose next event was postponed is left out whole.
        func.coalesce(_i.room_id, "").not_in(
            select(func.coalesce(_waiting.c.room_id, "")).where(
                _waiting.c.processed_at.is_(None),
                _waiting.c.failed.is_(False),
                _waiting.c.next_attempt_at > bindparam("now"),
            )
        ),
    )
    .order_by(_i.seq)
    .limit(bindparam("limit"))
)
_EARLIEST_RETRY = select(func.min(_i.next_attempt_at)).where(
    _i.processed_at.is_(None), _i.failed.is_(False), _i.next_attempt_at.is_not(None)
)
_MARK_PROCESSED = (
    update(inbound_events)
    .where(_i.seq.in_(bindparam("seqs", expanding=True)))
    .values(processed_at=bindparam("now"), next_attempt_at=None)
)


def _read_pending(conn: Connection, now: datetime, limit: int) -> list[StoredEvent]:
    return [
        StoredEvent(
            seq=r.seq,
            event_id=r.event_id,
            room_id=r.room_id,
            kind=r.kind,
            event_type=r.event_type,
            payload=json.loads(r.payload),
            attempts=r.attempts,
        )
        for r in prepared.all_rows(conn, _PENDING, {"now": now, "limit": limit})
    ]


def _read_earliest_retry(conn: Connection) -> datetime | None:
    value = prepared.scalar(conn, _EARLIEST_RETRY, {})
    return _aware(value) if value is not None else None


class InboxRepository:
    """All SQL about `appservice_transactions` and `inbound_events`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        dialect = postgresql if db.dialect == "postgresql" else sqlite
        self._insert_events_statement = (
            dialect.insert(inbound_events)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(_i.seq, _i.processed_at)
        )

    async def store_transaction(
        self,
        txn_id: str,
        fingerprint: str,
        events: list[NewEvent],
        now: datetime,
        window: timedelta,
    ) -> TransactionOutcome:
        """Durably record a transaction and its events, once.

        A txn id seen within `window` with the same fingerprint is a resend: nothing is written.
        Events already stored (same event id, e.g. under another txn id) are skipped.
        """

        def work(conn: Connection) -> TransactionOutcome:
            seen = prepared.first(conn, _SEEN_TXN, {"txn_id": txn_id})
            if (
                seen is not None
                and seen.fingerprint == fingerprint
                and _aware(seen.received_at) >= now - window
            ):
                return TransactionOutcome(replay=True, new_events=0)
            values = {"fingerprint": fingerprint, "received_at": now}
            if seen is None:
                prepared.execute(conn, _ADD_TXN, {"txn_id": txn_id, **values})
            else:
                prepared.execute(conn, _RENEW_TXN, {"renewed": txn_id, **values})
            inserted, to_process = self._insert_events(conn, events, now)
            return TransactionOutcome(replay=False, new_events=inserted, to_process=to_process)

        return await self._db.write(work)

    async def store_events(self, events: list[NewEvent], now: datetime) -> int:
        """Record events found outside any transaction (catching up from room history), those
        not stored before; returns how many were new."""
        return (await self._db.write(lambda conn: self._insert_events(conn, events, now)))[0]

    def _insert_events(
        self, conn: Connection, events: list[NewEvent], now: datetime
    ) -> tuple[int, int]:
        """Store events not stored before: (how many, how many of them await processing)."""
        if not events:
            return 0, 0
        rows = [
            {
                "event_id": e.event_id,
                "room_id": e.room_id,
                "kind": e.kind,
                "event_type": e.event_type,
                "payload": json.dumps(e.payload, separators=(",", ":")),
                "received_at": now,
                "processed_at": now if e.handled else None,
                "attempts": 0,
                "failed": False,
            }
            for e in events
        ]
        # RETURNING counts the rows really inserted (rowcount is unreliable for batches).
        inserted = conn.execute(self._insert_events_statement, rows).all()
        return len(inserted), sum(1 for row in inserted if row.processed_at is None)

    async def last_received_at(self) -> datetime | None:
        """When the newest event still kept was received, if any."""
        value = await self._db.scalar(select(func.max(inbound_events.c.received_at)))
        return _aware(value) if value is not None else None

    async def next_batch(
        self, now: datetime, limit: int, processed: Sequence[int] = ()
    ) -> InboxBatch:
        """Mark the `processed` events handled, then read the unprocessed events of rooms not
        waiting for a retry, oldest first, and when none is due, when the next postponed one
        falls due: one unit for the processor's turn.

        A room whose next event was postponed is left out whole, so the events behind it keep
        their order and don't crowd other rooms out of the batch.
        """

        def work(conn: Connection) -> InboxBatch:
            if processed:
                conn.execute(_MARK_PROCESSED, {"seqs": list(processed), "now": now})
            events = _read_pending(conn, now, limit)
            return InboxBatch(events, None if events else _read_earliest_retry(conn))

        return await (self._db.write(work) if processed else self._db.read(work))

    async def mark_processed(self, seqs: list[int], now: datetime) -> None:
        """Record that events were handled."""
        if not seqs:
            return
        await self._db.execute(_MARK_PROCESSED, {"seqs": seqs, "now": now})

    async def mark_retry(self, seq: int, attempts: int, error: str, when: datetime) -> None:
        """Record a failed attempt and when to try again."""
        await self._update(seq, attempts=attempts, last_error=error, next_attempt_at=when)

    async def mark_failed(self, seq: int, attempts: int, error: str) -> None:
        """Give up on an event (kept, with its error, for an operator to look at)."""
        await self._update(seq, attempts=attempts, last_error=error, failed=True)

    async def _update(self, seq: int, **values: Any) -> None:
        await self._db.execute(
            update(inbound_events).where(inbound_events.c.seq == seq).values(**values)
        )

    async def prune_transactions(self, older_than: datetime) -> int:
        """Forget transaction ids received before `older_than`."""
        deleted = await self._db.execute(
            delete(appservice_transactions).where(
                appservice_transactions.c.received_at < older_than
            )
        )
        return max(deleted, 0)

    async def prune_processed(self, older_than: datetime) -> int:
        """Delete events processed before `older_than` (failed ones stay for an operator)."""
        deleted = await self._db.execute(
            delete(inbound_events).where(inbound_events.c.processed_at < older_than)
        )
        return max(deleted, 0)

    async def failed(self, limit: int) -> list[FailedEvent]:
        """Events set aside after their last attempt failed, oldest first."""
        c = inbound_events.c
        query = (
            select(c.seq, c.event_id, c.room_id, c.event_type, c.attempts, c.last_error)
            .where(c.failed.is_(True))
            .order_by(c.seq)
            .limit(limit)
        )
        return [FailedEvent(*row) for row in await self._db.rows(query)]

    async def retry_failed(self, seqs: list[int] | None) -> int:
        """Put set-aside events (those of `seqs`, or all) back in line; returns how many."""
        c = inbound_events.c
        statement = (
            update(inbound_events)
            .where(c.failed.is_(True))
            .values(failed=False, attempts=0, next_attempt_at=None)
        )
        if seqs is not None:
            statement = statement.where(c.seq.in_(seqs))
        return max(await self._db.execute(statement), 0)

    async def counts(self) -> dict[str, int]:
        """How many events are pending, processed and failed."""
        c = inbound_events.c
        query = select(
            func.count().filter(and_(c.processed_at.is_(None), c.failed.is_(False))),
            func.count().filter(c.processed_at.is_not(None)),
            func.count().filter(c.failed.is_(True)),
        )
        row = await self._db.first(query)
        assert row is not None
        pending, processed, failed = row
        return {"pending": pending, "processed": processed, "failed": failed}


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
