"""Property tests of the policy over random rosters (stored in SQLite, checked by brute force).

An independent oracle reads PRODUCT §2 straight off the random roster; the stored-roster answers
must agree with it for every pair, and the contacts list must be exactly the allowed set.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.domain.roster import (
    AssignmentPut,
    BatchPut,
    CoursePut,
    InstitutionPut,
    MembershipPut,
    RosterChange,
    UserPut,
)
from bridge.services.policy import PolicyService
from bridge.services.roster import RosterService
from bridge.store.database import Database
from bridge.store.roster import RosterRepository
from bridge.store.schema import metadata

NOW = datetime.now(UTC)
WINDOWS = {
    "always": (None, None),
    "current": (NOW - timedelta(days=30), NOW + timedelta(days=30)),
    "ended": (NOW - timedelta(days=30), NOW - timedelta(days=1)),
    "future": (NOW + timedelta(days=1), None),
}


@dataclass(frozen=True)
class Roster:
    users: tuple[tuple[str, bool], ...]  # (id, active)
    members: tuple[tuple[str, str, str], ...]  # (institution, user, role)
    courses: tuple[tuple[str, str], ...]  # (course, institution)
    batches: tuple[tuple[str, str], ...]  # (batch, course)
    assignments: tuple[tuple[str, str, str, str], ...]  # (kind, batch, user, window)

    def changes(self) -> list[RosterChange]:
        out: list[RosterChange] = [InstitutionPut(i, f"Inst {i}") for i in ("i1", "i2")]
        out += [UserPut(u, _name(u), active=active) for u, active in self.users]
        out += [CoursePut(c, i, f"Course {c}") for c, i in self.courses]
        out += [BatchPut(b, c, f"Batch {b}") for b, c in self.batches]
        out += [MembershipPut(i, u, role) for i, u, role in self.members]  # type: ignore[arg-type]
        out += [
            AssignmentPut(kind, b, u, *WINDOWS[w])  # type: ignore[arg-type]
            for kind, b, u, w in self.assignments
        ]
        return out


@st.composite
def rosters(draw: st.DrawFn) -> Roster:
    user_ids = [f"u{n}" for n in range(draw(st.integers(2, 6)))]
    users = tuple((u, draw(st.booleans()) or draw(st.booleans())) for u in user_ids)
    members: dict[tuple[str, str], str] = {}
    for u in user_ids:
        for i in ("i1", "i2"):
            role = draw(st.sampled_from([None, "student", "student", "tutor", "tutor", "admin"]))
            if role:
                members[(i, u)] = role
    courses = tuple((f"c{n}", draw(st.sampled_from(["i1", "i1", "i2"]))) for n in range(3))
    batches = tuple((f"b{n}", draw(st.sampled_from([c for c, _ in courses]))) for n in range(4))
    assignments = {}
    for kind in ("student", "tutor"):
        for b, _ in batches:
            for u in user_ids:
                if draw(st.integers(0, 2)) == 0:
                    window = draw(
                        st.sampled_from(["always", "current", "current", "ended", "future"])
                    )
                    assignments[(kind, b, u)] = window
    return Roster(
        users,
        tuple((i, u, r) for (i, u), r in members.items()),
        courses,
        batches,
        tuple((k, b, u, w) for (k, b, u), w in assignments.items()),
    )


def oracle(roster: Roster, a: str, b: str) -> bool:
    """PRODUCT §2, read directly off the roster."""
    active = dict(roster.users)
    if a == b or not active[a] or not active[b]:
        return False
    course_inst = dict(roster.courses)
    batch_course = dict(roster.batches)

    def current(kind: str, user: str) -> set[str]:
        return {
            bt
            for k, bt, u, w in roster.assignments
            if k == kind and u == user and w in ("always", "current")
        }

    roles = {(i, u): r for i, u, r in roster.members}
    for inst in ("i1", "i2"):
        ra, rb = roles.get((inst, a)), roles.get((inst, b))
        if ra is None or rb is None or rb == "admin":
            continue
        in_inst = {bt for bt, c in batch_course.items() if course_inst[c] == inst}
        if ra == "admin":
            return True
        if ra == rb == "tutor":
            return True
        teaches = current("tutor", a) & current("student", b) & in_inst
        if ra == "tutor" and rb == "student" and teaches:
            return True
        if ra == "student" and rb == "tutor":
            courses_a = {batch_course[bt] for bt in current("student", a) & in_inst}
            courses_b = {batch_course[bt] for bt in current("tutor", b) & in_inst}
            if courses_a & courses_b:
                return True
        if ra == rb == "student" and current("student", a) & current("student", b) & in_inst:
            return True
    return False


# Names are "Person u<n>" (some "---"): the queries hit first words, other words and nothing.
QUERIES = ("", "pe", "u1", "person u", "x")


def _name(user: str) -> str:
    return "---" if user.endswith("3") else f"Person {user}"


def _matches(name: str, query: str) -> bool:
    words, name_words_ = query.split(), name.lower().replace("-", " ").split()
    return all(any(w.startswith(q) for w in name_words_) for q in words)


async def _answers(
    roster: Roster,
) -> tuple[dict[tuple[str, str], bool], dict[tuple[str, str], set[str]]]:
    db = Database("sqlite+pysqlite://")  # in memory: one connection holds it
    try:
        await db.write(metadata.create_all)
        repo = RosterRepository(db)
        await RosterService(repo).apply(roster.changes())
        policy = PolicyService(repo)
        ids = [u for u, _ in roster.users]
        allowed = {(a, b): (await policy.can_start(a, b)).allowed for a in ids for b in ids}
        contacts = {
            (a, q): {c.user_id for c in await policy.contacts(a, q, limit=100)}
            for a in ids
            for q in QUERIES
        }
        return allowed, contacts
    finally:
        await db.close()


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(rosters())
def test_stored_policy_matches_the_rules_and_contacts_match_the_policy(roster: Roster) -> None:
    allowed, contacts = asyncio.run(_answers(roster))
    roles = {(i, u): r for i, u, r in roster.members}
    for (a, b), ok in allowed.items():
        assert ok == oracle(roster, a, b), (a, b)
        shared = [i for i in ("i1", "i2") if (i, a) in roles and (i, b) in roles]
        if ok:
            assert shared  # no permission across institutions
        same_roles = {(roles[(i, a)], roles[(i, b)]) for i in shared}
        if same_roles and same_roles <= {("tutor", "tutor"), ("student", "student")}:
            assert ok == allowed[(b, a)], (a, b)  # symmetric
    for (a, query), found in contacts.items():
        expected = {
            b for (x, b), ok in allowed.items() if x == a and ok and _matches(_name(b), query)
        }
        assert found == expected, (a, query)


@PROPERTY
@given(rosters(), st.data())
def test_removing_an_enrollment_never_adds_a_permission(
    roster: Roster, data: st.DataObject
) -> None:
    if not roster.assignments:
        return
    removed = data.draw(st.sampled_from(roster.assignments))
    before, _ = asyncio.run(_answers(roster))
    after, _ = asyncio.run(
        _answers(replace(roster, assignments=tuple(x for x in roster.assignments if x != removed)))
    )
    assert {pair for pair, ok in after.items() if ok} <= {pair for pair, ok in before.items() if ok}
