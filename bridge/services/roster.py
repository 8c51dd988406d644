"""Roster changes from the LMS: reference checks, then one transactional write."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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


def _references(change: RosterChange) -> list[tuple[str, str, str]]:
    """(kind, id, field) of everything a change needs to exist."""
    match change:
        case MembershipPut(institution_id=i, user_id=u):
            return [("institution", i, "institution_id"), ("user", u, "user_id")]
        case CoursePut(institution_id=i):
            return [("institution", i, "institution_id")]
        case BatchPut(course_id=c):
            return [("course", c, "course_id")]
        case AssignmentPut(batch_id=b, user_id=u):
            return [("batch", b, "batch_id"), ("user", u, "user_id")]
    return []


def _defines(change: RosterChange) -> tuple[str, str] | None:
    match change:
        case InstitutionPut(id=i):
            return ("institution", i)
        case UserPut(id=i):
            return ("user", i)
        case CoursePut(id=i):
            return ("course", i)
        case BatchPut(id=i):
            return ("batch", i)
    return None


def _removes(change: RosterChange) -> tuple[str, str] | None:
    match change:
        case InstitutionDelete(id=i):
            return ("institution", i)
        case CourseDelete(id=i):
            return ("course", i)
        case BatchDelete(id=i):
            return ("batch", i)
    return None


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
        for change in changes:
            for kind, key, _field in _references(change):
                wanted[kind].add(key)
        exists = {kind: await self._roster.existing(kind, keys) for kind, keys in wanted.items()}
        for change in final:
            if (defined := _defines(change)) is not None:
                exists[defined[0]].add(defined[1])
            if (removed := _removes(change)) is not None:
                exists[removed[0]].discard(removed[1])
        problems = [
            Problem(index, "unknown_reference", f"no {kind} with id {key!r}", {field: key})
            for index, change in enumerate(changes)
            for kind, key, field in _references(change)
            if key not in exists[kind]
        ]
        if problems:
            raise RosterRejected(problems)
