"""Repository of messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.store.database import Database
from bridge.store.schema import messages


@dataclass(frozen=True)
class MessageRecord:
    """A stored message."""

    seq: int
    id: str
    conversation_id: str
    sender: str
    client_message_id: str | None
    body: str
    format: str
    html: str | None
    event_id: str | None
    status: str
    created_at: datetime


_COLUMNS = (
    messages.c.seq,
    messages.c.id,
    messages.c.conversation_id,
    messages.c.sender,
    messages.c.client_message_id,
    messages.c.body,
    messages.c.format,
    messages.c.html,
    messages.c.event_id,
    messages.c.status,
    messages.c.created_at,
)


class MessageRepository:
    """All SQL about `messages`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._dialect = postgresql if db.dialect == "postgresql" else sqlite

    async def add_outgoing(
        self,
        conversation_id: str,
        sender: str,
        client_message_id: str,
        body: str,
        text_format: str,
        html: str | None,
        now: datetime,
    ) -> tuple[MessageRecord, bool]:
        """Store a message from the LMS, once per (sender, client message id); (record, new)."""
        async with self._db.engine.begin() as conn:
            inserted = await conn.execute(
                self._dialect.insert(messages)
                .values(
                    id=uuid.uuid4().hex,
                    conversation_id=conversation_id,
                    sender=sender,
                    client_message_id=client_message_id,
                    body=body,
                    format=text_format,
                    html=html,
                    status="queued",
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["sender", "client_message_id"])
                .returning(messages.c.seq)
            )
            created = inserted.first() is not None
        record = await self._one(
            and_(messages.c.sender == sender, messages.c.client_message_id == client_message_id)
        )
        assert record is not None
        return record, created

    async def get(self, message_id: str) -> MessageRecord | None:
        """A message by id."""
        return await self._one(messages.c.id == message_id)

    async def _one(self, condition: object) -> MessageRecord | None:
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(condition))).first()  # type: ignore[arg-type]
        return MessageRecord(*row) if row else None

    async def queued(self, limit: int) -> list[MessageRecord]:
        """Messages waiting to be sent, oldest first."""
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(
                select(*_COLUMNS)
                .where(messages.c.status == "queued")
                .order_by(messages.c.seq)
                .limit(limit)
            )
            return [MessageRecord(*r) for r in rows]

    async def queued_before(self, conversation_id: str, seq: int) -> bool:
        """Whether an older message of the conversation still waits (order must be kept)."""
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(messages.c.seq)
                    .where(
                        messages.c.conversation_id == conversation_id,
                        messages.c.status == "queued",
                        messages.c.seq < seq,
                    )
                    .limit(1)
                )
            ).first()
        return row is not None

    async def mark_sent(self, message_id: str, event_id: str, now: datetime) -> None:
        """Record the Matrix event of a sent message."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(messages)
                .where(messages.c.id == message_id)
                .values(status="sent", event_id=event_id, sent_at=now)
            )
