"""Repository of the automatic notices to students who wrote outside a tutor's hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from bridge.contract.events import AvailabilityNotice
from bridge.store.conversations import read_conversation
from bridge.store.database import Database
from bridge.store.events import LoggedEvent, append_event, read_after
from bridge.store.roster import read_states_hours
from bridge.store.schema import availability_notices

_n = availability_notices.c


@dataclass(frozen=True)
class NoticeRecord:
    """One notice, posted in the conversation's room once `event_id` is set."""

    id: str
    conversation_id: str
    day: str
    student: str
    tutor: str
    message_id: str
    body: str
    event_id: str | None
    created_at: datetime


def _record(row: Any) -> NoticeRecord:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return NoticeRecord(
        row.id,
        row.conversation_id,
        row.day,
        row.student,
        row.tutor,
        row.message_id,
        row.body,
        row.event_id,
        created,
    )


def _addressee_stating_hours(conn: Connection, event: LoggedEvent) -> str | None:
    if event.type != "message.created":
        return None
    sender = event.data.get("sender")
    conversation = read_conversation(conn, str(event.data.get("conversation_id")))
    if conversation is None or not isinstance(sender, str) or not conversation.has(sender):
        return None
    addressee = conversation.other(sender)
    return addressee if read_states_hours(conn, addressee) else None


class AvailabilityNoticeRepository:
    """All SQL about out-of-hours notices."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def log_after(self, seq: int, limit: int) -> list[tuple[LoggedEvent, str | None]]:
        """The event log after `seq` (up to `limit` events), each with, for a new message, the
        person it was written to if they state hours (None otherwise: no notice can be due).
        One unit for the page, rather than one more for each message."""

        def work(conn: Connection) -> list[tuple[LoggedEvent, str | None]]:
            return [
                (event, _addressee_stating_hours(conn, event))
                for event in read_after(conn, seq, limit)
            ]

        return await self._db.read(work)

    async def record(self, notice: NoticeRecord) -> bool:
        """Keep a notice and publish `availability.notice`, unless the conversation already had
        one that day; True when this one is new."""
        try:
            return await self._record(notice)
        except IntegrityError:  # another process recorded the day's notice first
            return False

    async def _record(self, notice: NoticeRecord) -> bool:
        def work(conn: Connection) -> bool:
            taken = (
                conn.execute(
                    select(_n.id).where(
                        _n.conversation_id == notice.conversation_id, _n.day == notice.day
                    )
                )
            ).first()
            if taken is not None:
                return False
            conn.execute(
                availability_notices.insert().values(
                    id=notice.id,
                    conversation_id=notice.conversation_id,
                    day=notice.day,
                    student=notice.student,
                    tutor=notice.tutor,
                    message_id=notice.message_id,
                    body=notice.body,
                    created_at=notice.created_at,
                )
            )
            append_event(
                conn,
                AvailabilityNotice(
                    notice.id,
                    notice.conversation_id,
                    notice.student,
                    notice.tutor,
                    notice.message_id,
                    notice.body,
                    notice.day,
                    notice.created_at,
                ),
                notice.created_at,
            )
            return True

        return await self._db.write(work)

    async def unposted(self, limit: int) -> list[NoticeRecord]:
        """Notices not in their room yet, oldest first."""
        query = (
            select(availability_notices)
            .where(_n.event_id.is_(None))
            .order_by(_n.created_at)
            .limit(limit)
        )
        return [_record(r) for r in await self._db.rows(query)]

    async def mark_posted(self, notice_id: str, event_id: str) -> None:
        """The bot posted the notice as `event_id`."""
        await self._db.execute(
            update(availability_notices).where(_n.id == notice_id).values(event_id=event_id)
        )

    async def recent(self, conversation_id: str, limit: int) -> list[NoticeRecord]:
        """A conversation's newest notices, oldest first."""
        query = (
            select(availability_notices)
            .where(_n.conversation_id == conversation_id)
            .order_by(_n.created_at.desc())
            .limit(limit)
        )
        rows = await self._db.rows(query)
        return [_record(r) for r in reversed(rows)]
