"""Conversation rooms, Matrix → LMS: messages, files, edits, deletions, reactions and read
receipts from Matrix clients; whatever else a participant sends is answered with a notice that it
was not carried.

The bridge's own sends and edits come back through the transaction stream too, often before the
send has been answered; they carry the stored message's id in their content, which is how they
are recognised (checked against the sender and room, so a client copying the key can only hide
its own messages). Each effect is keyed on an event id, so an event handled twice (after a crash)
counts once.

A message or edit is carried only while the pair may still write to each other: the room may not
be frozen yet when the relationship ends (the roster changed a moment ago, or elsewhere). Then
the bot says so in the room, and the conversation is rechecked at once, which freezes it.

A participant's member event showing another name or avatar than the roster's (a person renamed
themselves in a client) gets the roster's put back. A room that turns encrypted can't be read by
the bridge any more: it says so in the room and stops mirroring it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bridge.cache import BoundedCache
from bridge.contract.events import MessageBlocked
from bridge.domain.content import attachment_of, not_delivered_notice, uncarried
from bridge.domain.formatting import bridged_message_id, replacement_of, text_of
from bridge.domain.ids import MatrixIdMapper
from bridge.domain.policy import Decision, PairFacts
from bridge.domain.text import from_matrix
from bridge.matrix.client import HomeserverClient, HomeserverError, new_txn_id
from bridge.services.content_rules import ContactInfoRule, RuleHit, guideline_notice
from bridge.services.policy import PolicyService, UnknownUser
from bridge.services.suspensions import until_words
from bridge.store.accounts import AccountRepository
from bridge.store.conversations import ConversationRecord, ConversationRepository
from bridge.store.inbox import StoredEvent
from bridge.store.messages import MessageRecord, MessageRepository
from bridge.store.moderation import Suspension
from bridge.store.standing import SenderStanding, StandingRepository

log = logging.getLogger(__name__)
# (account, room, the name and avatar its member event shows): puts the roster's back.
RestoreProfile = Callable[[str, str, object, object], Awaitable[None]]
CACHE_SIZE = 10_000
# Event types handled elsewhere: everything else a participant sends gets a "not carried" notice.
_HANDLED_TYPES = frozenset(
    {"m.room.message", "m.reaction", "m.room.redaction", "m.room.encrypted", "m.receipt"}
)


def _mirrored_for(conversation: ConversationRecord, person: str) -> bool:
    """Whether the bridge carries what `person` sends in the conversation's room."""
    return (
        not conversation.encrypted and conversation.state != "creating" and conversation.has(person)
    )


