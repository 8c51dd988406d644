"""The payload (`data`) of every event the LMS receives, by type, and the envelope around it.

The store builds these when it appends an event, in the transaction of the change; the OpenAPI
document describes each type from the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from bridge.contract.reports import ReportedMessage, ReportPerson, ReportView
from bridge.contract.shapes import OMITTED, Omitted, Rule, schema_of
from bridge.contract.values import Origin, State, StoredFormat, Time
from bridge.domain.content import Attachment

Participants = Annotated[list[str], Rule(min_items=2, max_items=2)]


def _when_origin(origin: str, then: dict[str, Any]) -> dict[str, Any]:
    """A condition on the payload of a change made in `origin` ("lms" or "matrix")."""
    return {"if": {"properties": {"origin": {"const": origin}}}, "then": then}


@dataclass(frozen=True)
class EventPayload:
    """The `data` of an event; each subclass is one type, named by `TYPE`."""

    TYPE: ClassVar[str]


@dataclass(frozen=True)
class AttachmentInfo:
    """The file the message carries (download it from …/attachment)"""

    kind: Annotated[str, Rule(schema={"enum": ["image", "audio", "video", "file"]})]
    name: str
    size: Annotated[int | None, Rule("bytes, as the sender stated")]
    mimetype: str | None


def attachment_info(attachment: Attachment | None) -> AttachmentInfo | None:
    """How the LMS sees a message's file (its content URI stays the bridge's business)."""
    if attachment is None:
        return None
    return AttachmentInfo(attachment.kind, attachment.name, attachment.size, attachment.mimetype)


@dataclass(frozen=True)
class MessageCreated(EventPayload):
    """A new message, from the LMS or typed in a Matrix client"""

    TYPE: ClassVar[str] = "message.created"
    __schema__: ClassVar[dict[str, Any]] = {
        "allOf": [_when_origin("matrix", {"properties": {"event_id": {"type": "string"}}})]
    }

    message_id: str
    conversation_id: str
    sender: str
    body: Annotated[str, Rule("the text; for a file its caption or name")]
    format: StoredFormat
    html: str | None
    event_id: Annotated[str | None, Rule("null while an LMS message is queued")]
    origin: Origin
    created_at: Time
    attachment: AttachmentInfo | None


_EDIT_IDS = ("edit_event_id", "undone_edit_event_id", "redaction_event_id")


@dataclass(frozen=True)
class MessageEdited(EventPayload):
    """A message's text changed (an edit, or an edit redacted in Matrix undone)"""

    TYPE: ClassVar[str] = "message.edited"
    __schema__: ClassVar[dict[str, Any]] = {
        "dependentRequired": {
            "undone_edit_event_id": ["redaction_event_id"],
            "redaction_event_id": ["undone_edit_event_id"],
        },
        "allOf": [
            _when_origin("matrix", {"required": ["edit_event_id"]}),
            # The Matrix event ids belong to changes made in a Matrix client only.
            _when_origin("lms", {"properties": dict.fromkeys(_EDIT_IDS, False)}),
            {
                # Only an undone edit can bring the original text (no edit) back.
                "if": {"not": {"required": ["undone_edit_event_id"]}},
                "then": {"properties": {"edit_event_id": {"type": "string"}}},
            },
        ],
    }

    message_id: str
    conversation_id: str
    sender: str
    body: str
    format: StoredFormat
    html: str | None
    origin: Origin
    edited_at: Time
    edit_event_id: Annotated[
        str | Omitted | None,
        Rule(
            "the Matrix edit now shown (null: the original text again); always there for a "
            "change made in Matrix"
        ),
    ] = OMITTED
    undone_edit_event_id: Annotated[
        str | Omitted, Rule("the edit redacted in Matrix, when this undoes one")
    ] = OMITTED
    redaction_event_id: Annotated[
        str | Omitted, Rule("the redaction of the edit, when this undoes one")
    ] = OMITTED


@dataclass(frozen=True)
class MessageDeleted(EventPayload):
    """A message was deleted (redacted in Matrix)"""

    TYPE: ClassVar[str] = "message.deleted"
    __schema__: ClassVar[dict[str, Any]] = {
        "allOf": [
            _when_origin("matrix", {"required": ["redaction_event_id"]}),
            _when_origin("lms", {"properties": {"redaction_event_id": False}}),
        ]
    }

    message_id: str
    conversation_id: str
    sender: str
    origin: Origin
    deleted_at: Time
    redaction_event_id: Annotated[str | Omitted, Rule("for a deletion made in Matrix")] = OMITTED
    moderator: Annotated[
        str | Omitted, Rule("who removed it, when a moderator did (not its sender)")
    ] = OMITTED


@dataclass(frozen=True)
class MessageBlocked(EventPayload):
    """A message (or an edit) typed in a Matrix client held contact information the
    institution's rule blocks: the bot removed it from Matrix, so it never reached the LMS"""

    TYPE: ClassVar[str] = "message.blocked"

    conversation_id: str
    sender: str
    event_id: Annotated[str, Rule("the Matrix event removed")]
    change: Annotated[Literal["message", "edit"], Rule("a new message, or an edit of one")]
    message_id: Annotated[str | None, Rule("the message an edit was for")]
    kinds: Annotated[list[str], Rule("what was found: phone, email, social")]
    blocked_at: Time


@dataclass(frozen=True)
class MessageFailed(EventPayload):
    """The homeserver refused a message for good"""

    TYPE: ClassVar[str] = "message.failed"

    message_id: str
    conversation_id: str
    sender: str
    origin: Annotated[Origin, Rule(schema={"enum": ["lms"]})]
    reason: str


