"""Foreign rooms: every room that is neither a conversation room nor the admin room.

Conversations happen only in the rooms the bridge makes. An invite of a bridged account into any
other room is declined: a group room always; a DM with the policy's reason when the pair may not
talk, otherwise with a pointer to the pair's conversation room (made if needed).

People log in to their bridged accounts with ordinary clients, so an account may also make a
room of its own. It may stay there alone (that is where it sees why its invite was declined),
but it leaves as soon as the room would have company: when it joins a room with others in it,
invites someone else, or opens the room to anyone.
"""

from __future__ import annotations

import logging

from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import HomeserverClient, HomeserverError
from bridge.services.conversations import ConversationRefused, ConversationService
from bridge.services.policy import UnknownUser
from bridge.store.accounts import AccountRepository
from bridge.store.inbox import StoredEvent

log = logging.getLogger(__name__)

GROUP_ROOMS_REFUSED = (
    "This account belongs to the learning platform: it talks only in one-to-one conversations "
    "and can't join group rooms."
)
NOT_A_PLATFORM_USER = (
    "This account belongs to the learning platform: only people with a course relationship "
    "can message it."
)


def room_link(room_id: str) -> str:
    """A matrix.to link to a room."""
    return f"https://matrix.to/#/{room_id}"


class ForeignRooms:
    """The handlers of `m.room.member` and `m.room.join_rules` events in foreign rooms."""

    def __init__(
        self,
        conversations: ConversationService,
        accounts: AccountRepository,
        client: HomeserverClient,
        bot_user_id: str,
        ids: MatrixIdMapper,
    ) -> None:
        self._conversations = conversations
        self._accounts = accounts
        self._client = client
        self._bot = bot_user_id
        self._ids = ids

    def _bridged(self, user_id: object) -> bool:
        return isinstance(user_id, str) and user_id != self._bot and self._ids.is_bridged(user_id)

    async def on_member(self, event: StoredEvent) -> None:
        """An invite of a bridged account, a join by one, or an invite made by one."""
        payload = event.payload
        target = payload.get("state_key")
        content = payload.get("content")
        sender = payload.get("sender")
        if event.room_id is None or not isinstance(content, dict) or not isinstance(target, str):
            return
        membership = content.get("membership")
        if membership == "invite" and self._bridged(target) and sender != self._bot:
            reason = await self._refusal(str(sender), target, content.get("is_direct") is True)
            await self._leave(event.room_id, target, reason)
        elif membership == "invite" and self._bridged(sender) and not self._bridged(target):
            await self._leave(event.room_id, str(sender), GROUP_ROOMS_REFUSED)
        elif (
            membership == "join"
            and self._bridged(target)
            and await self._has_company(event.room_id, target)
        ):
            await self._leave(event.room_id, target, GROUP_ROOMS_REFUSED)

    async def on_join_rules(self, event: StoredEvent) -> None:
        """A bridged account opened a room of its own to anyone: it leaves."""
        sender = event.payload.get("sender")
        content = event.payload.get("content")
        if event.room_id is None or not self._bridged(sender) or not isinstance(content, dict):
            return
        if content.get("join_rule") not in ("invite", "private"):
            await self._leave(event.room_id, str(sender), GROUP_ROOMS_REFUSED)

    async def _has_company(self, room_id: str, user_id: str) -> bool:
        try:
            members = await self._client.joined_members(room_id, user_id)
        except HomeserverError:
            return False  # not in the room (any more)
        return any(member != user_id for member in members)

    async def _refusal(self, inviter: str, target: str, direct: bool) -> str:
        """Why an invite is declined, pointing to the conversation room when there is one."""
        if not direct:
            return GROUP_ROOMS_REFUSED
        inviter_account = await self._accounts.get_by_user_id(inviter)
        target_account = await self._accounts.get_by_user_id(target)
        if inviter_account is None or target_account is None:
            return NOT_A_PLATFORM_USER
        try:
            record, _created = await self._conversations.start(
                inviter_account.platform_id, target_account.platform_id
            )
        except ConversationRefused as refused:
            return refused.decision.reason
        except UnknownUser:
            return NOT_A_PLATFORM_USER
        assert record.room_id is not None
        if record.state == "read_only":
            return (
                f"Your conversation with this person is read-only now: {room_link(record.room_id)}"
            )
        return f"Please use your conversation room with this person: {room_link(record.room_id)}"

    async def _leave(self, room_id: str, user_id: str, reason: str) -> None:
        try:
            await self._client.intent(user_id).leave(room_id, reason)
        except HomeserverError as exc:
            log.warning("%s could not leave %s: %s", user_id, room_id, exc)
            return
        log.info("%s declined room %s: %s", user_id, room_id, reason)
