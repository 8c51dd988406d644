"""A small sample roster for policy and API tests, built through the real service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.domain.roster import (
    AssignmentPut,
    BatchPut,
    CoursePut,
    InstitutionPut,
    MembershipPut,
    RosterChange,
    UserPut,
)

NOW = datetime.now(UTC)
YESTERDAY = NOW - timedelta(days=1)
TOMORROW = NOW + timedelta(days=1)

PEOPLE = {
    # id: (name, active)
    "s1": ("Sam Sutter", True),
    "s2": ("Zoë Ålvarez", True),
    "s3": ("Sasha Other-Batch", True),
    "s_old": ("Olga Ended", True),
    "s_future": ("Fred Future", True),
    "s_off": ("Otto Offline", False),
    "t1": ("Alex Kim", True),
    "t2": ("Bea Batchless", True),
    "t3": ("Theo Biology", True),
    "a1": ("Ada Admin", True),
    "a1b": ("Abe Admin", True),
    "x1": ("Xena Elsewhere", True),
    "t4": ("Tom Elsewhere", True),
    "a2": ("Ann Other-Admin", True),
    "d1": ("Dana Dual", True),
}


def sample_roster() -> list[RosterChange]:
    """Two institutions; roles, batches and dates chosen to exercise every policy rule."""
    changes: list[RosterChange] = [
        InstitutionPut("u1", "Uni One", "DE", "Europe/Berlin"),
        InstitutionPut("u2", "Uni Two"),
        *(UserPut(uid, name, active=active) for uid, (name, active) in PEOPLE.items()),
        CoursePut("alg", "u1", "Algebra 101"),
        CoursePut("bio", "u1", "Biology"),
        CoursePut("chem", "u2", "Chemistry"),
        BatchPut("alg-a", "alg", "Group A"),
        BatchPut("alg-b", "alg", "Group B"),
        BatchPut("bio-a", "bio", "Group A"),
        BatchPut("chem-a", "chem", "Morning"),
    ]
    roles = {
        "u1": {
            "s1": "student",
            "s2": "student",
            "s3": "student",
            "s_old": "student",
            "s_future": "student",
            "s_off": "student",
            "t1": "tutor",
            "t2": "tutor",
            "t3": "tutor",
            "a1": "admin",
            "a1b": "admin",
            "d1": "tutor",
        },
        "u2": {"x1": "student", "t4": "tutor", "a2": "admin", "d1": "student"},
    }
    for institution, members in roles.items():
        changes += [MembershipPut(institution, uid, role) for uid, role in members.items()]
    changes += [
        AssignmentPut("student", "alg-a", "s1"),
        AssignmentPut("student", "alg-a", "s2"),
        AssignmentPut("student", "alg-b", "s3"),
        AssignmentPut("student", "alg-a", "s_old", NOW - timedelta(days=90), YESTERDAY),
        AssignmentPut("student", "alg-a", "s_future", TOMORROW, None),
        AssignmentPut("student", "alg-a", "s_off"),
        AssignmentPut("tutor", "alg-a", "t1"),
        AssignmentPut("tutor", "alg-b", "t2"),
        AssignmentPut("tutor", "bio-a", "t3"),
        AssignmentPut("student", "chem-a", "x1"),
        AssignmentPut("student", "chem-a", "d1"),
        AssignmentPut("tutor", "chem-a", "t4"),
    ]
    return changes
