"""Conversations: the one private room of a pair of people, made only when the policy allows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bridge.domain.ids import MatrixIdMapper
from bridge.domain.policy import Decision
from bridge.domain.rooms import conversation_room, with_direct_room
from bridge.matrix.client import HomeserverClient, HomeserverError, new_txn_id
from bridge.services.accounts import AccountService
from bridge.services.policy import PolicyService, UnknownUser
from bridge.services.suspensions import Suspensions
from bridge.services.workers import IDLE_LOOK_SECONDS, KeyedLocks, PassWorker
from bridge.store.conversations import ConversationRecord, ConversationRepository
from bridge.store.roster import RosterRepository

log = logging.getLogger(__name__)


ENCRYPTED_NOTICE = (
    "This room is now encrypted, so the learning platform can no longer read it: messages "
    "here are not shown on the platform any more."
)


class ConversationRefused(Exception):
    """The policy does not let the initiator start this conversation."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class ConversationService:
    """Starts conversations: policy check, one room per pair, both people joined."""

    def __init__(
        self,
        conversations: ConversationRepository,
        policy: PolicyService,
        roster: RosterRepository,
        accounts: AccountService,
        client: HomeserverClient,
        *,
        bot_user_id: str,
        account_prefix: str,
        server_name: str,
        federate: bool,
        suspensions: Suspensions,
        on_made: Callable[[ConversationRecord], None] = lambda _record: None,
        on_refused: Callable[[str, str], None] = lambda _user, _code: None,
    ) -> None:
        self._on_refused = on_refused
        self._suspensions = suspensions
        self._conversations = conversations
        self._policy = policy
        self._roster = roster
        self._accounts = accounts
        self._client = client
        self._bot = bot_user_id
        self._prefix = account_prefix
        self._server_name = server_name
        self._ids = MatrixIdMapper(account_prefix, server_name)
        self._federate = federate
        self._on_made = on_made
        # One room-making at a time per conversation in this process; the room alias keeps
        # several processes (or a retry after a crash) from making a second room.
        self._lock = KeyedLocks()

    async def start(self, initiator: str, recipient: str) -> tuple[ConversationRecord, bool]:
        """The pair's conversation and whether this call created it.

        Raises UnknownUser, ConversationRefused, or HomeserverUnreachable (then nothing is lost:
        the next call picks up where this one stopped).
        """
        existing = await self._conversations.by_pair(initiator, recipient)
        if existing is not None and existing.state != "creating":
            return existing, False  # either side may ask for it, whatever the policy says now
        decision = await self._policy.can_start(initiator, recipient)
        if not decision.allowed:
            self._on_refused(initiator, "not_allowed")
            raise ConversationRefused(decision)
        for person, own in ((initiator, True), (recipient, False)):
            refused = await self._suspensions.refusal(person, sender=own)
            if refused is not None:
                self._on_refused(initiator, "suspended")
                raise ConversationRefused(Decision(False, "suspended", refused.message))
        record = await self._conversations.claim(initiator, recipient, datetime.now(UTC))
        async with self._lock(record.id):
            current = await self._conversations.get(record.id)
            assert current is not None
            if current.state != "creating":
                return current, False
            return await self._make_room(current), True

    async def _make_room(self, record: ConversationRecord) -> ConversationRecord:
        # The two people's accounts are made ready side by side (the LMS waits for this).
        first, second = await asyncio.gather(
            self._ready_account(record.user_a), self._ready_account(record.user_b)
        )
        people = [(record.user_a, first), (record.user_b, second)]
        spec = conversation_room(
            self._prefix, record.id, self._bot, (people[0], people[1]), self._federate
        )
        alias = f"#{spec.alias_localpart}:{self._server_name}"
        bot = self._client.intent(self._bot)
        try:
            room_id = await bot.create_room(
                spec.alias_localpart,
                spec.initial_state,
                spec.power_levels,
                spec.federate,
                invite=[user_id for _platform_id, user_id in people],
            )
        except HomeserverError as exc:
            if exc.errcode != "M_ROOM_IN_USE":
                raise
            # Made by an earlier attempt (before a crash) or a racing call: the alias finds it.
            room_id = await self._client.resolve_alias(alias)
            assert room_id is not None
            log.info("found the room of conversation %s from an earlier attempt", record.id)
        await self._conversations.attach_room(record.id, room_id)
        await asyncio.gather(*(self._join(room_id, user_id) for _platform_id, user_id in people))
        # Activated with its place in the queue of rooms to finish (`finish_rooms`): what the
        # LMS need not wait for comes after its answer, and survives a restart.
        await self._conversations.activate(record.id, room_id, datetime.now(UTC))
        log.info("conversation %s: room %s", record.id, room_id)
        current = await self._conversations.get(record.id)
        assert current is not None
        self._on_made(current)
        return current

    async def _ready_account(self, platform_id: str) -> str:
        """A person's account, registered and with the roster's name and avatar."""
        person = await self._roster.get_user(platform_id)
        if person is None:
            raise UnknownUser(platform_id)
        return await self._accounts.sync_profile(
            platform_id, person.display_name, person.avatar_url
        )

    async def _join(self, room_id: str, user_id: str) -> None:
        try:
            await self._client.intent(user_id).join(room_id)
        except HomeserverError as exc:
            if exc.status != 403:
                raise
            # Not invited: a room from an earlier attempt that someone left meanwhile.
            await self._client.intent(self._bot).invite(room_id, user_id)
            await self._client.intent(user_id).join(room_id)

    async def finish_rooms(self, limit: int = 50) -> int:
        """Finish made rooms: each person's `m.direct` names the room (so clients show a DM),
        and a room a homeserver encrypted while it was made is set aside (that event may have
        been handled before the room was recorded). Returns how many rooms were finished."""
        due = await self._conversations.setups_due(limit)
        for record, room_id in due:
            if await self._client.intent(self._bot).state(room_id, "m.room.encryption"):
                await self.set_aside_encrypted(record.id, room_id)
            pair = (record.user_a, record.user_b)
            for person, other in (pair, pair[::-1]):
                user_id, other_id = self._ids.user_id(person), self._ids.user_id(other)
                direct = await self._client.account_data(user_id, "m.direct")
                updated = with_direct_room(direct, other_id, room_id)
                if updated is not None:
                    await self._client.set_account_data(user_id, "m.direct", updated)
            await self._conversations.setup_done(record.id)
        return len(due)

    async def set_aside_encrypted(self, conversation_id: str, room_id: str) -> None:
        """The conversation's room turned encrypted: the bridge can't read it any more, so it
        says so in the room and stops mirroring it (once)."""
        if not await self._conversations.mark_encrypted(conversation_id):
            return
        log.warning(
            "conversation %s: its room turned encrypted; no longer mirrored", conversation_id
        )
        try:
            await self._client.intent(self._bot).send_message(
                room_id,
                {"msgtype": "m.notice", "body": ENCRYPTED_NOTICE},
                new_txn_id("encrypted", conversation_id),
            )
        except HomeserverError as exc:
            log.warning("notice in %s not posted: %s", room_id, exc)


class RoomFinisher(PassWorker):
    """The worker that finishes made rooms after the LMS got its answer."""

    waiting_work = "finishing conversation rooms"
    batch = 50

    def __init__(self, conversations: ConversationService) -> None:
        super().__init__()
        self._conversations = conversations

    async def one_pass(self) -> float:
        """Finish what waits; look again now and then (another process may have made rooms)."""
        finished = await self._conversations.finish_rooms(self.batch)
        return 0 if finished == self.batch else IDLE_LOOK_SECONDS
