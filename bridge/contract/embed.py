"""What the embedded inbox's routes take and answer: the LMS's calls that make and end a
person's sessions, and the page's own calls, made with a session token for that person only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from bridge.contract.messaging import Body, ClientMessageId, HistoryMessage, InboxItem, SentFormat
from bridge.contract.reports import Category, Words
from bridge.contract.shapes import OMITTED, Omitted, Rule
from bridge.contract.values import Id, Time

MAX_SESSION_SECONDS = 7 * 24 * 3600

# --- the LMS's calls ---


@dataclass(frozen=True)
class CreateEmbedSession:
    """The person the page is for, and optionally the conversation it opens on"""

    user: Id
    conversation: Annotated[Id | Omitted, Rule("one of the person's conversations")] = OMITTED
    ttl_seconds: Annotated[
        int | Omitted,
        Rule(
            "how long the session lasts (default embed.session_seconds)",
            minimum=60,
            maximum=MAX_SESSION_SECONDS,
        ),
    ] = OMITTED


@dataclass(frozen=True)
class EmbedLink:
    """A link to the page for one person: open it in an iframe. It works once; its single-use
    code is in the fragment, which browsers never send to a server"""

    url: Annotated[str, Rule(example="https://messages.example.edu/embed/#code=…")]
    expires_at: Annotated[Time, Rule("when the session it opens ends at the latest")]


@dataclass(frozen=True)
class EndedSessions:
    """How many sessions and unused links of the person were ended"""

    ended: Annotated[int, Rule(minimum=0)]


@dataclass(frozen=True)
class Unread:
    """What a person has not read yet, for the LMS's navigation badge"""

    user_id: str
    unread: Annotated[int, Rule("messages from others not read yet", minimum=0)]
    conversations: Annotated[int, Rule("conversations holding some", minimum=0)]


# --- the page's calls ---


@dataclass(frozen=True)
class OpenSession:
    """The code from the link's fragment"""

    code: Annotated[str, Rule(min_length=1, max_length=200)]


@dataclass(frozen=True)
class Me:
    """The person the session is for"""

    user_id: str
    display_name: str
    initials: str
    avatar_color: str
    avatar_url: str | None
    role: Annotated[str | None, Rule("student, tutor or admin (their first membership)")]


@dataclass(frozen=True)
class SessionOpened:
    """A session: send `token` as `Authorization: Bearer` on every call of the page"""

    token: str
    expires_at: Time
    me: Me
    conversation_id: Annotated[str | None, Rule("the conversation the link opens on")]


@dataclass(frozen=True)
class PageSend:
    """A message typed in the page"""

    body: Body
    client_message_id: ClientMessageId
    format: SentFormat = "markdown"


@dataclass(frozen=True)
class PageEdit:
    """The new text of one's own message"""

    body: Body
    format: SentFormat = "markdown"


@dataclass(frozen=True)
class PageRead:
    """The newest message seen"""

    up_to: Annotated[Id, Rule("a message id")]


@dataclass(frozen=True)
class PageStart:
    """Whom to write to (one of the person's contacts)"""

    recipient: Id


@dataclass(frozen=True)
class PageReport:
    """A report of the other person's message"""

    reason: Annotated[Words, Rule("what is wrong, in the reporter's words")]
    category: Category = "other"


@dataclass(frozen=True)
class PageHistoryQuery:
    """Parameters of a page of history."""

    before: Annotated[Id | Omitted, Rule("A message id: the page ends just before it")] = OMITTED
    limit: Annotated[int, Rule(minimum=1, maximum=100)] = 30


@dataclass(frozen=True)
class PageMessage(HistoryMessage):
    """A message as the page shows it"""

    seen: Annotated[bool, Rule("one's own message, read by the other person")]
    reported: Annotated[bool, Rule("the person has reported it")]


@dataclass(frozen=True)
class PageHistory:
    """A page of history, oldest first"""

    messages: list[PageMessage]
    next_before: Annotated[str | None, Rule("pass as `before` for the older page")]


@dataclass(frozen=True)
class PageNotice:
    """An automatic notice of the bot in the conversation (a tutor's hours)"""

    id: str
    body: str
    message_id: Annotated[str, Rule("the message it answered")]
    created_at: Time


@dataclass(frozen=True)
class PageConversation:
    """One conversation as the page opens it"""

    conversation: InboxItem
    read_only_reason: Annotated[str | None, Rule("why nobody can write, when read-only")]
    notices: Annotated[list[PageNotice], Rule("the newest, oldest first")]
