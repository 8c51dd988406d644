"""The pure policy rules on hand-made facts (the stored-roster table test covers storage)."""

from __future__ import annotations

from bridge.domain.policy import PairFacts, Person, SharedInstitution, may_converse, may_start

ADA = Person("a", "Ada", True)
BO = Person("b", "Bo", True)


def facts(*institutions: SharedInstitution) -> PairFacts:
    return PairFacts(ADA, BO, institutions)


def test_the_most_telling_refusal_wins_across_institutions() -> None:
    decision = may_start(
        facts(
            SharedInstitution("i1", "One", "tutor", "admin"),
            SharedInstitution("i2", "Two", "student", "student"),
        )
    )
    assert decision.code == "not_same_batch"


def test_any_institution_that_allows_is_enough() -> None:
    decision = may_start(
        facts(
            SharedInstitution("i1", "One", "student", "admin"),
            SharedInstitution("i2", "Two", "tutor", "tutor"),
        )
    )
    assert (decision.allowed, decision.institution_id) == (True, "i2")


def test_flipped_facts_and_conversations() -> None:
    shared = SharedInstitution("i", "U", "admin", "student")
    assert may_start(facts(shared)).allowed
    assert not may_start(facts(shared).flipped()).allowed
    assert may_converse(facts(shared).flipped()).allowed
    tutor = SharedInstitution("i", "U", "student", "tutor", a_learns_from_b="Algebra")
    flipped = facts(tutor).flipped()
    assert flipped.institutions[0].b_learns_from_a == "Algebra"
    assert not may_start(flipped).allowed  # the tutor doesn't teach the student's batch
    assert may_converse(flipped).allowed  # but the student may write, so both may


def test_roster_changes_name_whose_conversations_to_recheck() -> None:
    from bridge.domain.roster import (
        AssignmentDelete,
        BatchPut,
        InstitutionPut,
        MembershipPut,
        UserPut,
        policy_reach,
    )

    assert policy_reach([InstitutionPut("i", "Uni")]) == (set(), False)
    assert policy_reach(
        [
            UserPut("u1", "A"),
            MembershipPut("i", "u2", "tutor"),
            AssignmentDelete("student", "b", "u3"),
        ]
    ) == ({"u1", "u2", "u3"}, False)
    assert policy_reach([BatchPut("b", "c", "B")]) == (set(), True)