@dataclass(frozen=True)
class ReactionAdded(EventPayload):
    """Someone reacted to a message in a Matrix client (`key` is the emoji or text)"""

    TYPE: ClassVar[str] = "reaction.added"

    message_id: str
    conversation_id: str
    sender: str
    key: str
    event_id: str
    created_at: Time


@dataclass(frozen=True)
class ReactionRemoved(EventPayload):
    """A reaction was taken back"""

    TYPE: ClassVar[str] = "reaction.removed"

    message_id: str
    conversation_id: str
    sender: str
    key: str
    event_id: Annotated[str, Rule("the reaction's event")]
    redaction_event_id: str
    removed_at: Time


@dataclass(frozen=True)
class ConversationCreated(EventPayload):
    """A conversation's room was made"""

    TYPE: ClassVar[str] = "conversation.created"

    conversation_id: str
    participants: Participants
    started_by: str
    room_id: str
    state: State


@dataclass(frozen=True)
class ConversationStateChanged(EventPayload):
    """A conversation turned read-only, or opened again"""

    TYPE: ClassVar[str] = "conversation.state_changed"

    conversation_id: str
    state: State
    reason_code: str
    reason: str


@dataclass(frozen=True)
class ConversationRead(EventPayload):
    """Someone read a conversation up to a message, in the LMS's inbox or a Matrix client"""

    TYPE: ClassVar[str] = "conversation.read"

    conversation_id: str
    user_id: str
    up_to: Annotated[str, Rule("the newest message read")]
    origin: Origin
    read_at: Time


@dataclass(frozen=True)
class AvailabilityNotice(EventPayload):
    """A student wrote to a tutor outside the tutor's stated hours: the bot told them so in the
    conversation (once per conversation per day of the tutor's calendar); the message was
    delivered as usual"""

    TYPE: ClassVar[str] = "availability.notice"

    notice_id: str
    conversation_id: str
    student: str
    tutor: str
    message_id: Annotated[str, Rule("the student's message that was outside the hours")]
    body: Annotated[str, Rule("the notice's text")]
    day: Annotated[str, Rule("the tutor's local date (YYYY-MM-DD)")]
    created_at: Time


@dataclass(frozen=True)
class ReportCreated(EventPayload):
    """Someone reported a message"""

    TYPE: ClassVar[str] = "report.created"

    report: ReportView
    message: ReportedMessage | None
    reporter: ReportPerson | None
    reported: ReportPerson | None


@dataclass(frozen=True)
class ReportResolved(EventPayload):
    """A moderator handled a report (`report.resolution` says how)"""

    TYPE: ClassVar[str] = "report.resolved"

    report: ReportView


@dataclass(frozen=True)
class UserWarned(EventPayload):
    """A moderator warned someone (the bot told them in the conversation's room)"""

    TYPE: ClassVar[str] = "user.warned"

    user_id: str
    matrix_id: str
    moderator: str
    note: str | None
    report_id: Annotated[str | None, Rule("the report that led to it")]
    conversation_id: Annotated[str | None, Rule("where they were told")]
    warned_at: Time


@dataclass(frozen=True)
class UserSuspended(EventPayload):
    """A moderator suspended someone's messaging: their sends are refused, through the API and
    (where the homeserver can suspend accounts) from Matrix clients"""

    TYPE: ClassVar[str] = "user.suspended"

    user_id: str
    matrix_id: str
    moderator: str
    note: str | None
    until: Annotated[Time | None, Rule("null: until a moderator lifts it")]
    report_id: Annotated[str | None, Rule("the report that led to it")]
    suspended_at: Time


@dataclass(frozen=True)
class UserUnsuspended(EventPayload):
    """Someone may message again"""

    TYPE: ClassVar[str] = "user.unsuspended"

    user_id: str
    matrix_id: str
    moderator: Annotated[str | None, Rule("null: the suspension ran out")]
    unsuspended_at: Time


EVENT_TYPES: tuple[type[EventPayload], ...] = (
    MessageCreated,
    MessageEdited,
    MessageDeleted,
    MessageBlocked,
    MessageFailed,
    ReactionAdded,
    ReactionRemoved,
    ConversationCreated,
    ConversationStateChanged,
    ConversationRead,
    AvailabilityNotice,
    ReportCreated,
    ReportResolved,
    UserWarned,
    UserSuspended,
    UserUnsuspended,
)
EVENT_NAMES = sorted(t.TYPE for t in EVENT_TYPES)


@dataclass(frozen=True)
class Event:
    """One event, as the feed lists it and the webhook receives it: `data` is the schema of its
    type (in components.schemas under the type's name)"""

    __component__: ClassVar[str] = "Event"
    __schema__: ClassVar[dict[str, Any]] = {
        "allOf": [
            {
                "if": {"properties": {"type": {"const": name}}},
                "then": {"properties": {"data": {"$ref": f"#/components/schemas/{name}"}}},
            }
            for name in EVENT_NAMES
        ]
    }

    id: str
    seq: Annotated[int, Rule(minimum=1)]
    type: Annotated[str, Rule(schema={"enum": EVENT_NAMES})]
    created_at: Time
    data: dict[str, Any]


def event_schemas() -> dict[str, dict[str, Any]]:
    """The schema of each event type's `data`, by type name."""
    return {t.TYPE: schema_of(t) for t in EVENT_TYPES}
