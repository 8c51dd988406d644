"""The policy over a stored roster, on SQLite and PostgreSQL: one case per cell of the table."""

from __future__ import annotations

import pytest

from bridge.domain.contact_info import RuleSettings
from bridge.domain.roster import (
    AssignmentDelete,
    InstitutionPut,
    MembershipDelete,
    RosterChange,
    UserPut,
)
from bridge.services.policy import PolicyService, UnknownUser
from bridge.services.roster import RosterService
from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.roster import RosterRepository
from tests.support.roster import sample_roster


@pytest.fixture
async def policy(db: Database) -> PolicyService:
    await migrate.upgrade(db)
    roster = RosterRepository(db)
    await RosterService(roster).apply(sample_roster())
    return PolicyService(roster)


CASES = [
    # (from, to, allowed, code, words of the reason)
    ("s1", "t1", True, "your_tutor", "Alex Kim teaches your course Algebra 101"),
    ("s1", "t2", True, "your_tutor", "teaches your course Algebra 101"),  # other batch
    ("s1", "t3", False, "tutor_not_teaching_your_courses", "doesn't teach any of your courses"),
    ("s1", "s2", True, "batch_mate", "is in your batch Algebra 101 · Group A"),
    ("s1", "s3", False, "not_same_batch", "Students can only message students in their own"),
    ("t1", "s1", True, "your_student", "Sam Sutter is in your batch Algebra 101 · Group A"),
    ("t2", "s1", False, "student_not_in_your_batches", "isn't enrolled in any batch you teach"),
    ("t1", "t3", True, "fellow_tutor", "Theo Biology is a tutor at Uni One"),
    ("t1", "t2", True, "fellow_tutor", "is a tutor at Uni One"),
    ("a1", "s1", True, "admin_to_student", "Sam Sutter is a student at Uni One"),
    ("a1", "t3", True, "admin_to_tutor", "is a tutor at Uni One"),
    ("a1", "x1", False, "no_relationship", "You have no course relationship with Xena"),
    ("s1", "a1", False, "recipient_is_admin", "admins can't be messaged directly"),
    ("t1", "a1", False, "recipient_is_admin", "Ada Admin is an admin of Uni One"),
    ("a1", "a1b", False, "recipient_is_admin", "admins can't be messaged directly"),
    ("s1", "x1", False, "no_relationship", "no course relationship"),
    ("x1", "d1", True, "batch_mate", "Chemistry · Morning"),  # roles in two institutions
    ("d1", "x1", True, "batch_mate", "Chemistry · Morning"),
    ("d1", "t1", True, "fellow_tutor", "Uni One"),
    ("s1", "d1", False, "tutor_not_teaching_your_courses", "Dana Dual doesn't teach"),
    ("d1", "s1", False, "student_not_in_your_batches", "Sam Sutter isn't enrolled"),
    ("s1", "s1", False, "self", "yourself"),
    ("s1", "s_off", False, "recipient_inactive", "Otto Offline's account is deactivated"),
    ("s_off", "s1", False, "sender_inactive", "Your account is deactivated"),
    ("s1", "s_old", False, "not_same_batch", "own batch"),  # enrollment ended yesterday
    ("s1", "s_future", False, "not_same_batch", "own batch"),  # starts tomorrow
    ("t1", "s_old", False, "student_not_in_your_batches", "isn't enrolled"),
    ("t1", "s_future", False, "student_not_in_your_batches", "isn't enrolled"),
    ("x1", "a2", False, "recipient_is_admin", "admin"),
    ("a2", "d1", True, "admin_to_student", "Dana Dual is a student at Uni Two"),
]


@pytest.mark.parametrize(("a", "b", "allowed", "code", "reason"), CASES)
async def test_may_start(
    policy: PolicyService, a: str, b: str, allowed: bool, code: str, reason: str
) -> None:
    decision = await policy.can_start(a, b)
    assert (decision.allowed, decision.code) == (allowed, code), decision.reason
    assert reason in decision.reason


async def test_either_side_may_keep_writing_once_a_conversation_exists(
    policy: PolicyService,
) -> None:
    assert not (await policy.can_start("s1", "a1")).allowed
    assert (await policy.can_converse("s1", "a1")).allowed  # the admin's student can reply
    assert (await policy.can_converse("s1", "t2")).allowed
    assert not (await policy.can_converse("s1", "s3")).allowed


async def test_unknown_people_are_named(policy: PolicyService) -> None:
    with pytest.raises(UnknownUser) as excinfo:
        await policy.can_start("s1", "nobody")
    assert excinfo.value.user_id == "nobody"
    with pytest.raises(UnknownUser):
        await policy.contacts("nobody")


