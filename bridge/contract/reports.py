"""What the report routes take and answer, and what report events carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from bridge.contract.shapes import OMITTED, FieldError, Omitted, Rule
from bridge.contract.values import Id, Time
from bridge.domain.text import is_blank

MAX_REASON = 1000
Category = Literal["harassment", "spam", "contact_info", "inappropriate", "other"]
ReportOrigin = Annotated[
    Literal["lms", "matrix", "rule"],
    Rule("where it was made: the LMS, a Matrix client, or the content rule"),
]
ReportState = Literal["open", "resolved"]
MAX_SUSPENSION_DAYS = 3650
# What a moderator may do with a report (the admin room's commands do the same).
ReportAction = Annotated[
    Literal["dismiss", "resolve", "delete", "warn", "suspend"],
    Rule(
        "dismiss: nothing wrong; resolve: handled (say how in the note); delete: the message "
        "is removed, in Matrix too; warn: the bot tells the sender in the conversation; "
        "suspend: the sender may not message (for `days`, or until lifted)"
    ),
]


def _words(path: str, value: str) -> str:
    if is_blank(value):
        raise FieldError(path, "expected some words")
    return value.strip()


Words = Annotated[str, Rule(min_length=1, max_length=MAX_REASON, check=_words)]


@dataclass(frozen=True)
class FileReport:
    """A participant reports a message of the other person"""

    reporter: Id
    reason: Annotated[Words, Rule("what is wrong, in the reporter's words")]
    category: Category = "other"


@dataclass(frozen=True)
class ResolveReport:
    """How a moderator handled a report"""

    moderator: Annotated[Id, Rule("who handled it (the LMS's own id for the person)")]
    action: ReportAction
    note: Annotated[Words | Omitted, Rule("for the record, and for the reporter")] = OMITTED
    days: Annotated[
        int | Omitted,
        Rule(
            "how long a suspension lasts (none: until lifted)",
            minimum=1,
            maximum=MAX_SUSPENSION_DAYS,
        ),
    ] = OMITTED


@dataclass(frozen=True)
class ReportsQuery:
    """Parameters of the report list."""

    state: Annotated[ReportState | Omitted, Rule("only reports in this state")] = OMITTED
    after: Annotated[
        int, Rule("a `next_after`: the reports after it", minimum=0, maximum=2**62)
    ] = 0
    limit: Annotated[int, Rule(minimum=1, maximum=200)] = 50


@dataclass(frozen=True)
class Resolution:
    """How the report was handled"""

    action: ReportAction
    moderator: str
    note: str | None
    resolved_at: Time


@dataclass(frozen=True)
class ReportView:
    """A report"""

    id: str
    state: ReportState
    origin: ReportOrigin
    category: Category
    reason: str
    reporter: Annotated[str | None, Rule("null when the reporter is not in the roster")]
    reporter_matrix_id: str
    reported_user: Annotated[
        str | None,
        Rule(
            "the person reported, or the sender of the reported message (null: not in the roster)"
        ),
    ]
    reported_matrix_id: str | None
    message_id: Annotated[
        str | None, Rule("null for a report about a person, or about a room not bridged")
    ]
    conversation_id: str | None
    room_id: Annotated[str | None, Rule("the Matrix room")]
    event_id: Annotated[str | None, Rule("the Matrix event reported")]
    created_at: Time
    resolution: Annotated[Resolution | None, Rule("null while open")]


@dataclass(frozen=True)
class ReportList:
    """Reports, oldest first"""

    reports: list[ReportView]
    next_after: Annotated[int, Rule("pass as `after` for the next page")]


@dataclass(frozen=True)
class ReportPerson:
    """Someone a report is about or from"""

    user_id: str
    display_name: Annotated[str, Rule("the id, for someone no longer in the roster")]
    role: Annotated[str | None, Rule(example="student")]
    matrix_id: str


@dataclass(frozen=True)
class ReportedMessage:
    """A message, as a report shows it"""

    id: str
    conversation_id: str
    sender: str
    body: Annotated[str | None, Rule("null once deleted")]
    created_at: Time
    event_id: str | None
    deleted: bool


@dataclass(frozen=True)
class ReportDetail:
    """A report with what a moderator needs to decide"""

    report: ReportView
    message: Annotated[ReportedMessage | None, Rule("null when it no longer exists")]
    context: Annotated[list[ReportedMessage], Rule("up to three messages before it, oldest first")]
    reporter: ReportPerson | None
    reported: ReportPerson | None
    earlier_reports: Annotated[
        list[ReportView], Rule("other reports against the same person, newest first")
    ]
    filed_on_homeserver: Annotated[
        bool, Rule("also in the homeserver's own report list (false while it is away)")
    ]
