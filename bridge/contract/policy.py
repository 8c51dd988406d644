"""What the policy routes take and answer: may A message B, and whom may A start with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from bridge.contract.roster import AvailabilityWords
from bridge.contract.shapes import Rule
from bridge.domain.policy import MAX_CONTACTS, Role


@dataclass(frozen=True)
class CanMessage:
    """The policy's answer"""

    allowed: bool
    code: Annotated[str, Rule(example="your_tutor")]
    reason: Annotated[str, Rule(example="Alex Kim teaches your course Algebra 101")]
    institution_id: str | None


@dataclass(frozen=True)
class ContactsQuery:
    """Parameters of a contact search."""

    q: Annotated[str, Rule("Part of a name", max_length=200)] = ""
    limit: Annotated[int, Rule(minimum=1, maximum=MAX_CONTACTS)] = 20


@dataclass(frozen=True)
class Contact:
    """Someone the person may start a conversation with"""

    user_id: str
    display_name: str
    avatar_url: str | None
    initials: str
    avatar_color: str
    role: Role
    reason: Annotated[str, Rule(example="Tutor · Algebra 101")]
    matrix_id: str
    availability: Annotated[AvailabilityWords | None, Rule("a tutor's stated hours")]


@dataclass(frozen=True)
class Contacts:
    """People the person may start a conversation with, best matches first"""

    contacts: Annotated[list[Contact], Rule(max_items=MAX_CONTACTS)]
