"""The messages and conversations repositories on SQLite and PostgreSQL: edits and deletions
racing a send, read markers, the inbox query, and the events each change commits with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.domain.roster import UserPut
from bridge.store import migrate
from bridge.store.conversations import ConversationRepository
from bridge.store.database import Database
from bridge.store.events import EventLogRepository
from bridge.store.messages import MessageRepository
from bridge.store.roster import RosterRepository


async def _setup(db: Database) -> tuple[ConversationRepository, MessageRepository, str]:
    await migrate.upgrade(db)
    now = datetime.now(UTC)
    await RosterRepository(db).apply([UserPut("a", "Ann"), UserPut("b", "Bo")], now)
    conversations = ConversationRepository(db)
    record = await conversations.claim("a", "b", now)
    await conversations.activate(record.id, "!room:hs", now)
    return conversations, MessageRepository(db), record.id


async def _types(db: Database) -> list[str]:
    return [e.type for e in await EventLogRepository(db).after(0, 100)]


async def test_an_edit_while_a_send_is_in_flight_is_sent_after_it(db: Database) -> None:
    _, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    queued, created, _ = await messages.add_outgoing(
        conversation, "a", "m1", "hi", "plain", None, now
    )
    assert created and queued.status == "queued"
    edited = await messages.edit_outgoing(queued.id, "hello", None, "plain", now)
    assert edited is not None and (edited.pending, edited.revision) == (None, 1)
    # The send carried revision 0: Matrix still needs the edit.
    await messages.mark_sent(queued.id, "$e1", 0, now)
    sent = await messages.get(queued.id)
    assert sent is not None and (sent.status, sent.pending) == ("sent", "edit")
    assert [m.id for m in await messages.pending_changes(10)] == [queued.id]
    await messages.mark_synced(queued.id, 1, "edit", ("$edit1", sent), now)
    assert await messages.pending_changes(10) == []
    assert await messages.is_edit_event("$edit1")
    assert await _types(db) == ["conversation.created", "message.created", "message.edited"]


async def test_a_repeated_edit_changes_nothing(db: Database) -> None:
    _, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    record, _, _ = await messages.add_outgoing(conversation, "a", "m1", "hi", "plain", None, now)
    await messages.mark_sent(record.id, "$e1", 0, now)
    first = await messages.edit_outgoing(record.id, "ho", None, "plain", now)
    again = await messages.edit_outgoing(record.id, "ho", None, "plain", now)
    assert first is not None and again is not None
    assert (first.revision, again.revision, again.pending) == (1, 1, "edit")
    assert (await _types(db)).count("message.edited") == 1


async def test_deleting_an_unsent_message_withdraws_it_and_a_late_send_is_redacted(
    db: Database,
) -> None:
    _, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    first, _, ahead = await messages.add_outgoing(
        conversation, "a", "m1", "one", "plain", None, now
    )
    second, _, behind = await messages.add_outgoing(
        conversation, "a", "m2", "two", "plain", None, now
    )
    assert (ahead, behind) == (False, True)  # the second waits for the first
    # `first` is in flight (its send started before the delete).
    deleted = await messages.delete_outgoing(first.id, now)
    assert deleted is not None and (deleted.status, deleted.pending) == ("withdrawn", None)
    assert [m.id for m in await messages.queued(10)] == [second.id]
    first_in_line = await messages.first_queued(conversation)
    assert first_in_line is not None and first_in_line.id == second.id
    await messages.mark_sent(first.id, "$late", 0, now)
    late = await messages.get(first.id)
    assert late is not None and late.pending == "redact"
    assert await messages.delete_outgoing(first.id, now) == late  # once only
    assert (await _types(db)).count("message.deleted") == 1


async def test_matrix_edits_and_redactions_apply_once(db: Database) -> None:
    _, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    assert await messages.add_incoming(conversation, "b", "$m", "3pm", None, now)
    record = await messages.by_event_id("$m")
    assert record is not None
    assert await messages.edit_incoming("$edit", record.id, "4pm", "<em>4pm</em>", now)
    assert not await messages.edit_incoming("$edit", record.id, "4pm", "<em>4pm</em>", now)
    assert await messages.delete_incoming(record.id, "$redaction", now)
    assert not await messages.delete_incoming(record.id, "$redaction", now)
    # An edit arriving after the deletion doesn't bring the text back.
    assert not await messages.edit_incoming("$edit2", record.id, "5pm", None, now)
    final = await messages.get(record.id)
    assert final is not None and (final.body, final.deleted_at is not None) == ("4pm", True)
    assert await _types(db) == [
        "conversation.created",
        "message.created",
        "message.edited",
        "message.deleted",
    ]


async def test_read_markers_only_move_forward_and_drive_unread_counts(db: Database) -> None:
    conversations, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    for n in range(4):
        await messages.add_incoming(conversation, "b", f"$m{n}", f"m{n}", None, now)
    await messages.add_incoming(conversation, "a", "$mine", "mine", None, now)
    page = await messages.page(conversation, None, 10)
    [entry] = await conversations.inbox("a", 10)
    assert entry.unread == 4 and entry.last_message is not None
    last = entry.last_message
    assert (last.sender, last.body, last.deleted) == ("a", "mine", False)
    assert await conversations.mark_read(conversation, "a", page[1].seq, page[1].id, now, "lms")
    assert not await conversations.mark_read(
        conversation, "a", page[0].seq, page[0].id, now, "lms"
    )  # backwards
    assert await conversations.read_up_to(conversation, "a") == page[1].seq
    [entry] = await conversations.inbox("a", 10)
    assert entry.unread == 2
    assert await conversations.inbox("nobody", 10) == []


async def test_state_changes_are_published_once(db: Database) -> None:
    conversations, _, conversation = await _setup(db)
    now = datetime.now(UTC)
    assert await conversations.set_state(conversation, "read_only", "no_relationship", "x", now)
    assert not await conversations.set_state(conversation, "read_only", "no_relationship", "x", now)
    assert await conversations.set_state(conversation, "active", "your_tutor", "y", now)
    assert [r.id for r in await conversations.involving(["a"])] == [conversation]
    assert [r.id for r in await conversations.made("", 10)] == [conversation]
    assert (await _types(db)).count("conversation.state_changed") == 2


async def test_a_deletion_during_an_edit_sync_stays_pending(db: Database) -> None:
    _, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    record, _, _ = await messages.add_outgoing(conversation, "a", "m1", "hi", "plain", None, now)
    await messages.mark_sent(record.id, "$e1", 0, now)
    edited = await messages.edit_outgoing(record.id, "ho", None, "plain", now)
    assert edited is not None and edited.pending == "edit"
    await messages.delete_outgoing(record.id, now)  # while the edit is on its way to Matrix
    await messages.mark_synced(record.id, edited.revision, "edit", ("$edit", edited), now)
    after = await messages.get(record.id)
    assert after is not None and after.pending == "redact"


async def test_a_stored_message_is_found_by_its_client_message_id(db: Database) -> None:
    _, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    await messages.add_outgoing(conversation, "a", "m1", "hi", "plain", None, now)
    assert await messages.by_client_message_id("b", "m1") is None
    found = await messages.by_client_message_id("a", "m1")
    assert found is not None and found.body == "hi"


async def test_a_redacted_edit_gives_back_the_text_before_it(db: Database) -> None:
    """Matrix clients show the latest edit left after a redaction, or the original."""
    _, messages, conversation = await _setup(db)
    now = datetime.now(UTC)
    assert await messages.add_incoming(conversation, "a", "$orig", "one", None, now)
    record = await messages.by_event_id("$orig")
    assert record is not None
    assert await messages.edit_incoming("$edit2", record.id, "two", None, now)
    later = now.replace(microsecond=0) + timedelta(seconds=1)
    assert await messages.edit_incoming("$edit3", record.id, "<b>three</b>", "<b>3</b>", later)
    # Undoing the latest edit shows the one before it; undoing that, the original.
    assert await messages.undo_edit("$edit3", conversation, "$r1", later)
    current = await messages.get(record.id)
    assert current is not None and (current.body, current.html) == ("two", None)
    assert not await messages.undo_edit("$edit3", conversation, "$r1", later)  # once
    assert await messages.undo_edit("$edit2", conversation, "$r2", later)
    current = await messages.get(record.id)
    assert current is not None and (current.body, current.format) == ("one", "plain")
    events = [e for e in await EventLogRepository(db).after(0, 100) if e.type == "message.edited"]
    assert [(e.data["body"], e.data["edit_event_id"]) for e in events[-2:]] == [
        ("two", "$edit2"),
        ("one", None),
    ]
    # Another conversation's redaction can't touch it, nor can an unknown event.
    assert not await messages.undo_edit("$nothing", conversation, "$r3", later)
