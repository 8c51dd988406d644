"""What the conversation, message, reading and event routes take and answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from bridge.contract.events import AttachmentInfo, Event
from bridge.contract.roster import AvailabilityWords
from bridge.contract.shapes import OMITTED, Omitted, Rule
from bridge.contract.values import Id, State, StoredFormat, Time

ClientMessageId = Annotated[
    Id, Rule("The LMS's own id: a repeat returns the stored message, never a second one")
]
Body = Annotated[str, Rule("not blank; see messages.max_body_chars")]
# What the LMS may write in; html only ever comes from Matrix.
SentFormat = Literal["plain", "markdown"]
PageLimit = Annotated[int, Rule(minimum=1, maximum=200)]


# --- requests ---


@dataclass(frozen=True)
class StartConversation:
    """The two people; either may call again later and gets the same conversation"""

    initiator: Id
    recipient: Id


@dataclass(frozen=True)
class SendText:
    """A text message"""

    sender: Id
    body: Body
    client_message_id: ClientMessageId
    format: SentFormat = "plain"


@dataclass(frozen=True)
class SendFile:
    """A file: uploaded to the homeserver as the sender, then sent as an image, audio, video or
    file message (503 when the homeserver can't take it now)"""

    sender: Id
    client_message_id: ClientMessageId
    file: bytes
    body: Annotated[str | Omitted, Rule("a caption")] = OMITTED


@dataclass(frozen=True)
class EditText:
    """The new text of one's own message"""

    user: Id
    body: Body
    format: SentFormat = "plain"


@dataclass(frozen=True)
class MarkRead:
    """Who has read, and up to which message"""

    user: Id
    up_to: Annotated[Id, Rule("a message id")]


@dataclass(frozen=True)
class InboxQuery:
    """Parameters of a person's inbox."""

    limit: PageLimit = 50


@dataclass(frozen=True)
class HistoryQuery:
    """Parameters of a page of history."""

    reader: Annotated[Id, Rule("The participant reading", name="as")]
    before: Annotated[Id | Omitted, Rule("A message id: the page ends just before it")] = OMITTED
    limit: PageLimit = 50


@dataclass(frozen=True)
class DeleteQuery:
    """Parameters of a deletion."""

    sender: Annotated[Id, Rule("The message's sender", name="as")]


@dataclass(frozen=True)
class DownloadQuery:
    """Parameters of a download."""

    reader: Annotated[Id, Rule("The participant downloading", name="as")]


@dataclass(frozen=True)
class EventsQuery:
    """Parameters of the event feed."""

    after: Annotated[int, Rule("a seq: the events after it", minimum=0, maximum=2**62)] = 0
    limit: Annotated[int, Rule(minimum=1, maximum=1000)] = 100


# --- answers ---


@dataclass(frozen=True)
class Participant:
    """One of the pair"""

    user_id: str
    matrix_id: str


@dataclass(frozen=True)
class ConversationView:
    """A conversation"""

    id: str
    state: State
    room_id: Annotated[str, Rule(example="!abc:example.org")]
    started_by: str
    encrypted: Annotated[bool, Rule("The room turned encrypted: the bridge no longer mirrors it")]
    participants: Annotated[list[Participant], Rule(min_items=2, max_items=2)]


@dataclass(frozen=True)
class MessageView:
    """A message"""

    id: str
    conversation_id: str
    sender: str
    client_message_id: Annotated[str | None, Rule("null for a message typed in Matrix")]
    body: Annotated[str | None, Rule("null once deleted")]
    format: StoredFormat
    html: Annotated[str | None, Rule("rendered Markdown, or sanitised Matrix HTML")]
    status: Literal["sent", "queued", "withdrawn", "failed"]
    event_id: Annotated[str | None, Rule("the Matrix event")]
    created_at: Time
    edited_at: Time | None
    deleted: bool
    pending: Annotated[
        Literal["edit", "redact"] | None,
        Rule("A change Matrix hasn't received yet (the homeserver is away)"),
    ]
    attachment: Annotated[AttachmentInfo | None, Rule("null when none, and once deleted")]


@dataclass(frozen=True)
class ContactInfoFound:
    """Contact information found in a text (offsets in characters)"""

    kind: Literal["phone", "email", "social"]
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class RuleNotice:
    """What the institution's contact-info rule did with the message"""

    rule: Annotated[
        Literal["flag", "warn"],
        Rule("flag: delivered and reported to the moderators; warn: delivered, sender told"),
    ]
    message: Annotated[str, Rule("for the sender")]
    found: list[ContactInfoFound]


@dataclass(frozen=True)
class SentMessage(MessageView):
    """A message as sent or edited"""

    contact_info: Annotated[
        RuleNotice | Omitted, Rule("there when the contact-info rule found something")
    ] = OMITTED


@dataclass(frozen=True)
class HistoryMessage(MessageView):
    """A message in a page of history, and whether the reader has read it"""

    read: Annotated[bool, Rule("the reader's own messages count as read")]


@dataclass(frozen=True)
class HistoryPage:
    """A page of a conversation's history"""

    messages: Annotated[
        list[HistoryMessage], Rule("oldest first; `read` is whether the reader has read it")
    ]
    next_before: Annotated[str | None, Rule("pass as `before` for the older page")]


@dataclass(frozen=True)
class OtherPerson:
    """The other person of the conversation"""

    user_id: str
    display_name: Annotated[str, Rule("the id, for someone no longer in the roster")]
    avatar_url: str | None
    initials: Annotated[str, Rule(example="AK")]
    role: Annotated[str | None, Rule(example="tutor")]
    active: bool
    matrix_id: str
    availability: Annotated[AvailabilityWords | None, Rule("a tutor's stated hours")]


@dataclass(frozen=True)
class LastMessage:
    """The newest message, previewed"""

    preview: str
    sender: str
    created_at: Time


@dataclass(frozen=True)
class InboxItem(ConversationView):
    """A conversation in a person's inbox"""

    other: OtherPerson
    last_message: LastMessage | None
    unread: Annotated[int, Rule(minimum=0)]


@dataclass(frozen=True)
class Inbox:
    """A person's conversations, the most recently active first"""

    conversations: list[InboxItem]


@dataclass(frozen=True)
class ReadResult:
    """How far the person has read"""

    conversation_id: str
    moved: Annotated[bool, Rule("false when already read that far")]


@dataclass(frozen=True)
class EventPage:
    """A page of the event feed"""

    events: list[Event]
    next_after: Annotated[int, Rule("pass as `after` for the next page")]
