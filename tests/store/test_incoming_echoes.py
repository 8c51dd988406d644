"""Telling the echo of the bridge's own send from a message typed in Matrix (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.domain.formatting import bridged, message_content
from bridge.domain.ids import MatrixIdMapper
from bridge.domain.roster import InstitutionPut, MembershipPut, UserPut
from bridge.matrix.client import HomeserverClient
from bridge.services.content_rules import ContactInfoRule
from bridge.services.policy import PolicyService
from bridge.services.rooms.conversation import ConversationRoomEvents
from bridge.store import migrate
from bridge.store.accounts import AccountRepository
from bridge.store.conversations import ConversationRepository
from bridge.store.database import Database
from bridge.store.events import EventLogRepository
from bridge.store.inbox import StoredEvent
from bridge.store.messages import MessageRepository
from bridge.store.roster import RosterRepository
from bridge.store.standing import StandingRepository

ROOM = "!room:hs"


async def _never(*_args: object) -> None:
    raise AssertionError("not expected here")


async def _nobody(_user_id: str) -> None:
    return None


async def _setup(db: Database) -> tuple[ConversationRoomEvents, MessageRepository, str]:
    await migrate.upgrade(db)
    now = datetime.now(UTC)
    roster = RosterRepository(db)
    # Fellow tutors: the pair may write to each other.
    await roster.apply(
        [
            InstitutionPut("u", "Uni"),
            UserPut("a", "Ann"),
            UserPut("b", "Bo"),
            MembershipPut("u", "a", "tutor"),
            MembershipPut("u", "b", "tutor"),
        ],
        now,
    )
    accounts = AccountRepository(db)
    await accounts.add("@_lms_a:hs", "a", now)
    conversations = ConversationRepository(db)
    record = await conversations.claim("a", "b", now)
    await conversations.activate(record.id, ROOM, now)
    messages = MessageRepository(db)
    handler = ConversationRoomEvents(
        conversations,
        messages,
        accounts,
        PolicyService(roster),
        HomeserverClient("http://127.0.0.1:9", "as-token", "bridge"),  # never called here
        MatrixIdMapper("_lms_", "hs"),
        "@bot:hs",
        restore_profile=_never,
        set_aside_encrypted=_never,
        suspended=_nobody,
        standing=StandingRepository(db),
        rule=ContactInfoRule("off", (), ()),
        on_rule_flag=_never,
    )
    return handler, messages, record.id


def _typed(event_id: str, content: dict[str, object], sender: str = "@_lms_a:hs") -> StoredEvent:
    payload = {
        "type": "m.room.message",
        "event_id": event_id,
        "room_id": ROOM,
        "sender": sender,
        "content": content,
    }
    return StoredEvent(1, event_id, ROOM, "timeline", "m.room.message", payload, 0)


async def _created(db: Database) -> list[str]:
    return [
        e.data["body"]
        for e in await EventLogRepository(db).after(0, 100)
        if e.type == "message.created"
    ]


async def test_an_echo_is_recognised_before_its_send_is_answered(db: Database) -> None:
    handler, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    queued, _, _ = await messages.add_outgoing(conversation, "a", "c1", "hi", "plain", None, now)
    # The transaction carrying the echo overtakes the answer to the send (still "queued").
    await handler.on_message(_typed("$echo", bridged(message_content("hi", None), queued.id)))
    assert await _created(db) == ["hi"]  # the LMS's own message.created only


async def test_typing_the_same_words_as_a_queued_message_is_a_new_message(db: Database) -> None:
    handler, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    await messages.add_outgoing(conversation, "a", "c1", "ok", "plain", None, now)
    await handler.on_message(_typed("$typed", message_content("ok", None)))
    assert await _created(db) == ["ok", "ok"]


async def test_a_copied_key_hides_nothing_but_the_senders_own_message(db: Database) -> None:
    handler, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    theirs, _, _ = await messages.add_outgoing(
        conversation, "b", "c1", "from Bo", "plain", None, now
    )
    await handler.on_message(_typed("$sneaky", bridged(message_content("hi", None), theirs.id)))
    assert await _created(db) == ["from Bo", "hi"]
