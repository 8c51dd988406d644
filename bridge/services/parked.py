"""The operator's view of what the bridge set aside: events whose handling kept failing and
messages the homeserver refused for good. Listed, and put back in line on request; a running
bridge picks them up within seconds."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.store.database import Database
from bridge.store.inbox import FailedEvent, InboxRepository
from bridge.store.messages import MessageRecord, MessageRepository


@dataclass(frozen=True)
class Parked:
    """Everything set aside, oldest first."""

    events: list[FailedEvent]
    messages: list[MessageRecord]


class ParkedWork:
    """Lists and retries set-aside events and messages."""

    def __init__(self, db: Database) -> None:
        self._inbox = InboxRepository(db)
        self._messages = MessageRepository(db)

    async def list(self, limit: int = 1000) -> Parked:
        """What is set aside (at most `limit` of each kind)."""
        return Parked(await self._inbox.failed(limit), await self._messages.failed(limit))

    async def retry(
        self, event_seqs: list[int] | None, message_ids: list[str] | None
    ) -> tuple[int, int]:
        """Put back in line the events and messages named (None: all of that kind; an empty
        list: none); returns how many of each."""
        events = await self._inbox.retry_failed(event_seqs) if event_seqs != [] else 0
        messages = await self._messages.retry_failed(message_ids) if message_ids != [] else 0
        return events, messages
