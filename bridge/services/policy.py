"""The messaging policy applied to the stored roster: can A message B, and whom can A find."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge.contract.roster import AvailabilityWords
from bridge.domain.names import MAX_NAME_WORDS, name_words
from bridge.domain.policy import (
    MAX_CONTACTS,
    Decision,
    PairFacts,
    Role,
    may_converse,
    may_start,
)
from bridge.services.availability import stated_hours
from bridge.store.roster import MembersNamed, RelatedTo, RosterRepository

# Where a contact comes from → (their role, how the reason starts); the order is the preference
# when one person is related in several ways.
_SOURCES: dict[str, tuple[Role, str]] = {
    "your_tutor": ("tutor", "Tutor"),
    "your_student": ("student", "Student"),
    "batch_mate": ("student", "Student"),
    "fellow_tutor": ("tutor", "Tutor"),
    "admin_to_tutor": ("tutor", "Tutor"),
    "admin_to_student": ("student", "Student"),
}
_PREFERENCE = {source: n for n, source in enumerate(_SOURCES)}
# What a membership with each role looks for: members found by name (their role, the source),
# and the people related to the searcher there (the sources).
_BY_NAME: dict[Role, tuple[tuple[Role, str], ...]] = {
    "admin": (("student", "admin_to_student"), ("tutor", "admin_to_tutor")),
    "tutor": (("tutor", "fellow_tutor"),),
    "student": (),
}
_BY_RELATION: dict[Role, tuple[str, ...]] = {
    "admin": (),
    "tutor": ("your_student",),
    "student": ("your_tutor", "batch_mate"),
}


class UnknownUser(LookupError):
    """A user id the roster doesn't know."""

    def __init__(self, user_id: str) -> None:
        super().__init__(user_id)
        self.user_id = user_id


@dataclass(frozen=True)
class Contact:
    """Someone the searcher may start a conversation with."""

    user_id: str
    display_name: str
    avatar_url: str | None
    role: Role
    reason: str
    rank: int
    name_key: str
    availability: AvailabilityWords | None = None  # a tutor's stated hours


class PolicyService:
    """Answers policy questions from storage, using the pure rules of `bridge.domain.policy`."""

    def __init__(self, roster: RosterRepository) -> None:
        self._roster = roster

    async def can_start(self, a: str, b: str) -> Decision:
        """May a start a conversation with b? Raises UnknownUser."""
        return may_start(await self._facts(a, b))

    async def can_converse(self, a: str, b: str, facts: PairFacts | None = None) -> Decision:
        """May a and b (still) write to each other in an existing conversation? `facts` are
        the pair's when read already (None: read here). Raises UnknownUser."""
        return may_converse(facts if facts is not None else await self._facts(a, b))

    async def _facts(self, a: str, b: str) -> PairFacts:
        facts = await self._roster.pair_facts(a, b, datetime.now(UTC))
        if facts is None:
            missing = a if not await self._roster.existing("user", [a]) else b
            raise UnknownUser(missing)
        return facts

    async def contacts(self, searcher: str, query: str = "", limit: int = 20) -> list[Contact]:
        """The people `searcher` may start a conversation with whose name matches `query`.

        A name matches when each word of the query starts one of its words (case and accents
        ignored). Names that start with the query come first, then the others; alphabetical
        within each group.
        """
        found = await self._roster.user_with_institutions(searcher)
        if found is None:
            raise UnknownUser(searcher)
        me, institutions = found
        if not me.active:
            return []
        limit = max(1, min(limit, MAX_CONTACTS))
        words = tuple(name_words(query))
        now = datetime.now(UTC)
        # Every lookup the searcher's memberships call for, answered in one unit of work.
        named = [
            (MembersNamed(institution_id, target, words, limit, searcher), source, name)
            for institution_id, name, role in institutions
            for target, source in _BY_NAME[role]
        ]
        related = [
            RelatedTo(source, searcher, institution_id, now)
            for institution_id, _name, role in institutions
            for source in _BY_RELATION[role]
        ]
        by_name, by_relation = await self._roster.contact_candidates(
            [lookup for lookup, _, _ in named], related
        )

        best: dict[str, tuple[int, int, str, str, str]] = {}  # id → rank, pref, key, source, ctx

        def offer(user_id: str, key: str, rank: int, source: str, context: str) -> None:
            candidate = (rank, _PREFERENCE[source], key, source, context)
            if user_id not in best or candidate < best[user_id]:
                best[user_id] = candidate

        for (_lookup, source, context), rows in zip(named, by_name, strict=True):
            for user_id, key, rank in rows:
                offer(user_id, key, rank, source, context)
        for lookup, relation_rows in zip(related, by_relation, strict=True):
            for user_id, key, context in relation_rows:
                person_rank = _rank(key, words)
                if person_rank is not None:
                    offer(user_id, key, person_rank, lookup.source, context)

        chosen = sorted(best.items(), key=lambda item: (item[1][0], item[1][2], item[0]))[:limit]
        tutors = [u for u, (_r, _p, _k, source, _c) in chosen if _SOURCES[source][0] == "tutor"]
        people, zones = await self._roster.contact_details([u for u, _ in chosen], tutors)
        contacts = []
        for user_id, (rank, _pref, key, source, context) in chosen:
            person = people[user_id]
            role, label = _SOURCES[source]
            contacts.append(
                Contact(
                    user_id=user_id,
                    display_name=person.display_name,
                    avatar_url=person.avatar_url,
                    role=role,
                    reason=f"{label} · {context}",
                    rank=rank,
                    name_key=key,
                    availability=stated_hours(person.availability, zones.get(user_id))
                    if role == "tutor"
                    else None,
                )
            )
        return contacts


def _rank(key: str, words: Sequence[str]) -> int | None:
    """0 when the name starts with the query, 1 when every query word starts a name word."""
    if not words:
        return 0
    query = " ".join(words)
    if key.startswith(query):
        return 0
    name = key.split()[:MAX_NAME_WORDS]  # as many words as the search index holds
    if all(any(w.startswith(q) for w in name) for q in words):
        return 1
    return None
