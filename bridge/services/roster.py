"""Roster changes from the LMS: reference checks, then one transactional write."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from bridge.domain.roster import (
    AssignmentPut,
    BatchDelete,
    BatchPut,
    CourseDelete,
    CoursePut,
    InstitutionDelete,
    InstitutionPut,
    MembershipPut,
    RosterChange,
    UserPut,
    change_key,
    policy_reach,
)
from bridge.store.roster import ApplyResult, RosterRepository, UserRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """Why one change of a list can't be applied."""

    index: int
    code: str
    message: str
    missing: dict[str, str]


class RosterConflict(Exception):
    """A concurrent change removed something these changes refer to; nothing was applied."""


class RosterRejected(Exception):
    """Some changes refer to things that don't exist; nothing was applied."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} change(s) refer to missing records")
        self.problems = problems


# What each kind of change needs to exist, as (kind, id, field) lists, dispatched by type (a bulk
# request holds hundreds of thousands of changes); and the changes that make or remove one.
_REFERENCES: dict[type, Callable[[Any], list[tuple[str, str, str]]]] = {
    MembershipPut: lambda c: [
        ("institution", c.institution_id, "institution_id"),
        ("user", c.user_id, "user_id"),
    ],
    CoursePut: lambda c: [("institution", c.institution_id, "institution_id")],
    BatchPut: lambda c: [("course", c.course_id, "course_id")],
    AssignmentPut: lambda c: [("batch", c.batch_id, "batch_id"), ("user", c.user_id, "user_id")],
}
_DEFINING = (InstitutionPut, UserPut, CoursePut, BatchPut)  # their change key is (kind, id)
_REMOVING = (InstitutionDelete, CourseDelete, BatchDelete)


def _references(change: RosterChange) -> list[tuple[str, str, str]]:
    """(kind, id, field) of everything a change needs to exist."""
    references = _REFERENCES.get(type(change))
    return references(change) if references is not None else []


class RosterService:
    """Applies roster changes all-or-nothing; tells who needs a Matrix profile update and
    whose conversations need their state rechecked."""

    def __init__(
        self,
        roster: RosterRepository,
        on_profiles_changed: Callable[[], None] | None = None,
        on_policy_changed: Callable[[set[str], bool], None] | None = None,
    ) -> None:
        self._roster = roster
        self._on_profiles_changed = on_profiles_changed
        self._on_policy_changed = on_policy_changed

    async def exists(self, kind: str, key: str) -> bool:
        """Whether an institution, user, course or batch exists."""
        return bool(await self._roster.existing(kind, [key]))

    async def get_user(self, user_id: str) -> UserRecord | None:
        """A person with their memberships."""
        return await self._roster.get_user(user_id)

    async def apply(self, changes: Sequence[RosterChange]) -> ApplyResult:
        """Check every reference (against the database and the other changes), then apply.

        When several changes concern the same record, the last one wins.
        """
        latest: dict[tuple[str, ...], RosterChange] = {}
        for change in changes:
            latest[change_key(change)] = change
        await self._check_references(changes, list(latest.values()))
        try:
            result = await self._roster.apply(list(latest.values()), datetime.now(UTC))
        except IntegrityError as exc:
            raise RosterConflict(str(exc.orig)) from exc
        if result.profile_changes and self._on_profiles_changed is not None:
            self._on_profiles_changed()
        if self._on_policy_changed is not None:
            people, everyone = policy_reach(list(latest.values()))
            if people or everyone:
                self._on_policy_changed(people, everyone)
        return result

    async def _check_references(
        self, changes: Sequence[RosterChange], final: Sequence[RosterChange]
    ) -> None:
        # What exists afterwards: the database, plus what these changes create, minus what
        # they remove (order within a request doesn't matter: everything applies together).
        wanted: dict[str, set[str]] = {
            "institution": set(),
            "user": set(),
            "course": set(),
            "batch": set(),
        }
        references = [_references(change) for change in changes]
        for found in references:
            for kind, key, _field in found:
                wanted[kind].add(key)
        exists = {kind: await self._roster.existing(kind, keys) for kind, keys in wanted.items()}
        for change in final:
            if isinstance(change, _DEFINING):
                kind, key = change_key(change)
                exists[kind].add(key)
            elif isinstance(change, _REMOVING):
                kind, key = change_key(change)
                exists[kind].discard(key)
        problems = [
            Problem(index, "unknown_reference", f"no {kind} with id {key!r}", {field: key})
            for index, found in enumerate(references)
            for kind, key, field in found
            if key not in exists[kind]
        ]
        if problems:
            raise RosterRejected(problems)
