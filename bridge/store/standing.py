"""Where a sender stands before a message is stored, read in one unit of work.

A message asks several things of the database before it may be stored: whether it was stored
before (under the LMS's client message id, or its Matrix event id), the conversation, the
sender's suspension, and the pair's policy facts. Asked one by one they are as many hand-offs
to a database thread; here they are one. Each question is the owning repository's own query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from bridge.domain.policy import PairFacts
from bridge.store.conversations import (
    ConversationRecord,
    read_conversation,
    read_conversation_in_room,
)
from bridge.store.database import Database
from bridge.store.messages import MessageRecord, read_client_message, read_event_message
from bridge.store.moderation import Suspension, read_suspension
from bridge.store.roster import read_pair_facts


@dataclass(frozen=True)
class SenderStanding:
    """What the bridge's records say about a sender writing in a conversation.

    Reading stops at the first answer that decides: a message stored before leaves the rest
    unread, and so does a conversation that doesn't exist or that the sender isn't part of.
    """

    existing: MessageRecord | None = None  # stored before (same client message or event id)
    conversation: ConversationRecord | None = None
    suspension: Suspension | None = None  # the sender's latest, lifted or not
    facts: PairFacts | None = None  # the pair's (None: not read, or someone is unknown)


class StandingRepository:
    """Reads a sender's standing in one unit (the queries are the other repositories')."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def of_sender(
        self,
        conversation_id: str,
        sender: str,
        now: datetime,
        client_message_id: str | None = None,
    ) -> SenderStanding:
        """The sender's standing in a conversation; `client_message_id` also looks for a
        message stored under it."""

        def work(conn: Connection) -> SenderStanding:
            if client_message_id is not None:
                existing = read_client_message(conn, sender, client_message_id)
                if existing is not None:
                    return SenderStanding(existing=existing)
            conversation = read_conversation(conn, conversation_id)
            if conversation is None or not conversation.has(sender):
                return SenderStanding(conversation=conversation)
            return _writer(conn, conversation, sender, now)

        return await self._db.read(work)

    async def of_room_event(
        self, room_id: str, sender: str, event_id: str, now: datetime
    ) -> SenderStanding:
        """The standing of a person whose event `event_id` (a message typed in Matrix) is in
        the room `room_id`: the room's conversation, then as for `of_sender`."""

        def work(conn: Connection) -> SenderStanding:
            conversation = read_conversation_in_room(conn, room_id)
            if conversation is None or not conversation.has(sender):
                return SenderStanding(conversation=conversation)
            existing = read_event_message(conn, event_id)
            if existing is not None:
                return SenderStanding(existing=existing, conversation=conversation)
            return _writer(conn, conversation, sender, now)

        return await self._db.read(work)


def _writer(
    conn: Connection, conversation: ConversationRecord, sender: str, now: datetime
) -> SenderStanding:
    return SenderStanding(
        conversation=conversation,
        suspension=read_suspension(conn, sender),
        facts=read_pair_facts(conn, sender, conversation.other(sender), now),
    )
