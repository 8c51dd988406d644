"""What the roster routes take and answer beyond the record fields: a tutor's availability
(sent and answered), a person, a bulk request's result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from bridge.contract.shapes import OMITTED, Omitted, Rule
from bridge.domain.policy import Role

MAX_SLOTS = 50
MAX_NOTE = 500
HHMM_PATTERN = r"([01]\d|2[0-3]):[0-5]\d"
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HourMinute = Annotated[str, Rule(pattern=f"^{HHMM_PATTERN}$", example="09:30")]


ContactInfoMode = Annotated[
    Literal["off", "flag", "warn", "block"],
    Rule(
        "phone numbers, e-mail addresses and social-media contacts in a message: allowed, "
        "reported to the moderators, the sender told, or the message refused (removed from "
        "Matrix)"
    ),
]


@dataclass(frozen=True)
class ContentRules:
    """The institution's content rules (left out: the bridge's configured default)"""

    contact_info: ContactInfoMode


@dataclass(frozen=True)
class WeeklySlot:
    """Hours on one day of the week, in the availability's time zone"""

    day: Day
    start: HourMinute
    end: HourMinute


@dataclass(frozen=True)
class Availability:
    """A tutor's stated availability"""

    timezone: Annotated[str | Omitted | None, Rule(example="Europe/Berlin")] = OMITTED
    weekly_hours: Annotated[list[WeeklySlot] | Omitted, Rule(max_items=MAX_SLOTS)] = OMITTED
    note: Annotated[str | Omitted | None, Rule(max_length=MAX_NOTE)] = OMITTED


@dataclass(frozen=True)
class AvailabilityWords:
    """A tutor's stated availability, in words"""

    hours: Annotated[str | None, Rule(example="Usually available Mon–Thu 10:00–16:00, London time")]
    note: str | None


@dataclass(frozen=True)
class Membership:
    """A role at an institution"""

    institution_id: str
    role: Role


@dataclass(frozen=True)
class UserView:
    """A person"""

    id: str
    display_name: str
    avatar_url: str | None
    initials: Annotated[str, Rule(example="AK")]
    avatar_color: Annotated[str, Rule(example="#1f77b4")]
    active: bool
    availability: Annotated[Availability | None, Rule("A tutor's stated availability, as sent")]
    matrix_id: Annotated[str, Rule(example="@_lms_42:example.org")]
    memberships: list[Membership]


@dataclass(frozen=True)
class BulkResult:
    """What a bulk request applied"""

    applied: Annotated[int, Rule("records applied")]
    counts: Annotated[
        dict[str, int], Rule("rows changed, by kind", example={"users": 2, "members": 2})
    ]
