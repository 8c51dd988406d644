"""Roster changes from the LMS: reference checks, then one transactional write."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter

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
    by_type,
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


# What each kind of change needs to exist: (kind, field) pairs, by type (a bulk request holds
# hundreds of thousands of changes, so they are looked at a type at a time); and the changes
# that make or remove one.
_REFERENCES: dict[type, tuple[tuple[str, str], ...]] = {
    MembershipPut: (("institution", "institution_id"), ("user", "user_id")),
    CoursePut: (("institution", "institution_id"),),
    BatchPut: (("course", "course_id"),),
    AssignmentPut: (("batch", "batch_id"), ("user", "user_id")),
}
_KINDS = ("institution", "user", "course", "batch")
_DEFINING = (InstitutionPut, UserPut, CoursePut, BatchPut)  # their change key is (kind, id)
_REMOVING = (InstitutionDelete, CourseDelete, BatchDelete)


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
        latest = {change_key(change): change for change in changes}  # the last one wins
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
        wanted: dict[str, set[str]] = {kind: set() for kind in _KINDS}
        for change_type, group in by_type(changes).items():
            for kind, field in _REFERENCES.get(change_type, ()):
                wanted[kind].update(map(attrgetter(field), group))
        exists = {kind: await self._roster.existing(kind, keys) for kind, keys in wanted.items()}
        for change in final:
            if isinstance(change, _DEFINING):
                kind, key = change_key(change)
                exists[kind].add(key)
            elif isinstance(change, _REMOVING):
                kind, key = change_key(change)
                exists[kind].discard(key)
        if all(wanted[kind] <= exists[kind] for kind in _KINDS):
            return
        problems = [
            Problem(index, "unknown_reference", f"no {kind} with id {key!r}", {field: key})
            for index, change in enumerate(changes)
            for kind, field in _REFERENCES.get(type(change), ())
            if (key := getattr(change, field)) not in exists[kind]
        ]
        raise RosterRejected(problems)
