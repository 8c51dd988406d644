"""Reading conversations: one person's inbox, a conversation's history, read markers.

Only participants see a conversation. Marking a conversation read also sends the Matrix read
receipt as that person, so their Matrix clients agree; receipts made in Matrix clients come back
through `ConversationRoomEvents.on_receipt`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge.contract.roster import AvailabilityWords
from bridge.domain.avatar import initials_of
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import HomeserverClient, HomeserverError, HomeserverUnreachable
from bridge.services.availability import role_at_shared, stated_hours
from bridge.services.policy import UnknownUser
from bridge.services.refusals import Refused, no_such_conversation, no_such_message
from bridge.store.conversations import (
    ConversationRecord,
    ConversationRepository,
    InboxEntry,
    LastMessage,
)
from bridge.store.messages import MessageRecord, MessageRepository
from bridge.store.roster import RosterRepository, UserRecord

log = logging.getLogger(__name__)
PREVIEW_CHARS = 140


@dataclass(frozen=True)
class Person:
    """The other side of a conversation, as an inbox shows them."""

    user_id: str
    display_name: str
    avatar_url: str | None
    initials: str
    role: str | None
    active: bool
    availability: AvailabilityWords | None


@dataclass(frozen=True)
class InboxItem:
    """One row of a person's inbox."""

    conversation: ConversationRecord
    other: Person
    last_message: LastMessage | None
    preview: str | None
    unread: int


@dataclass(frozen=True)
class HistoryEntry:
    """A message of a page of history, as one participant sees it."""

    message: MessageRecord
    read: bool  # by this participant (their own always are)
    seen: bool  # their own message, read by the other person


def preview_of(body: str, deleted: bool) -> str:
    """The one-line preview of a message."""
    if deleted:
        return "Message deleted"
    line = " ".join(body.split())
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + "…"


def shared_role(me: UserRecord, other: UserRecord) -> str | None:
    """The other person's role in an institution both belong to (else their first one)."""
    role = role_at_shared(other, me)
    if role is None and other.memberships:
        return other.memberships[0][1]
    return role


class ReadingService:
    """Answers the reading routes of the API."""

    def __init__(
        self,
        conversations: ConversationRepository,
        messages: MessageRepository,
        roster: RosterRepository,
        client: HomeserverClient,
        ids: MatrixIdMapper,
        on_events: Callable[[], None],
    ) -> None:
        self._on_events = on_events
        self._conversations = conversations
        self._messages = messages
        self._roster = roster
        self._client = client
        self._ids = ids

    async def inbox(self, user_id: str, limit: int) -> list[InboxItem]:
        """A person's conversations, most recently active first. Raises UnknownUser."""
        me = await self._roster.get_user(user_id)
        if me is None:
            raise UnknownUser(user_id)
        items = []
        for entry in await self._conversations.inbox(user_id, limit):
            items.append(await self._item(me, entry))
        return items

    async def unread(self, user_id: str) -> tuple[int, int]:
        """(unread messages, conversations with some) of a person. Raises UnknownUser."""
        if await self._roster.get_user(user_id) is None:
            raise UnknownUser(user_id)
        return await self._conversations.unread_total(user_id)

    async def _item(self, me: UserRecord, entry: InboxEntry) -> InboxItem:
        other_id = entry.conversation.other(me.id)
        other = await self._roster.get_user(other_id)
        if other is None:  # removed from the roster; the conversation stays readable
            person = Person(other_id, other_id, None, "?", None, False, None)
        else:
            role = shared_role(me, other)
            person = Person(
                other.id,
                other.display_name,
                other.avatar_url,
                initials_of(other.display_name),
                role,
                other.active,
                await self._hours(other) if role == "tutor" else None,
            )
        last = entry.last_message
        preview = preview_of(last.body, last.deleted) if last else None
        return InboxItem(entry.conversation, person, last, preview, entry.unread)

    async def _hours(self, tutor: UserRecord) -> AvailabilityWords | None:
        if tutor.availability is None:
            return None
        zones = await self._roster.home_timezones([tutor.id])
        return stated_hours(tutor.availability, zones.get(tutor.id))

    async def _as_participant(self, conversation_id: str, user_id: str) -> ConversationRecord:
        conversation = await self._conversations.get(conversation_id)
        if conversation is None or conversation.state == "creating":
            raise no_such_conversation(conversation_id)
        if not conversation.has(user_id):
            raise Refused(
                403, "not_a_participant", "Only its two participants can read a conversation"
            )
        return conversation

    async def _message_in(self, conversation_id: str, message_id: str) -> MessageRecord:
        message = await self._messages.get(message_id)
        if message is None or message.conversation_id != conversation_id:
            raise no_such_message(message_id)
        return message

    async def item(self, conversation_id: str, user_id: str) -> InboxItem:
        """One of a person's conversations as their inbox lists it (participants only)."""
        await self._as_participant(conversation_id, user_id)
        me = await self._roster.get_user(user_id)
        entry = await self._conversations.inbox_entry(conversation_id, user_id)
        if me is None or entry is None:
            raise no_such_conversation(conversation_id)
        return await self._item(me, entry)

    async def history(
        self, conversation_id: str, user_id: str, before: str | None, limit: int
    ) -> list[HistoryEntry]:
        """A page of messages (oldest first) before the message `before`, each with whether
        `user_id` has read it (their own always count as read) and, for their own, whether the
        other person has."""
        conversation = await self._as_participant(conversation_id, user_id)
        before_seq = (await self._message_in(conversation_id, before)).seq if before else None
        page = await self._messages.page(conversation_id, before_seq, limit)
        read_up_to = await self._conversations.read_up_to(conversation_id, user_id)
        seen_up_to = await self._conversations.read_up_to(
            conversation_id, conversation.other(user_id)
        )
        return [
            HistoryEntry(
                m,
                m.sender == user_id or m.seq <= read_up_to,
                m.sender == user_id and m.seq <= seen_up_to,
            )
            for m in page
        ]

    async def mark_read(self, conversation_id: str, user_id: str, up_to: str) -> bool:
        """Mark a conversation read up to a message (never backwards); True when it moved."""
        conversation = await self._as_participant(conversation_id, user_id)
        message = await self._message_in(conversation_id, up_to)
        moved = await self._conversations.mark_read(
            conversation_id, user_id, message.seq, message.id, datetime.now(UTC), "lms"
        )
        if moved:
            self._on_events()
        if moved and message.event_id is not None and conversation.room_id is not None:
            try:
                await self._client.intent(self._ids.user_id(user_id)).send_read_receipt(
                    conversation.room_id, message.event_id
                )
            except (HomeserverError, HomeserverUnreachable) as exc:
                # The LMS's marker is what counts; Matrix clients catch up on the next read.
                log.warning("read receipt for %s not sent: %s", conversation_id, exc)
        return moved
