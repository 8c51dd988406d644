"""The out-of-hours worker reads a page of the event log and, for each new message, whether the
person written to states hours, in one unit of work (both databases)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bridge.domain.roster import InstitutionPut, MembershipPut, UserPut
from bridge.store import migrate
from bridge.store.availability import AvailabilityNoticeRepository
from bridge.store.conversations import ConversationRepository
from bridge.store.database import Database
from bridge.store.events import EventLogRepository
from bridge.store.messages import MessageRepository
from bridge.store.roster import RosterRepository

NOW = datetime.now(UTC)
HOURS = json.dumps({"weekly_hours": [{"day": "mon", "start": "09:00", "end": "11:00"}]})


async def _conversation(db: Database, a: str, b: str) -> str:
    conversations = ConversationRepository(db)
    record = await conversations.claim(a, b, NOW)
    await conversations.activate(record.id, f"!{a}{b}:hs", NOW)
    return record.id


async def test_each_new_message_comes_with_whether_its_addressee_states_hours(
    db: Database,
) -> None:
    await migrate.upgrade(db)
    await RosterRepository(db).apply(
        [
            InstitutionPut("u", "Uni"),
            UserPut("tutor", "Tia", availability=HOURS),
            UserPut("student", "Sam"),
            UserPut("other", "Oli"),
            *(MembershipPut("u", p, "student") for p in ("student", "other")),
            MembershipPut("u", "tutor", "tutor"),
        ],
        NOW,
    )
    with_hours = await _conversation(db, "student", "tutor")
    without = await _conversation(db, "other", "student")
    start = await EventLogRepository(db).last_seq()
    messages = MessageRepository(db)
    for conversation, sender, n in [
        (with_hours, "student", 1),  # to the tutor, who states hours
        (with_hours, "tutor", 2),  # to the student, who doesn't
        (without, "other", 3),
    ]:
        await messages.add_outgoing(conversation, sender, f"c{n}", "hi", "plain", None, NOW)
    await ConversationRepository(db).set_state(without, "read_only", "test", "A test.", NOW)

    before = (db.stats.reads, db.stats.writes)
    page = await AvailabilityNoticeRepository(db).log_after(start, 100)
    assert (db.stats.reads - before[0], db.stats.writes - before[1]) == (1, 0)
    assert [(event.type, addressee) for event, addressee in page] == [
        ("message.created", "tutor"),
        ("message.created", None),
        ("message.created", None),
        ("conversation.state_changed", None),
    ]
    assert [event.seq for event, _ in page] == list(range(start + 1, start + 5))
