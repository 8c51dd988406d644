"""The LMS event log: appended inside the transaction of the change it reports, read in order."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.database import Database
from bridge.store.schema import events


@dataclass(frozen=True)
class LoggedEvent:
    """One event of the log."""

    seq: int
    id: str
    type: str
    data: dict[str, Any]
    created_at: datetime


async def append_event(
    conn: AsyncConnection, event_type: str, data: dict[str, Any], now: datetime
) -> None:
    """Add an event in the caller's transaction, so the change and its event commit together."""
    await conn.execute(
        events.insert().values(
            id=uuid.uuid4().hex,
            type=event_type,
            data=json.dumps(data, separators=(",", ":"), ensure_ascii=False),
            created_at=now,
        )
    )


class EventLogRepository:
    """Reads the event log."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def after(self, seq: int, limit: int) -> list[LoggedEvent]:
        """Events after `seq`, oldest first."""
        query = (
            select(events.c.seq, events.c.id, events.c.type, events.c.data, events.c.created_at)
            .where(events.c.seq > seq)
            .order_by(events.c.seq)
            .limit(limit)
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            LoggedEvent(
                r.seq,
                r.id,
                r.type,
                json.loads(r.data),
                r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC),
            )
            for r in rows
        ]
