"""Repository of messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.store.database import Database
from bridge.store.events import append_event
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
        created = await self._add(
            {
                "conversation_id": conversation_id,
                "sender": sender,
                "client_message_id": client_message_id,
                "body": body,
                "format": text_format,
                "html": html,
                "status": "queued",
                "created_at": now,
            },
            ["sender", "client_message_id"],
            "lms",
        )
        record = await self._one(
            and_(messages.c.sender == sender, messages.c.client_message_id == client_message_id)
        )
        assert record is not None
        return record, created

    async def add_incoming(
        self,
        conversation_id: str,
        sender: str,
        event_id: str,
        body: str,
        html: str | None,
        now: datetime,
    ) -> bool:
        """Record a message typed in a Matrix client, once per event; True when new."""
        return await self._add(
            {
                "conversation_id": conversation_id,
                "sender": sender,
                "client_message_id": None,
                "body": body,
                "format": "html" if html is not None else "plain",
                "html": html,
                "event_id": event_id,
                "status": "sent",
                "created_at": now,
                "sent_at": now,
            },
            ["event_id"],
            "matrix",
        )

    async def _add(self, values: dict[str, Any], unique: list[str], origin: str) -> bool:
        """Insert a message unless its unique key exists; its `message.created` event commits
        with it. True when inserted."""
        values = {"id": uuid.uuid4().hex, **values}
        now: datetime = values["created_at"]
        async with self._db.engine.begin() as conn:
            inserted = await conn.execute(
                self._dialect.insert(messages)
                .values(**values)
                .on_conflict_do_nothing(index_elements=unique)
                .returning(messages.c.seq)
            )
            if inserted.first() is None:
                return False
            data = {
                "message_id": values["id"],
                "conversation_id": values["conversation_id"],
                "sender": values["sender"],
                "body": values["body"],
                "format": values["format"],
                "html": values["html"],
                "event_id": values.get("event_id"),
                "origin": origin,
                "created_at": now.isoformat(),
            }
            await append_event(conn, "message.created", data, now)
        return True

    async def by_event_id(self, event_id: str) -> MessageRecord | None:
        """The message a Matrix event is, if it is one of ours."""
        return await self._one(messages.c.event_id == event_id)

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

    async def sending(self, conversation_id: str, sender: str) -> bool:
        """Whether a message of this sender in this conversation is still being sent."""
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(messages.c.seq)
                    .where(
                        messages.c.conversation_id == conversation_id,
                        messages.c.sender == sender,
                        messages.c.status == "queued",
                    )
                    .limit(1)
                )
            ).first()
        return row is not None

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
