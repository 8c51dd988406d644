"""Who may start a conversation with whom: the course-relationship policy, as pure rules.

The rules read `PairFacts`, a small view of the roster about two people that storage answers
with a few indexed lookups; nothing here does I/O. Every decision carries a machine code and a
sentence the person reading it understands.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from bridge.domain.contact_info import RuleSettings

Role = Literal["student", "tutor", "admin"]
ROLES: tuple[Role, ...] = ("student", "tutor", "admin")
# The most people one search for contacts answers with.
MAX_CONTACTS = 100


@dataclass(frozen=True)
class Person:
    """Who someone is, as far as the policy cares."""

    id: str
    display_name: str
    active: bool


@dataclass(frozen=True)
class SharedInstitution:
    """An institution both people belong to, with their roles and course relationships there.

    The relationship fields name a course or batch (for the reason) or are None. "a"/"b" are
    the two people of the `PairFacts`. Only current enrollments and teaching count.
    """

    id: str
    name: str
    role_a: Role
    role_b: Role
    same_batch: str | None = None  # a batch both are enrolled in
    a_learns_from_b: str | None = None  # a course with a enrolled and b teaching (any batches)
    b_learns_from_a: str | None = None
    a_teaches_b: str | None = None  # a batch taught by a with b enrolled
    b_teaches_a: str | None = None
    # The institution's contact-info settings: a message the policy lets through is checked
    # against them without another read.
    rule: RuleSettings = RuleSettings()


@dataclass(frozen=True)
class PairFacts:
    """What the policy needs to know about two people."""

    a: Person
    b: Person
    institutions: tuple[SharedInstitution, ...]

    def flipped(self) -> PairFacts:
        """The same facts seen from b's side."""
        return PairFacts(
            a=self.b,
            b=self.a,
            institutions=tuple(
                SharedInstitution(
                    id=i.id,
                    name=i.name,
                    role_a=i.role_b,
                    role_b=i.role_a,
                    same_batch=i.same_batch,
                    a_learns_from_b=i.b_learns_from_a,
                    b_learns_from_a=i.a_learns_from_b,
                    a_teaches_b=i.b_teaches_a,
                    b_teaches_a=i.a_teaches_b,
                    rule=i.rule,
                )
                for i in self.institutions
            ),
        )


@dataclass(frozen=True)
class Decision:
    """Whether a may start a conversation with b, why, and through which institution."""

    allowed: bool
    code: str
    reason: str
    institution_id: str | None = None
    rule: RuleSettings | None = None  # that institution's contact-info settings, when allowed


# Refusals, most specific first: when several institutions refuse, the most telling one wins.
_REFUSAL_RANK = {
    "not_same_batch": 0,
    "tutor_not_teaching_your_courses": 0,
    "student_not_in_your_batches": 0,
    "recipient_is_admin": 1,
}


def may_start(facts: PairFacts) -> Decision:
    """May `facts.a` start a new conversation with `facts.b`? (PRODUCT §2.)"""
    a, b = facts.a, facts.b
    if a.id == b.id:
        return Decision(False, "self", "You can't start a conversation with yourself")
    if not a.active:
        return Decision(False, "sender_inactive", "Your account is deactivated")
    if not b.active:
        return Decision(False, "recipient_inactive", f"{b.display_name}'s account is deactivated")
    if not facts.institutions:
        return Decision(
            False,
            "no_relationship",
            f"You have no course relationship with {b.display_name}",
        )
    refusals = []
    for shared in facts.institutions:
        decision = _within(shared, b)
        if decision.allowed:
            return replace(decision, rule=shared.rule)
        refusals.append(decision)
    return min(refusals, key=lambda d: _REFUSAL_RANK.get(d.code, 9))


def _within(i: SharedInstitution, b: Person) -> Decision:
    name = b.display_name
    if i.role_b == "admin":
        return Decision(
            False,
            "recipient_is_admin",
            f"{name} is an admin of {i.name}; admins can't be messaged directly",
            i.id,
        )
    if i.role_a == "admin":
        return Decision(True, f"admin_to_{i.role_b}", f"{name} is a {i.role_b} at {i.name}", i.id)
    if i.role_a == "tutor" and i.role_b == "tutor":
        return Decision(True, "fellow_tutor", f"{name} is a tutor at {i.name}", i.id)
    if i.role_a == "tutor":  # b is a student
        if i.a_teaches_b:
            return Decision(True, "your_student", f"{name} is in your batch {i.a_teaches_b}", i.id)
        return Decision(
            False,
            "student_not_in_your_batches",
            f"{name} isn't enrolled in any batch you teach",
            i.id,
        )
    if i.role_b == "tutor":  # a is a student
        if i.a_learns_from_b:
            return Decision(
                True, "your_tutor", f"{name} teaches your course {i.a_learns_from_b}", i.id
            )
        return Decision(
            False,
            "tutor_not_teaching_your_courses",
            f"{name} doesn't teach any of your courses",
            i.id,
        )
    if i.same_batch:
        return Decision(True, "batch_mate", f"{name} is in your batch {i.same_batch}", i.id)
    return Decision(
        False,
        "not_same_batch",
        f"Students can only message students in their own batch; {name} isn't in yours",
        i.id,
    )


def may_converse(facts: PairFacts) -> Decision:
    """May the two keep writing in an existing conversation? Either side may still start it."""
    forward = may_start(facts)
    if forward.allowed:
        return forward
    backward = may_start(facts.flipped())
    return backward if backward.allowed else forward