class ConversationRoomEvents:
    """The handlers of what happens in conversation rooms."""

    def __init__(
        self,
        conversations: ConversationRepository,
        messages: MessageRepository,
        accounts: AccountRepository,
        policy: PolicyService,
        client: HomeserverClient,
        ids: MatrixIdMapper,
        bot_user_id: str,
        on_events: Callable[[], None] = lambda: None,
        on_stale: Callable[[ConversationRecord], None] = lambda _record: None,
        max_attachment_bytes: int = 20 * 1024 * 1024,
        *,
        restore_profile: RestoreProfile,
        set_aside_encrypted: Callable[[str, str], Awaitable[None]],
        suspended: Callable[[str], Awaitable[Suspension | None]],
        standing: StandingRepository,
        rule: ContactInfoRule,
        on_rule_flag: Callable[[MessageRecord, RuleHit], Awaitable[object]],
        on_refused: Callable[[str, str], None] = lambda _user, _code: None,
    ) -> None:
        self._suspended = suspended
        self._standing = standing
        self._rule = rule
        self._on_rule_flag = on_rule_flag
        self._on_refused = on_refused
        self._max_attachment = max_attachment_bytes
        self._conversations = conversations
        self._restore_profile = restore_profile
        self._set_aside_encrypted = set_aside_encrypted
        self._messages = messages
        self._accounts = accounts
        self._policy = policy
        self._client = client
        self._ids = ids
        self._bot = bot_user_id
        self._on_events = on_events
        self._on_stale = on_stale
        # Facts that never change once known, looked up for nearly every event: which person an
        # account is, and which room a conversation has.
        self._people: BoundedCache[str, str] = BoundedCache(CACHE_SIZE)
        self._rooms: BoundedCache[str, str] = BoundedCache(CACHE_SIZE)

    async def _platform_id(self, user_id: str) -> str | None:
        known = self._people.get(user_id)
        if known is None:
            account = await self._accounts.get_by_user_id(user_id)
            if account is None:
                return None
            known = self._people.put(user_id, account.platform_id)
        return known

    async def _room_of(self, conversation_id: str) -> str | None:
        known = self._rooms.get(conversation_id)
        if known is None:
            record = await self._conversations.get(conversation_id)
            if record is None or record.room_id is None:
                return None
            known = self._rooms.put(conversation_id, record.room_id)
        return known

    async def _sent_by_person(self, event: StoredEvent) -> tuple[str, dict[str, object]] | None:
        """(the sender's platform id, content) of an event a bridged person sent in a room;
        None for anything else."""
        payload = event.payload
        content = payload.get("content")
        sender = payload.get("sender")
        if event.event_id is None or event.room_id is None or not isinstance(content, dict):
            return None
        if sender == self._bot or not isinstance(sender, str):
            return None
        platform_id = await self._platform_id(sender)
        return None if platform_id is None else (platform_id, content)

    async def _participant(
        self, event: StoredEvent
    ) -> tuple[ConversationRecord, str, dict[str, object]] | None:
        """(conversation, the sender's platform id, content) of an event a participant sent in
        a mirrored conversation room; None for anything else."""
        sent = await self._sent_by_person(event)
        if sent is None:
            return None
        assert event.room_id is not None
        conversation = await self._conversations.by_room(event.room_id)
        if conversation is None or not _mirrored_for(conversation, sent[0]):
            return None
        return conversation, *sent

    async def on_message(self, event: StoredEvent) -> None:
        """Handle one `m.room.message` event: a new message or an edit."""
        if await self._is_echo(event):
            return
        sent = await self._sent_by_person(event)
        if sent is None:
            return
        sender, content = sent
        assert event.event_id is not None and event.room_id is not None
        edit = replacement_of(content)
        if edit is not None:
            found = await self._participant(event)
            if found is not None:
                await self._on_edit(event.event_id, found[0], sender, *edit)
            return
        # A new message: the room's conversation and the sender's standing in one read.
        standing = await self._standing.of_room_event(
            event.room_id, sender, event.event_id, datetime.now(UTC)
        )
        conversation = standing.conversation
        if conversation is None or not _mirrored_for(conversation, sender):
            return
        if standing.existing is not None:
            return  # the echo of a message sent before messages carried their id
        text = text_of(content)
        attached = attachment_of(content) if text is None else None
        if text is None and attached is None:
            await self._not_carried(event, conversation, uncarried(event.event_type, content))
            return
        if attached is not None and (attached[0].size or 0) > self._max_attachment:
            limit = self._max_attachment / (1024 * 1024)
            what = f"a file larger than the {limit:.0f} MB the platform accepts"
            await self._not_carried(event, conversation, what)
            return
        decision = await self._gate(event.event_id, conversation, sender, "message", standing)
        if decision is None:
            return
        if attached is not None:
            attachment, caption = attached
            body, html = caption or attachment.name, None
        else:
            assert text is not None
            (body, html), attachment = text, None
        hit = await self._apply_rule(event.event_id, conversation, sender, decision, body)
        if hit is False:
            return
        if await self._messages.add_incoming(
            conversation.id, sender, event.event_id, body, html, datetime.now(UTC), attachment
        ):
            self._on_events()
            if isinstance(hit, RuleHit):
                stored = await self._messages.by_event_id(event.event_id)
                assert stored is not None
                await self._after_rule(conversation, event.event_id, stored.id, hit)

    async def on_reaction(self, event: StoredEvent) -> None:
        """Handle one `m.reaction`: a reaction to a message reaches the LMS as its own event."""
        found = await self._participant(event)
        if found is None:
            return
        conversation, sender, content = found
        relates = content.get("m.relates_to")
        if not isinstance(relates, dict) or relates.get("rel_type") != "m.annotation":
            return
        target, key = relates.get("event_id"), relates.get("key")
        if not isinstance(target, str) or not isinstance(key, str) or not key.strip():
            return
        message = await self._messages.by_event_id(target)
        if message is None or message.conversation_id != conversation.id:
            return
        if message.deleted_at is not None:
            return
        if not (await self._decision(conversation, sender)).allowed:
            log.info("reaction %s not delivered: the pair may no longer talk", event.event_id)
            return
        if await self._suspended(sender) is not None:
            log.info("reaction %s not delivered: %s is suspended", event.event_id, sender)
            return
        assert event.event_id is not None
        if await self._messages.add_reaction(
            event.event_id, message, sender, from_matrix(key)[:255], datetime.now(UTC)
        ):
            self._on_events()

    async def on_other(self, event: StoredEvent) -> None:
        """Any other event a participant sends in a conversation room (a sticker, a poll, a
        call…): not carried, and the sender is told so."""
        if (
            event.kind != "timeline"
            or event.event_type in _HANDLED_TYPES
            or "state_key" in event.payload
        ):
            return
        found = await self._participant(event)
        if found is None or await self._is_echo(event):
            return
        conversation, _sender, content = found
        await self._not_carried(event, conversation, uncarried(event.event_type, content))

    async def _not_carried(
        self, event: StoredEvent, conversation: ConversationRecord, what: str | None
    ) -> None:
        """Tell the sender (in a reply from the bot) that `what` did not reach the platform."""
        if what is None:
            return
        assert event.event_id is not None
        log.info(
            "event %s (%s) in conversation %s not carried: %s",
            event.event_id,
            event.event_type,
            conversation.id,
            what,
        )
        await self._reply_notice(conversation, event.event_id, not_delivered_notice(what))

    async def _gate(
        self,
        event_id: str,
        conversation: ConversationRecord,
        sender: str,
        what: str,
        standing: SenderStanding | None = None,
    ) -> Decision | None:
        """The policy's permission for the sender to write (it names the institution), or
        None when their messaging is suspended or the pair may no longer write to each other:
        then the bot tells the room the `what` ("message", "edit") was not delivered (and a
        conversation that should be read-only is rechecked). `standing`: the sender's, read
        already."""
        if standing is None:
            suspension = await self._suspended(sender)
        else:
            found = standing.suspension
            suspension = found if found is not None and found.in_force(datetime.now(UTC)) else None
        if suspension is not None:
            log.info("event %s from suspended %s not delivered", event_id, sender)
            self._on_refused(sender, "suspended")
            body = (
                f"This {what} was not delivered to the learning platform: your messaging is "
                f"suspended {until_words(suspension)}."
            )
            await self._reply_notice(conversation, event_id, body)
            return None
        decision = await self._decision(
            conversation, sender, standing.facts if standing is not None else None
        )
        if decision.allowed:
            return decision
        self._on_refused(sender, "not_allowed")
        log.info(
            "event %s in conversation %s not delivered: %s (%s)",
            event_id,
            conversation.id,
            decision.reason,
            decision.code,
        )
        self._on_stale(conversation)  # its room should be frozen: have it rechecked now
        body = f"This {what} was not delivered to the learning platform: {decision.reason}."
        await self._reply_notice(conversation, event_id, body)
        return None

    async def _apply_rule(
        self,
        event_id: str,
        conversation: ConversationRecord,
        sender: str,
        decision: Decision,
        body: str,
        original: MessageRecord | None = None,
    ) -> RuleHit | bool | None:
        """The contact-info rule on a text typed in Matrix: False when it blocks it (then the
        event is removed from Matrix, the sender told, and `message.blocked` published),
        otherwise what it found (None: nothing)."""
        hit = self._rule.check(decision.rule, body)
        if hit is None or hit.mode != "block":
            return hit
        self._on_refused(sender, "contact_info")
        blocked = MessageBlocked(
            conversation_id=conversation.id,
            sender=sender,
            event_id=event_id,
            change="edit" if original is not None else "message",
            message_id=original.id if original is not None else None,
            kinds=sorted({m.kind for m in hit.matches}),
            blocked_at=datetime.now(UTC),
        )
        if await self._messages.record_blocked(blocked, datetime.now(UTC)):
            log.info("event %s removed by the contact-info rule (%s)", event_id, hit.what)
            self._on_events()
        room_id = conversation.room_id
        assert room_id is not None
        bot = self._client.intent(self._bot)
        try:
            await bot.redact(
                room_id, event_id, "Personal contact information", new_txn_id("block", event_id)
            )
            notice = {
                "msgtype": "m.notice",
                "body": guideline_notice(hit, blocked=True),
                "m.mentions": {"user_ids": [self._ids.user_id(sender)]},
            }
            await bot.send_message(room_id, notice, new_txn_id("blocked", event_id))
        except HomeserverError as exc:
            log.warning("could not remove blocked event %s: %s", event_id, exc)
        return False

    async def _after_rule(
        self, conversation: ConversationRecord, event_id: str, message_id: str, hit: RuleHit
    ) -> None:
        """A text the rule let through: reported (flag), or the sender told (warn)."""
        if hit.mode == "warn":
            body = guideline_notice(hit, blocked=False)
            await self._reply_notice(conversation, event_id, body, purpose="guideline")
            return
        message = await self._messages.get(message_id)
        if message is not None:
            await self._on_rule_flag(message, hit)

    async def _reply_notice(
        self, conversation: ConversationRecord, event_id: str, body: str, purpose: str = "refused"
    ) -> None:
        """A notice from the bot in reply to `event_id` (once, however often this runs)."""
        room_id = conversation.room_id
        assert room_id is not None  # the conversation was found by its room
        try:
            # The txn id follows the event, so handling the event again doesn't post twice.
            await self._client.intent(self._bot).send_message(
                room_id,
                {
                    "msgtype": "m.notice",
                    "body": body,
                    "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
                },
                new_txn_id(purpose, event_id),
            )
        except HomeserverError as exc:
            log.warning("notice about undelivered event %s not posted: %s", event_id, exc)

    async def _decision(
        self, conversation: ConversationRecord, sender: str, facts: PairFacts | None = None
    ) -> Decision:
        """May `sender` still write to the other participant? (Phrased for the sender; `facts`:
        the pair's, read already.)"""
        try:
            return await self._policy.can_converse(sender, conversation.other(sender), facts)
        except UnknownUser:  # removed meanwhile: the conversation goes with them
            return Decision(False, "unknown_user", "that person is no longer on the platform")

    async def _is_echo(self, event: StoredEvent) -> bool:
        """Whether the event is one the bridge sent: for the message its content names, as that
        message's sender, in that message's room."""
        if self._client.sent_by_bridge(event.event_id):
            return True  # the homeserver answered one of our own sends with this event
        content = event.payload.get("content")
        message_id = bridged_message_id(content) if isinstance(content, dict) else None
        if message_id is None:
            return False
        message = await self._messages.get(message_id)
        return (
            message is not None
            and self._ids.user_id(message.sender) == event.payload.get("sender")
            and await self._room_of(message.conversation_id) == event.room_id
        )

    async def _on_edit(
        self,
        event_id: str,
        conversation: ConversationRecord,
        sender: str,
        target: str,
        new_content: dict[str, object],
    ) -> None:
        if await self._messages.is_edit_event(event_id):
            return  # applied before
        original = await self._messages.by_event_id(target)
        if (
            original is None
            or original.sender != sender  # Matrix ignores edits of someone else's message
            or original.conversation_id != conversation.id  # or of another room's
        ):
            return
        text = text_of(new_content)
        if text is None:
            return
        decision = await self._gate(event_id, conversation, sender, "edit")
        if decision is None:
            return
        hit = await self._apply_rule(event_id, conversation, sender, decision, text[0], original)
        if hit is False:
            return
        if await self._messages.edit_incoming(
            event_id, original.id, text[0], text[1], datetime.now(UTC)
        ):
            self._on_events()
            if isinstance(hit, RuleHit):
                await self._after_rule(conversation, event_id, original.id, hit)

    async def on_redaction(self, event: StoredEvent) -> None:
        """Handle one `m.room.redaction`: a deleted message is deleted in the LMS too, and a
        redacted edit is undone."""
        found = await self._participant(event)
        if found is None:
            return
        conversation, _sender, content = found
        # Room versions 11 and later carry it in the content; older ones at the top level.
        target = content.get("redacts", event.payload.get("redacts"))
        if not isinstance(target, str):
            return
        assert event.event_id is not None
        original = await self._messages.by_event_id(target)
        if original is None:
            now = datetime.now(UTC)
            # A reaction taken back; or an edit, after which clients show the text before it
            # again, and so does the LMS.
            if await self._messages.remove_reaction(
                target, conversation.id, event.event_id, now
            ) or await self._messages.undo_edit(target, conversation.id, event.event_id, now):
                self._on_events()
            return
        if original.conversation_id != conversation.id:
            return
        if await self._messages.delete_incoming(original.id, event.event_id, datetime.now(UTC)):
            self._on_events()

    async def on_receipt(self, event: StoredEvent) -> None:
        """Handle an `m.receipt` (ephemeral): a person read a conversation in a Matrix client."""
        content = event.payload.get("content")
        if event.room_id is None or not isinstance(content, dict):
            return
        conversation = await self._conversations.by_room(event.room_id)
        if conversation is None:
            return
        for event_id, receipts in content.items():
            reads = receipts.get("m.read") if isinstance(receipts, dict) else None
            if not isinstance(reads, dict):
                continue
            message = await self._messages.by_event_id(event_id)
            if message is None or message.conversation_id != conversation.id:
                continue
            for user_id in reads:
                account = await self._accounts.get_by_user_id(user_id)
                if (
                    account is not None
                    and conversation.has(account.platform_id)
                    and await self._conversations.mark_read(
                        conversation.id,
                        account.platform_id,
                        message.seq,
                        message.id,
                        datetime.now(UTC),
                        "matrix",
                    )
                ):
                    self._on_events()

    async def on_member(self, event: StoredEvent) -> None:
        """A participant's own name or avatar in the room, changed in a client: the roster's
        is put back."""
        target = event.payload.get("state_key")
        content = event.payload.get("content")
        if event.room_id is None or not isinstance(content, dict) or not isinstance(target, str):
            return
        if content.get("membership") != "join" or target == self._bot:
            return
        if self._ids.is_bridged(target):
            await self._restore_profile(
                target, event.room_id, content.get("displayname"), content.get("avatar_url")
            )

    async def on_encryption(self, event: StoredEvent) -> None:
        """The room turned encrypted: say so, and stop mirroring it."""
        if event.room_id is None:
            return
        record = await self._conversations.by_room(event.room_id)
        if record is not None:
            await self._set_aside_encrypted(record.id, event.room_id)
