"""Every kind of event the store appends, from each origin, matches the schema of its type in
the OpenAPI document (the envelope as the feed and the webhook carry it, and its `data`)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bridge.contract.events import (
    EVENT_NAMES,
    MessageBlocked,
    ReportCreated,
    ReportResolved,
    UserSuspended,
    UserUnsuspended,
    UserWarned,
)
from bridge.contract.reports import ReportPerson, ReportView, Resolution
from bridge.contract.shapes import dump
from bridge.domain.content import Attachment
from bridge.domain.roster import UserPut
from bridge.services.reports import reported_message
from bridge.store import migrate
from bridge.store.availability import AvailabilityNoticeRepository, NoticeRecord
from bridge.store.conversations import ConversationRepository
from bridge.store.database import Database
from bridge.store.events import EventLogRepository, LoggedEvent
from bridge.store.messages import MessageRepository
from bridge.store.moderation import ModerationRepository
from bridge.store.reports import ReportRepository
from bridge.store.roster import RosterRepository
from tests.support.contract import ContractViolation, check_event


def _envelope(event: LoggedEvent) -> dict[str, object]:
    # As bridge.api.events and bridge.services.webhooks send it.
    return dump(event.envelope())


async def test_every_event_the_store_appends_matches_its_schema(db: Database) -> None:
    await migrate.upgrade(db)
    now = datetime.now(UTC)
    later = now + timedelta(seconds=1)
    await RosterRepository(db).apply([UserPut("a", "Ann"), UserPut("b", "Bo")], now)
    conversations = ConversationRepository(db)
    messages = MessageRepository(db)
    record = await conversations.claim("a", "b", now)
    await conversations.activate(record.id, "!room:hs", now)
    conversation = record.id
    # From the LMS: sent, edited, deleted; one refused for good.
    sent, _, _ = await messages.add_outgoing(
        conversation, "a", "m1", "hi", "markdown", "<p>hi</p>", now
    )
    await messages.mark_sent(sent.id, "$sent", 0, now)
    await messages.edit_outgoing(sent.id, "hello", None, "plain", now)
    await messages.delete_outgoing(sent.id, now)
    refused, _, _ = await messages.add_outgoing(conversation, "a", "m2", "no", "plain", None, now)
    await messages.mark_failed(refused.id, "M_FORBIDDEN", now)
    # From Matrix: a file, an edit of a text and the edit undone, reactions, a deletion.
    photo = Attachment("image", "mxc://hs/abc", "p.png", 12, "image/png")
    assert await messages.add_incoming(conversation, "b", "$file", "p.png", None, now, photo)
    assert await messages.add_incoming(conversation, "b", "$text", "3pm", None, now)
    text = await messages.by_event_id("$text")
    assert text is not None
    assert await messages.edit_incoming("$edit", text.id, "4pm", "<em>4pm</em>", now)
    assert await messages.edit_incoming("$edit2", text.id, "5pm", None, later)
    assert await messages.undo_edit("$edit2", conversation, "$undo2", later)  # back to $edit
    assert await messages.undo_edit("$edit", conversation, "$undo", later)  # the original
    assert await messages.add_reaction("$like", text, "a", "👍", now)
    assert await messages.remove_reaction("$like", conversation, "$unlike", now)
    assert await messages.delete_incoming(text.id, "$redaction", now)
    assert await conversations.mark_read(conversation, "a", text.seq, text.id, now, "lms")
    assert await conversations.mark_read(conversation, "b", text.seq, text.id, now, "matrix")
    assert await conversations.set_state(conversation, "read_only", "ended", "It ended", now)
    # A report of the file, and its outcome.
    photo_message = await messages.by_event_id("$file")
    assert photo_message is not None
    report = ReportView(
        *("r1", "open", "lms", "spam", "ads", "a", "@a:hs", "b", "@b:hs", photo_message.id),
        conversation,
        *("!room:hs", "$file", now, None),
    )
    person = ReportPerson("a", "Ann", "student", "@a:hs")
    reports = ReportRepository(db)
    assert await reports.add(
        ReportCreated(report, reported_message(photo_message), person, None), now
    )
    closed = dataclasses.replace(
        report, state="resolved", resolution=Resolution("dismiss", "mod", None, later)
    )
    assert await reports.resolve(ReportResolved(closed), later)
    # A moderator's removal, warning, suspension and its end.
    removed, _, _ = await messages.add_outgoing(
        conversation, "b", "m3", "call me", "plain", None, now
    )
    await messages.mark_sent(removed.id, "$removed", 0, now)
    await messages.delete_outgoing(removed.id, now, moderator="@mod:hs")
    moderation = ModerationRepository(db)
    await moderation.record_warning(
        UserWarned("b", "@b:hs", "@mod:hs", "Be kind", "r1", conversation, now), now
    )
    await moderation.suspend(UserSuspended("b", "@b:hs", "@mod:hs", None, later, "r1", now), now)
    assert await moderation.lift(UserUnsuspended("b", "@b:hs", None, later), later)
    blocked = MessageBlocked(conversation, "b", "$blocked", "message", None, ["email"], now)
    assert await messages.record_blocked(blocked, now)
    assert not await messages.record_blocked(blocked, now)  # once per Matrix event

    notice = NoticeRecord(
        *("n1", conversation, "2026-01-02", "a", "b", text.id, "Back on Monday"), None, now
    )
    assert await AvailabilityNoticeRepository(db).record(notice)
    assert not await AvailabilityNoticeRepository(db).record(
        dataclasses.replace(notice, id="n2")
    )  # one a day

    logged = await EventLogRepository(db).after(0, 100)
    for event in logged:
        check_event(_envelope(event), f"{event.type} #{event.seq}")
    assert {e.type for e in logged} == set(EVENT_NAMES)  # every type was checked
    origins = {(e.type, e.data.get("origin")) for e in logged if "origin" in e.data}
    assert {("message.edited", "lms"), ("message.edited", "matrix")} <= origins
    assert {("message.deleted", "lms"), ("message.deleted", "matrix")} <= origins
    assert [e.data.get("moderator") for e in logged if e.type == "message.deleted"] == [
        None,
        None,
        "@mod:hs",
    ]


def test_the_schemas_refuse_what_the_store_never_sends() -> None:
    base = {"message_id": "m", "conversation_id": "c", "sender": "a", "deleted_at": _NOW}
    envelope = {"id": "e", "seq": 1, "type": "message.deleted", "created_at": _NOW}
    check_event({**envelope, "data": {**base, "origin": "lms"}})
    with pytest.raises(ContractViolation, match="redaction_event_id"):
        check_event({**envelope, "data": {**base, "origin": "matrix"}})  # Matrix names it
    with pytest.raises(ContractViolation, match="surprise"):
        check_event({**envelope, "data": {**base, "origin": "lms", "surprise": 1}})
    edited = {
        **envelope,
        "type": "message.edited",
        "data": {
            "message_id": "m",
            "conversation_id": "c",
            "sender": "a",
            "body": "b",
            "html": None,
            "origin": "matrix",
            "edited_at": _NOW,
        },
    }
    with pytest.raises(ContractViolation, match="format"):
        check_event(edited)
    with pytest.raises(ContractViolation, match="edit_event_id"):
        check_event({**edited, "data": {**edited["data"], "format": "plain"}})  # type: ignore[dict-item]


_NOW = "2026-01-01T09:00:00+00:00"
