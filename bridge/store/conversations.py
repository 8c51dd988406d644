"""Repository of conversations (one per pair of people)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.store.database import Database
from bridge.store.schema import conversations


@dataclass(frozen=True)
class ConversationRecord:
    """A conversation as stored."""

    id: str
    user_a: str
    user_b: str
    started_by: str
    room_id: str | None
    state: str


def pair(a: str, b: str) -> tuple[str, str]:
    """The stored order of a pair of people."""
    return (a, b) if a < b else (b, a)


class ConversationRepository:
    """All SQL about `conversations`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._dialect = postgresql if db.dialect == "postgresql" else sqlite

    async def claim(self, initiator: str, recipient: str, now: datetime) -> ConversationRecord:
        """The pair's conversation, recorded as "creating" if there was none (race-safe)."""
        user_a, user_b = pair(initiator, recipient)
        async with self._db.engine.begin() as conn:
            await conn.execute(
                self._dialect.insert(conversations)
                .values(
                    id=uuid.uuid4().hex,
                    user_a=user_a,
                    user_b=user_b,
                    started_by=initiator,
                    room_id=None,
                    state="creating",
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["user_a", "user_b"])
            )
        found = await self.by_pair(initiator, recipient)
        assert found is not None
        return found

    async def by_pair(self, a: str, b: str) -> ConversationRecord | None:
        """The conversation of two people, if any."""
        user_a, user_b = pair(a, b)
        return await self._one(
            (conversations.c.user_a == user_a) & (conversations.c.user_b == user_b)
        )

    async def by_room(self, room_id: str) -> ConversationRecord | None:
        """The conversation a Matrix room belongs to, if any."""
        return await self._one(conversations.c.room_id == room_id)

    async def get(self, conversation_id: str) -> ConversationRecord | None:
        """A conversation by id."""
        return await self._one(conversations.c.id == conversation_id)

    async def _one(self, condition: object) -> ConversationRecord | None:
        c = conversations.c
        query = select(c.id, c.user_a, c.user_b, c.started_by, c.room_id, c.state).where(
            condition  # type: ignore[arg-type]
        )
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return ConversationRecord(*row) if row else None

    async def set_room(self, conversation_id: str, room_id: str, state: str) -> None:
        """Record the conversation's room and state."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(room_id=room_id, state=state)
            )
