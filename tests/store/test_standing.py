"""A sender's standing, read in one unit of work whatever it finds (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.contract.events import UserSuspended
from bridge.domain.roster import InstitutionPut, MembershipPut, UserPut
from bridge.store import migrate
from bridge.store.conversations import ConversationRecord, ConversationRepository
from bridge.store.database import Database
from bridge.store.messages import MessageRepository
from bridge.store.moderation import ModerationRepository
from bridge.store.roster import RosterRepository
from bridge.store.standing import SenderStanding, StandingRepository

NOW = datetime.now(UTC)


async def _pair(db: Database) -> ConversationRecord:
    await migrate.upgrade(db)
    await RosterRepository(db).apply(
        [
            InstitutionPut("u", "Uni", region="DE", contact_info="warn"),
            UserPut("a", "Ann"),
            UserPut("b", "Bo"),
            MembershipPut("u", "a", "tutor"),
            MembershipPut("u", "b", "tutor"),
        ],
        NOW,
    )
    conversations = ConversationRepository(db)
    record = await conversations.claim("a", "b", NOW)
    await conversations.activate(record.id, "!room:hs", NOW)
    found = await conversations.get(record.id)
    assert found is not None
    return found


async def _one_unit(db: Database, reading: object) -> SenderStanding:
    before = (db.stats.reads, db.stats.writes)
    standing = await reading  # type: ignore[misc]
    assert (db.stats.reads - before[0], db.stats.writes - before[1]) == (1, 0)
    return standing


async def test_a_send_reads_everything_it_needs_in_one_unit(db: Database) -> None:
    conversation = await _pair(db)
    standing = StandingRepository(db)
    await ModerationRepository(db).suspend(
        UserSuspended("a", "@_lms_a:hs", "@mod:hs", "spam", None, None, NOW), NOW
    )
    found = await _one_unit(db, standing.of_sender(conversation.id, "a", NOW, "c1"))
    assert found.existing is None
    assert found.conversation == conversation
    assert found.suspension is not None and found.suspension.note == "spam"
    assert found.facts is not None and found.facts.b.display_name == "Bo"
    assert found.facts.institutions[0].rule.mode == "warn"
    # The other side: nobody suspended.
    other = await _one_unit(db, standing.of_sender(conversation.id, "b", NOW))
    assert other.suspension is None and other.facts is not None
    assert other.facts.a.display_name == "Bo"


async def test_what_decides_first_leaves_the_rest_unread(db: Database) -> None:
    conversation = await _pair(db)
    standing = StandingRepository(db)
    stored, _new, _behind = await MessageRepository(db).add_outgoing(
        conversation.id, "a", "c1", "hello", "plain", None, NOW
    )
    again = await _one_unit(db, standing.of_sender(conversation.id, "a", NOW, "c1"))
    assert again == SenderStanding(existing=stored)
    outsider = await _one_unit(db, standing.of_sender(conversation.id, "x", NOW, "c2"))
    assert outsider.conversation is not None and outsider.conversation.id == conversation.id
    assert (outsider.existing, outsider.suspension, outsider.facts) == (None, None, None)
    missing = await _one_unit(db, standing.of_sender("no-such", "a", NOW, "c3"))
    assert missing == SenderStanding()


async def test_a_typed_message_reads_its_standing_in_one_unit(db: Database) -> None:
    conversation = await _pair(db)
    standing = StandingRepository(db)
    assert conversation.room_id is not None
    room = conversation.room_id
    new = await _one_unit(db, standing.of_room_event(room, "b", "$new", NOW))
    assert new.conversation == conversation
    assert new.existing is None and new.suspension is None
    assert new.facts is not None and new.facts.a.id == "b"
    messages = MessageRepository(db)
    assert await messages.add_incoming(conversation.id, "b", "$typed", "hi", None, NOW)
    seen = await _one_unit(db, standing.of_room_event(room, "b", "$typed", NOW))
    assert seen.existing is not None and seen.existing.event_id == "$typed"
    assert seen.facts is None  # a message stored before needs nothing more
    # A room that is no conversation, or a sender who isn't in it, decides at once.
    assert await _one_unit(db, standing.of_room_event("!other:hs", "b", "$x", NOW)) == (
        SenderStanding()
    )
    outsider = await _one_unit(db, standing.of_room_event(room, "x", "$y", NOW))
    assert outsider.conversation is not None and outsider.conversation.id == conversation.id
    assert (outsider.existing, outsider.suspension, outsider.facts) == (None, None, None)
