"""The LMS event log: appended inside the transaction of the change it reports, read in order."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text, update

from bridge.contract.events import Event, EventPayload
from bridge.contract.shapes import dump
from bridge.store import prepared
from bridge.store.database import Database
from bridge.store.schema import event_cursors, events, webhook_cursor


@dataclass(frozen=True)
class LoggedEvent:
    """One event of the log."""

    seq: int
    id: str
    type: str
    data: dict[str, Any]
    created_at: datetime

    def envelope(self) -> Event:
        """The event as the feed lists it and the webhook receives it."""
        return Event(self.id, self.seq, self.type, self.created_at, self.data)


_EVENT_LOG_LOCK = 0x6C6D7362  # "lmsb": the advisory lock that orders event-log commits
# Built once: every change appends one, and every reader reads them.
_LOCK_LOG = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_EVENT_LOG_LOCK)
_APPEND = events.insert()
_AFTER = (
    select(events.c.seq, events.c.id, events.c.type, events.c.data, events.c.created_at)
    .where(events.c.seq > bindparam("seq"))
    .order_by(events.c.seq)
    .limit(bindparam("limit"))
)
_DELIVERED = select(webhook_cursor.c.delivered_seq)
_MARK_DELIVERED = (
    update(webhook_cursor)
    .where(webhook_cursor.c.id == 1)
    .values(delivered_seq=bindparam("seq"), updated_at=bindparam("now"))
)


def append_event(conn: Connection, payload: EventPayload, now: datetime) -> None:
    """Add an event in the caller's transaction, so the change and its event commit together.

    Call it last in the transaction: on PostgreSQL it takes the lock that orders event commits,
    and taking row locks after it could deadlock with a transaction waiting for it.
    """
    if conn.dialect.name == "postgresql":
        # `seq` is drawn from a sequence at insert time but the row appears at commit: without
        # this lock (held until commit) a later seq can commit first, readers of `after=` and the
        # webhook cursor move past the earlier one, and it is never delivered. SQLite already
        # has a single writer.
        prepared.first(conn, _LOCK_LOG, {})
    prepared.execute(
        conn,
        _APPEND,
        {
            "id": uuid.uuid4().hex,
            "type": payload.TYPE,
            "data": json.dumps(dump(payload), separators=(",", ":"), ensure_ascii=False),
            "created_at": now,
        },
    )


def read_after(conn: Connection, seq: int, limit: int) -> list[LoggedEvent]:
    """(Within a unit of work.) Up to `limit` events after `seq`, oldest first."""
    return [
        LoggedEvent(
            r.seq,
            r.id,
            r.type,
            json.loads(r.data),
            r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC),
        )
        for r in prepared.all_rows(conn, _AFTER, {"seq": seq, "limit": limit})
    ]


class EventLogRepository:
    """Reads the event log."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def after(self, seq: int, limit: int) -> list[LoggedEvent]:
        """Events after `seq`, oldest first."""
        return await self._db.read(lambda conn: read_after(conn, seq, limit))

    async def delivered_up_to(self) -> int:
        """The last seq the webhook acknowledged (0 before the first)."""
        value = await self._db.scalar(_DELIVERED)
        return int(value) if value is not None else 0

    async def mark_delivered(
        self, seq: int, now: datetime, then_read: int = 0
    ) -> list[LoggedEvent]:
        """Move the webhook cursor to `seq`; with `then_read`, also return up to that many
        events after it (the webhook's next page, read in the same unit)."""

        def work(conn: Connection) -> list[LoggedEvent]:
            if prepared.execute(conn, _MARK_DELIVERED, {"seq": seq, "now": now}) == 0:
                conn.execute(
                    webhook_cursor.insert().values(id=1, delivered_seq=seq, updated_at=now)
                )
            return read_after(conn, seq, then_read) if then_read else []

        return await self._db.write(work)

    async def last_seq(self) -> int:
        """The newest event's seq (0 before the first)."""
        query = select(func.max(events.c.seq))
        return int(await self._db.read(lambda conn: conn.execute(query).scalar()) or 0)

    async def cursor(self, name: str) -> int | None:
        """How far the reader `name` has got (None before it first moved)."""
        query = select(event_cursors.c.seq).where(event_cursors.c.name == name)
        value = await self._db.read(lambda conn: conn.execute(query).scalar())
        return None if value is None else int(value)

    async def move_cursor(self, name: str, seq: int, now: datetime) -> None:
        """Record that the reader `name` has handled everything up to `seq`."""

        def work(conn: Connection) -> None:
            result = conn.execute(
                update(event_cursors)
                .where(event_cursors.c.name == name)
                .values(seq=seq, updated_at=now)
            )
            if result.rowcount == 0:
                conn.execute(event_cursors.insert().values(name=name, seq=seq, updated_at=now))

        await self._db.write(work)