async def test_contacts_of_a_student(policy: PolicyService) -> None:
    found = await policy.contacts("s1")
    assert [(c.user_id, c.reason) for c in found] == [
        ("t1", "Tutor · Algebra 101"),
        ("t2", "Tutor · Algebra 101"),
        ("s2", "Student · Algebra 101 · Group A"),
    ]


async def test_contacts_search_is_accent_and_case_insensitive_prefix_first(
    policy: PolicyService,
) -> None:
    assert [c.user_id for c in await policy.contacts("s1", "zoe")] == ["s2"]
    assert [c.user_id for c in await policy.contacts("s1", "ALV")] == ["s2"]
    assert [c.user_id for c in await policy.contacts("s1", "zo al")] == ["s2"]
    assert [c.user_id for c in await policy.contacts("s1", "z")] == ["s2"]
    assert await policy.contacts("s1", "q") == []
    # "b": Bea (the name starts with b) first, then names with another word starting with b,
    # alphabetically: Sasha Other-Batch, Theo Biology.
    assert [c.user_id for c in await policy.contacts("a1", "b")] == ["t2", "s3", "t3"]
    assert [c.rank for c in await policy.contacts("a1", "b")] == [0, 1, 1]


async def test_contacts_of_a_tutor_and_an_admin(policy: PolicyService) -> None:
    tutor = {c.user_id: c.reason for c in await policy.contacts("t1", limit=100)}
    assert tutor == {
        "s1": "Student · Algebra 101 · Group A",
        "s2": "Student · Algebra 101 · Group A",
        "t2": "Tutor · Uni One",
        "t3": "Tutor · Uni One",
        "d1": "Tutor · Uni One",
    }
    admin = await policy.contacts("a1", limit=100)
    names = [c.display_name for c in admin]
    assert names == sorted(names, key=lambda n: n.casefold())
    assert {c.user_id for c in admin} == {
        "s1",
        "s2",
        "s3",
        "s_old",
        "s_future",
        "t1",
        "t2",
        "t3",
        "d1",
    }
    assert [c.user_id for c in await policy.contacts("a1", limit=2)] == ["t1", "t2"]
    assert await policy.contacts("s_off") == []


@pytest.mark.parametrize("searcher", ["s1", "t1", "a1", "d1"])
async def test_a_contacts_search_is_three_units_of_work_whatever_the_memberships(
    db: Database, policy: PolicyService, searcher: str
) -> None:
    # (d1 is a tutor at one institution and a student at another.) Each unit is a hand-off to
    # a database thread, and on PostgreSQL a round trip: the lookups of all memberships go
    # together, whatever their number.
    before = db.stats.reads
    assert await policy.contacts(searcher, limit=100)
    assert db.stats.reads - before == 3


@pytest.mark.parametrize(
    ("a", "b", "removal"),
    [
        ("s1", "s2", AssignmentDelete("student", "alg-a", "s2")),  # batch mates no more
        ("s1", "t1", AssignmentDelete("tutor", "alg-a", "t1")),  # no longer teaching the course
        ("a1", "s1", MembershipDelete("u1", "s1")),  # left the institution
        ("t1", "s1", UserPut("s1", "Sam Sutter", active=False)),  # deactivated
    ],
)
async def test_no_answer_outlives_the_roster_change_that_ends_it(
    db: Database, policy: PolicyService, a: str, b: str, removal: RosterChange
) -> None:
    assert (await policy.can_start(a, b)).allowed
    assert any(c.user_id == b for c in await policy.contacts(a, limit=100))
    await RosterService(RosterRepository(db)).apply([removal])
    # the very next answers, with nothing in between
    assert not (await policy.can_start(a, b)).allowed
    assert not (await policy.can_converse(a, b)).allowed
    assert all(c.user_id != b for c in await policy.contacts(a, limit=100))


async def test_a_permission_carries_its_institutions_content_rule_from_the_same_read(
    db: Database, policy: PolicyService
) -> None:
    # A message is checked against the rule of the institution the pair talks through; the
    # policy's single read brings its settings, so the check reads nothing of its own.
    roster = RosterRepository(db)
    await RosterService(roster).apply(
        [InstitutionPut("u1", "Uni One", "DE", "Europe/Berlin", contact_info="block")]
    )
    before = db.stats.reads
    through_one = await policy.can_converse("t1", "s1")
    through_two = await policy.can_converse("x1", "d1")  # Uni Two keeps the defaults
    refused = await policy.can_converse("s1", "t3")
    assert db.stats.reads - before == 3
    assert through_one.rule == RuleSettings("block", "DE")
    assert through_two.rule == RuleSettings(None, None)
    assert refused.rule is None  # nothing to check: nothing may be sent
    # The admin's student replies: the permission is the admin's, through the admin's school.
    backward = await policy.can_converse("s1", "a1")
    assert backward.allowed and backward.rule == RuleSettings("block", "DE")
