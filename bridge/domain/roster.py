"""Roster changes as plain values: what the LMS asks to put or remove."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bridge.domain.policy import Role

AssignmentKind = Literal["student", "tutor"]


@dataclass(frozen=True)
class InstitutionPut:
    """Create or replace an institution."""

    id: str
    name: str
    region: str | None = None
    timezone: str | None = None
    keep_unset: bool = False  # True: leave region, timezone and rules as they are (imports)
    contact_info: str | None = None  # the contact-info rule (None: the configured default)


@dataclass(frozen=True)
class InstitutionDelete:
    """Remove an institution with its courses, batches and memberships."""

    id: str


@dataclass(frozen=True)
class UserPut:
    """Create or replace a person (deactivating is `active=False`; people are never deleted)."""

    id: str
    display_name: str
    avatar_url: str | None = None
    active: bool = True
    availability: str | None = None  # JSON text, as given
    keep_unset: bool = False  # True: leave avatar_url and availability as they are (imports)


@dataclass(frozen=True)
class MembershipPut:
    """Give a person one role at an institution."""

    institution_id: str
    user_id: str
    role: Role


@dataclass(frozen=True)
class MembershipDelete:
    """Take a person out of an institution."""

    institution_id: str
    user_id: str


@dataclass(frozen=True)
class CoursePut:
    """Create or replace a course."""

    id: str
    institution_id: str
    title: str


@dataclass(frozen=True)
class CourseDelete:
    """Remove a course with its batches."""

    id: str


@dataclass(frozen=True)
class BatchPut:
    """Create or replace a batch (cohort, section, class) of a course."""

    id: str
    course_id: str
    title: str


@dataclass(frozen=True)
class BatchDelete:
    """Remove a batch with its enrollments and teaching assignments."""

    id: str


@dataclass(frozen=True)
class AssignmentPut:
    """Enroll a student in a batch, or make a tutor teach it, optionally for a period."""

    kind: AssignmentKind
    batch_id: str
    user_id: str
    begins_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True)
class AssignmentDelete:
    """End an enrollment or a teaching assignment."""

    kind: AssignmentKind
    batch_id: str
    user_id: str


RosterChange = (
    InstitutionPut
    | InstitutionDelete
    | UserPut
    | MembershipPut
    | MembershipDelete
    | CoursePut
    | CourseDelete
    | BatchPut
    | BatchDelete
    | AssignmentPut
    | AssignmentDelete
)


# What each kind of change is about (dispatch by type: a bulk request holds hundreds of
# thousands of changes, and a dictionary lookup is much cheaper than trying each pattern).
_KEYS: dict[type, Callable[[Any], tuple[str, ...]]] = {
    InstitutionPut: lambda c: ("institution", c.id),
    InstitutionDelete: lambda c: ("institution", c.id),
    UserPut: lambda c: ("user", c.id),
    MembershipPut: lambda c: ("membership", c.institution_id, c.user_id),
    MembershipDelete: lambda c: ("membership", c.institution_id, c.user_id),
    CoursePut: lambda c: ("course", c.id),
    CourseDelete: lambda c: ("course", c.id),
    BatchPut: lambda c: ("batch", c.id),
    BatchDelete: lambda c: ("batch", c.id),
    AssignmentPut: lambda c: ("assignment", c.kind, c.batch_id, c.user_id),
    AssignmentDelete: lambda c: ("assignment", c.kind, c.batch_id, c.user_id),
}
# Changes that concern one person, and changes to the shape of courses and batches.
_PERSONAL = (UserPut, MembershipPut, MembershipDelete, AssignmentPut, AssignmentDelete)
_STRUCTURAL = (CoursePut, CourseDelete, BatchPut, BatchDelete, InstitutionDelete)


def change_key(change: RosterChange) -> tuple[str, ...]:
    """What a change is about: a later change with the same key replaces an earlier one."""
    key = _KEYS.get(type(change))
    if key is None:
        raise TypeError(f"not a roster change: {change!r}")
    return key(change)


def by_type(changes: Iterable[RosterChange]) -> defaultdict[type, list[Any]]:
    """The changes grouped by their type, each group in the given order (a type with none
    gives an empty list)."""
    grouped: defaultdict[type, list[Any]] = defaultdict(list)
    for change in changes:
        grouped[type(change)].append(change)
    return grouped


def policy_reach(changes: Sequence[RosterChange]) -> tuple[set[str], bool]:
    """Whose permissions these changes may alter: (people, whether anyone's may).

    A change to a person, a membership or an assignment concerns that person; a change to the
    shape of courses and batches may concern everyone in them.
    """
    people: set[str] = set()
    everyone = False
    for change_type, group in by_type(changes).items():
        if change_type is UserPut:
            people.update(c.id for c in group)
        elif change_type in _PERSONAL:
            people.update(c.user_id for c in group)
        elif change_type in _STRUCTURAL:
            everyone = True
    return people, everyone
