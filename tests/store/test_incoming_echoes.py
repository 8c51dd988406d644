"""Telling the echo of the bridge's own send from a message typed in Matrix (both databases)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bridge.domain.roster import UserPut
from bridge.services import incoming
from bridge.services.incoming import ECHO_RETRIES, EchoNotYetRecorded, IncomingMessages
from bridge.store import migrate
from bridge.store.accounts import AccountRepository
from bridge.store.conversations import ConversationRepository
from bridge.store.database import Database
from bridge.store.events import EventLogRepository
from bridge.store.inbox import StoredEvent
from bridge.store.messages import MessageRepository
from bridge.store.roster import RosterRepository

ROOM = "!room:hs"


async def _setup(db: Database) -> tuple[IncomingMessages, MessageRepository, str]:
    await migrate.upgrade(db)
    now = datetime.now(UTC)
    await RosterRepository(db).apply([UserPut("a", "Ann"), UserPut("b", "Bo")], now)
    accounts = AccountRepository(db)
    await accounts.add("@_lms_a:hs", "a", now)
    conversations = ConversationRepository(db)
    record = await conversations.claim("a", "b", now)
    await conversations.activate(record.id, ROOM, "active", now)
    messages = MessageRepository(db)
    handler = IncomingMessages(conversations, messages, accounts, "@bot:hs")
    return handler, messages, record.id


def _typed(event_id: str, body: str, attempts: int = 0) -> StoredEvent:
    payload = {
        "type": "m.room.message",
        "event_id": event_id,
        "room_id": ROOM,
        "sender": "@_lms_a:hs",
        "content": {"msgtype": "m.text", "body": body},
    }
    return StoredEvent(1, event_id, ROOM, "timeline", "m.room.message", payload, attempts)


async def _created(db: Database) -> list[str]:
    return [
        e.data["body"]
        for e in await EventLogRepository(db).after(0, 100)
        if e.type == "message.created"
    ]


async def test_an_echo_recorded_while_it_waits_is_not_published_again(db: Database) -> None:
    handler, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    queued, _ = await messages.add_outgoing(conversation, "a", "c1", "hi", "plain", None, now)

    async def record_soon() -> None:  # the answer to the send arrives after its echo
        await asyncio.sleep(0.2)
        await messages.mark_sent(queued.id, "$echo", 0, now)

    recording = asyncio.create_task(record_soon())
    await handler.on_message(_typed("$echo", "hi"))
    await recording
    assert await _created(db) == ["hi"]  # the LMS's own message.created only


async def test_an_unrecorded_echo_goes_back_for_a_retry_then_counts_as_typed(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, messages, conversation = await _setup(db)
    monkeypatch.setattr(incoming, "ECHO_WAIT_SECONDS", 0.1)
    now = datetime.now(UTC)
    await messages.add_outgoing(conversation, "a", "c1", "same text", "plain", None, now)
    with pytest.raises(EchoNotYetRecorded):
        await handler.on_message(_typed("$typed", "same text"))
    # A different text is never mistaken for the queued one.
    await handler.on_message(_typed("$other", "something else"))
    # Still unrecorded after several retries: a person typed the same words.
    await handler.on_message(_typed("$typed", "same text", attempts=ECHO_RETRIES))
    assert await _created(db) == ["same text", "something else", "same text"]
