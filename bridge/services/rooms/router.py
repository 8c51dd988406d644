"""Routes each event the homeserver sends to the handlers of the kind of room it is in.

Which kind a room is only the bridge's own records say (room state claiming to be a
conversation, put there by anyone but the bot, counts for nothing): the moderators' admin room
is the one the bridge keeps, a conversation room is one the conversation table names, and every
other room is foreign. A room is found to be a conversation room only once its record names it
(the bot makes the room, records it, and only then invites anyone), so a room is never taken
for a conversation too early; what is known to be a conversation or the admin room stays so.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable

from bridge.cache import BoundedCache
from bridge.services.inbound import EventDispatcher, Handler
from bridge.store.conversations import ConversationRepository
from bridge.store.inbox import StoredEvent

CACHE_SIZE = 10_000


class RoomKind(enum.Enum):
    """The kinds of room the bridge's accounts meet."""

    CONVERSATION = "conversation"
    ADMIN = "admin"
    FOREIGN = "foreign"


class RoomRouter:
    """Picks a room's kind from the bridge's records and runs that kind's handlers."""

    def __init__(
        self,
        conversations: ConversationRepository,
        admin_room: Callable[[], Awaitable[str | None]],
    ) -> None:
        self._conversations = conversations
        self._admin_room = admin_room
        self._kinds = {kind: EventDispatcher() for kind in RoomKind}
        self._everywhere = EventDispatcher()
        self._known: BoundedCache[str, RoomKind] = BoundedCache(CACHE_SIZE)

    def on(self, kind: RoomKind, event_type: str | None, handler: Handler) -> None:
        """Call `handler` for events of `event_type` (None: every type) in rooms of `kind`."""
        self._kinds[kind].on(event_type, handler)

    def observe(self, event_type: str | None, handler: Handler) -> None:
        """Call `handler` for events of `event_type` wherever they happen (after the room's
        own handlers)."""
        self._everywhere.on(event_type, handler)

    async def kind_of(self, room_id: str) -> RoomKind:
        """The kind of a room, from the bridge's records."""
        known = self._known.get(room_id)
        if known is not None:
            return known
        if room_id == await self._admin_room():
            return self._known.put(room_id, RoomKind.ADMIN)
        if await self._conversations.by_room(room_id) is not None:
            return self._known.put(room_id, RoomKind.CONVERSATION)
        return RoomKind.FOREIGN  # not kept: the bridge may make it a conversation yet

    async def dispatch(self, event: StoredEvent) -> None:
        """Run the handlers of the event's room kind, then those that observe every room."""
        if event.room_id is not None:
            await self._kinds[await self.kind_of(event.room_id)].dispatch(event)
        await self._everywhere.dispatch(event)
