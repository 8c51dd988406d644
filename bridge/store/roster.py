"""Repository of the roster: institutions, people, memberships, courses, batches, assignments.

Writes come as lists of roster changes applied in one transaction with batched statements (a
nightly sync is hundreds of thousands of rows); the people-search words, the profile sync queue
and the roster version are maintained in the same transaction. Policy questions are answered by
indexed lookups about the two people concerned, never by loading the roster.

The version is how a running bridge learns of writes made by another process (an import): each
write bumps it, and a repository remembers the versions it made itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    DateTime,
    Table,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite

from bridge.domain.contact_info import RuleSettings
from bridge.domain.names import MAX_NAME_WORDS, name_key, prefix_end
from bridge.domain.policy import PairFacts, Person, Role, SharedInstitution
from bridge.domain.roster import (
    AssignmentDelete,
    AssignmentPut,
    BatchDelete,
    BatchPut,
    CourseDelete,
    CoursePut,
    InstitutionDelete,
    InstitutionPut,
    MembershipDelete,
    MembershipPut,
    RosterChange,
    UserPut,
    by_type,
)
from bridge.store import prepared
from bridge.store.bulk import insert_rows
from bridge.store.database import Database, one_of
from bridge.store.schema import (
    batches,
    contact_words,
    courses,
    enrollments,
    institutions,
    matrix_accounts,
    memberships,
    profile_sync_queue,
    roster_version,
    teaching,
    users,
)

_CHUNK = 2000  # rows per statement: well under both databases' bound-parameter limits
_MANY_CHUNK = 20_000  # rows per executemany of the bulk writes
# Rows a table takes before its first statistics. PostgreSQL plans a table it has none for as
# near-empty (a thousand courses went unanalysed, and the batch-mate search started from every
# course), so even a few hundred count there; SQLite's planner does well without them, and
# refreshing them more often slowed its bulk loads.
_ANALYZE_AFTER = {"postgresql": 500, "sqlite": 5000}
_ROSTER_TABLES = (
    "institutions",
    "users",
    "memberships",
    "courses",
    "batches",
    "enrollments",
    "teaching",
    "contact_words",
)
_NAME_KEY_MAX = 200
_WORD_COLUMNS = ("institution_id", "role", "is_first", "word", "name_key", "user_id")
_USER_COLUMNS = (
    "id",
    "display_name",
    "name_key",
    "active",
    "updated_at",
    "avatar_url",
    "availability",
)
_MEMBER_COLUMNS = ("institution_id", "user_id", "role")
_ASSIGNMENT_COLUMNS = ("batch_id", "user_id", "begins_at", "ends_at")
_OWN_VERSIONS_KEPT = 10_000  # a repository nobody watches must not grow without bound
T = TypeVar("T")


@dataclass(frozen=True)
class UserRecord:
    """A person with their memberships."""

    id: str
    display_name: str
    avatar_url: str | None
    active: bool
    availability: str | None
    memberships: tuple[tuple[str, Role], ...]  # (institution id, role)


@dataclass(frozen=True)
class ApplyResult:
    """What applying a list of changes did."""

    counts: dict[str, int]
    profile_changes: list[str]  # people queued for Matrix profile work (see _queue_profile_sync)


@dataclass(frozen=True)
class MembersNamed:
    """A contacts lookup: the active members of an institution with a role whose name matches
    `words`, at most `limit`, without `exclude` (see `RosterRepository.contact_candidates`)."""

    institution_id: str
    role: Role
    words: tuple[str, ...]
    limit: int
    exclude: str


@dataclass(frozen=True)
class RelatedTo:
    """A contacts lookup: the active people related to `searcher` through `source` (your_tutor,
    batch_mate, your_student) at an institution, by what is current at `now`."""

    source: str
    searcher: str
    institution_id: str
    now: datetime


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_CURRENT = "({x}.begins_at IS NULL OR {x}.begins_at <= :now) AND " + (
    "({x}.ends_at IS NULL OR {x}.ends_at > :now)"
)


def _current(alias: str) -> str:
    return _CURRENT.format(x=alias)


def _learns(student: str, tutor: str) -> str:
    """A course with `student` enrolled in one batch and `tutor` teaching any of its batches."""
    return f"""(
    SELECT c.title FROM enrollments e JOIN batches be ON be.id = e.batch_id
      JOIN batches bt ON bt.course_id = be.course_id JOIN teaching t ON t.batch_id = bt.id
      JOIN courses c ON c.id = be.course_id
    WHERE e.user_id = {student} AND t.user_id = {tutor} AND c.institution_id = ma.institution_id
      AND {_current("e")} AND {_current("t")}
    ORDER BY 1 LIMIT 1)"""


def _teaches(tutor: str, student: str) -> str:
    """A batch taught by `tutor` with `student` enrolled."""
    return f"""(
    SELECT c.title || ' · ' || bt.title FROM teaching t
      JOIN enrollments e ON e.batch_id = t.batch_id
      JOIN batches bt ON bt.id = t.batch_id JOIN courses c ON c.id = bt.course_id
    WHERE t.user_id = {tutor} AND e.user_id = {student} AND c.institution_id = ma.institution_id
      AND {_current("t")} AND {_current("e")}
    ORDER BY 1 LIMIT 1)"""


_PAIR_FACTS = text(
    f"""
SELECT ua.display_name AS a_name, ua.active AS a_active,
  ub.display_name AS b_name, ub.active AS b_active,
  ma.institution_id AS id, i.name AS name, i.contact_info_rule AS rule_mode,
  i.region AS rule_region, ma.role AS role_a, mb.role AS role_b,
  CASE WHEN ma.role = 'student' AND mb.role = 'student' THEN (
    SELECT c.title || ' · ' || bt.title FROM enrollments ea
      JOIN enrollments eb ON eb.batch_id = ea.batch_id
      JOIN batches bt ON bt.id = ea.batch_id JOIN courses c ON c.id = bt.course_id
    WHERE ea.user_id = :a AND eb.user_id = :b AND c.institution_id = ma.institution_id
      AND {_current("ea")} AND {_current("eb")}
    ORDER BY 1 LIMIT 1) END AS same_batch,
  CASE WHEN ma.role = 'student' AND mb.role = 'tutor' THEN {_learns(":a", ":b")}
    END AS a_learns_from_b,
  CASE WHEN ma.role = 'tutor' AND mb.role = 'student' THEN {_learns(":b", ":a")}
    END AS b_learns_from_a,
  CASE WHEN ma.role = 'tutor' AND mb.role = 'student' THEN {_teaches(":a", ":b")}
    END AS a_teaches_b,
  CASE WHEN ma.role = 'student' AND mb.role = 'tutor' THEN {_teaches(":b", ":a")}
    END AS b_teaches_a
FROM users ua
  JOIN users ub ON ub.id = :b
  LEFT JOIN memberships ma ON ma.user_id = ua.id
  LEFT JOIN memberships mb ON mb.institution_id = ma.institution_id AND mb.user_id = ub.id
  LEFT JOIN institutions i ON i.id = ma.institution_id
WHERE ua.id = :a
ORDER BY ma.institution_id
"""
).bindparams(bindparam("now", type_=DateTime(timezone=True)))

# The people a student or tutor is related to through courses (small sets, fetched whole). The
# searcher's own batches are materialised first, so the plan starts from them whatever the
# table statistics say.
_RELATED = {
    "your_tutor": f"""
WITH mine AS MATERIALIZED (
  SELECT DISTINCT b.course_id FROM enrollments e JOIN batches b ON b.id = e.batch_id
  WHERE e.user_id = :a AND {_current("e")})
SELECT t.user_id AS user_id, MIN(c.title) AS context, u.name_key AS name_key FROM mine
  JOIN courses c ON c.id = mine.course_id JOIN batches bt ON bt.course_id = mine.course_id
  JOIN teaching t ON t.batch_id = bt.id
  JOIN memberships m ON m.user_id = t.user_id AND m.institution_id = c.institution_id
  JOIN users u ON u.id = t.user_id
WHERE c.institution_id = :i AND m.role = 'tutor' AND u.active AND {_current("t")}
GROUP BY t.user_id, u.name_key""",
    "batch_mate": f"""
WITH mine AS MATERIALIZED (
  SELECT e.batch_id FROM enrollments e WHERE e.user_id = :a AND {_current("e")})
SELECT o.user_id AS user_id, MIN(c.title || ' · ' || bt.title) AS context,
  u.name_key AS name_key FROM mine
  JOIN enrollments o ON o.batch_id = mine.batch_id
  JOIN batches bt ON bt.id = mine.batch_id JOIN courses c ON c.id = bt.course_id
  JOIN memberships m ON m.user_id = o.user_id AND m.institution_id = c.institution_id
  JOIN users u ON u.id = o.user_id
WHERE c.institution_id = :i AND m.role = 'student' AND o.user_id <> :a AND u.active
  AND {_current("o")}
GROUP BY o.user_id, u.name_key""",
    "your_student": f"""
WITH mine AS MATERIALIZED (
  SELECT t.batch_id FROM teaching t WHERE t.user_id = :a AND {_current("t")})
SELECT e.user_id AS user_id, MIN(c.title || ' · ' || bt.title) AS context,
  u.name_key AS name_key FROM mine
  JOIN enrollments e ON e.batch_id = mine.batch_id
  JOIN batches bt ON bt.id = mine.batch_id JOIN courses c ON c.id = bt.course_id
  JOIN memberships m ON m.user_id = e.user_id AND m.institution_id = c.institution_id
  JOIN users u ON u.id = e.user_id
WHERE c.institution_id = :i AND m.role = 'student' AND u.active AND {_current("e")}
GROUP BY e.user_id, u.name_key""",
}
_RELATED_QUERIES = {
    source: text(sql).bindparams(bindparam("now", type_=DateTime(timezone=True)))
    for source, sql in _RELATED.items()
}


# Built once: the policy and every message ask them.
_USER = select(users).where(users.c.id == bindparam("id"))
_MEMBERSHIPS = (
    select(memberships.c.institution_id, memberships.c.role)
    .where(memberships.c.user_id == bindparam("user_id"))
    .order_by(memberships.c.institution_id)
)
_STATES_HOURS = select(users.c.id).where(
    users.c.id == bindparam("id"), users.c.availability.is_not(None)
)


def read_states_hours(conn: Connection, user_id: str) -> bool:
    """(Within a unit of work.) Whether a person states availability (hours)."""
    return prepared.scalar(conn, _STATES_HOURS, {"id": user_id}) is not None


def read_pair_facts(conn: Connection, a: str, b: str, now: datetime) -> PairFacts | None:
    """(Within a unit of work.) What the policy needs about a and b (None when either is
    unknown); one query."""
    rows = prepared.all_rows(conn, _PAIR_FACTS, {"a": a, "b": b, "now": now})
    if not rows:
        return None
    first = rows[0]
    shared = tuple(
        SharedInstitution(
            id=r.id,
            name=r.name,
            role_a=r.role_a,
            role_b=r.role_b,
            same_batch=r.same_batch,
            a_learns_from_b=r.a_learns_from_b,
            b_learns_from_a=r.b_learns_from_a,
            a_teaches_b=r.a_teaches_b,
            b_teaches_a=r.b_teaches_a,
            rule=RuleSettings(r.rule_mode, r.rule_region),
        )
        for r in rows
        if r.role_b is not None
    )
    return PairFacts(
        Person(a, first.a_name, bool(first.a_active)),
        Person(b, first.b_name, bool(first.b_active)),
        shared,
    )


def _user_record(row: Any, member_of: tuple[tuple[str, Role], ...]) -> UserRecord:
    return UserRecord(
        id=row.id,
        display_name=row.display_name,
        avatar_url=row.avatar_url,
        active=row.active,
        availability=row.availability,
        memberships=member_of,
    )


def _memberships_with_names(conn: Connection, user_id: str) -> list[tuple[str, str, Role]]:
    rows = conn.execute(
        select(memberships.c.institution_id, institutions.c.name, memberships.c.role)
        .join(institutions, institutions.c.id == memberships.c.institution_id)
        .where(memberships.c.user_id == user_id)
        .order_by(memberships.c.institution_id)
    )
    return [(r.institution_id, r.name, r.role) for r in rows]


def _home_timezones(conn: Connection, user_ids: Sequence[str]) -> dict[str, str]:
    m, i = memberships.c, institutions.c
    query = (
        select(m.user_id, i.timezone)
        .join(institutions, i.id == m.institution_id)
        .where(m.user_id.in_(user_ids), i.timezone.is_not(None))
        .order_by(m.user_id, i.id)
    )
    found: dict[str, str] = {}
    for row in conn.execute(query):
        found.setdefault(row.user_id, row.timezone)
    return found


def _related_to(conn: Connection, lookup: RelatedTo) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        _RELATED_QUERIES[lookup.source],
        {"a": lookup.searcher, "i": lookup.institution_id, "now": lookup.now},
    )
    return [(r.user_id, r.name_key, r.context) for r in rows]


def _members_named(conn: Connection, lookup: MembersNamed) -> list[tuple[str, str, int]]:
    cw = contact_words.c
    words, limit = lookup.words, lookup.limit
    base = (
        select(cw.user_id, cw.name_key)
        .join(users, users.c.id == cw.user_id)
        .where(
            cw.institution_id == lookup.institution_id,
            cw.role == lookup.role,
            users.c.active.is_(True),
            cw.user_id != lookup.exclude,
        )
    )
    if not words:
        rows = conn.execute(
            base.where(cw.is_first.is_(True))
            .order_by(cw.word, cw.name_key, cw.user_id)
            .limit(limit)
        )
        return [(r.user_id, r.name_key, 0) for r in rows]
    query = " ".join(words)
    first = conn.execute(
        base.where(
            cw.is_first.is_(True),
            cw.word >= words[0],
            cw.word < prefix_end(words[0]),
            cw.name_key >= query,
            cw.name_key < prefix_end(query),
        )
        .order_by(cw.word, cw.name_key, cw.user_id)
        .limit(limit)
    )
    found = [(r.user_id, r.name_key, 0) for r in first]
    if len(found) >= limit:
        return found
    anchor = max(words, key=len)
    others = [w for w in words if w is not anchor]
    # Any word may carry the anchor (for "a b", "Ann Bob" matches by its first word); names
    # already found as rank 0 come back here too and are skipped. One word matching the whole
    # query is rank 0 when it is the first; listing both flags keeps each an index range scan.
    positions = [False] if len(words) == 1 else [False, True]
    second = base.where(cw.is_first.in_(positions), cw.word >= anchor, cw.word < prefix_end(anchor))
    for word in others:
        second = second.where((" " + cw.name_key).like(f"% {word}%"))
    rows = conn.execute(
        second.group_by(cw.user_id, cw.name_key)
        .order_by(cw.name_key, cw.user_id)
        .limit(limit + len(found))
    )
    seen = {user_id for user_id, _, _ in found}
    found += [(r.user_id, r.name_key, 1) for r in rows if r.user_id not in seen]
    return found


class RosterRepository:
    """All SQL about the roster tables."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._dialect = postgresql if db.dialect == "postgresql" else sqlite
        # Rows written per table, in all and as of its last statistics refresh.
        self._written: dict[str, int] = defaultdict(int)
        self._written_at_analyze: dict[str, int] = defaultdict(int)
        # Roster versions this repository's own (committed) writes made.
        self._own_versions: set[int] = set()

    # --- reading ---

    async def get_user(self, user_id: str) -> UserRecord | None:
        """A person and their memberships, or None."""

        def work(conn: Connection) -> UserRecord | None:
            row = conn.execute(_USER, {"id": user_id}).first()
            if row is None:
                return None
            member_rows = conn.execute(_MEMBERSHIPS, {"user_id": user_id})
            return _user_record(row, tuple((r.institution_id, r.role) for r in member_rows))

        return await self._db.read(work)

    async def user_with_institutions(
        self, user_id: str
    ) -> tuple[UserRecord, list[tuple[str, str, Role]]] | None:
        """A person with their memberships, and (institution id, institution name, role) of
        each; None for an unknown id. One unit of work: the start of a contacts search."""

        def work(conn: Connection) -> tuple[UserRecord, list[tuple[str, str, Role]]] | None:
            row = conn.execute(_USER, {"id": user_id}).first()
            if row is None:
                return None
            named = _memberships_with_names(conn, user_id)
            return _user_record(row, tuple((i, role) for i, _n, role in named)), named

        return await self._db.read(work)

    async def people(self, user_ids: Iterable[str]) -> dict[str, UserRecord]:
        """Several people at once (without memberships)."""
        ids = list(dict.fromkeys(user_ids))
        return await self._db.read(lambda conn: self._people(conn, ids))

    def _people(self, conn: Connection, ids: Sequence[str]) -> dict[str, UserRecord]:
        found: dict[str, UserRecord] = {}
        for chunk in _chunks(ids):
            rows = conn.execute(select(users).where(one_of(users.c.id, chunk, self._db.dialect)))
            for r in rows:
                found[r.id] = _user_record(r, ())
        return found

    async def existing(self, kind: str, keys: Iterable[str]) -> set[str]:
        """Which of `keys` exist, for kind "institution", "user", "course" or "batch"."""
        table = {
            "institution": institutions,
            "user": users,
            "course": courses,
            "batch": batches,
        }[kind]
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()

        def work(conn: Connection) -> None:
            for chunk in _chunks(wanted, _MANY_CHUNK):
                query = select(table.c.id).where(one_of(table.c.id, chunk, self._db.dialect))
                found.update(conn.execute(query).scalars())

        await self._db.read(work)
        return found

    async def pair_facts(self, a: str, b: str, now: datetime) -> PairFacts | None:
        """What the policy needs about a and b (None when either is unknown); one query."""
        return await self._db.read(lambda conn: read_pair_facts(conn, a, b, now))

    async def memberships_with_names(self, user_id: str) -> list[tuple[str, str, Role]]:
        """(institution id, institution name, role) of each of a person's memberships."""
        return await self._db.read(lambda conn: _memberships_with_names(conn, user_id))

    async def home_timezones(self, user_ids: Iterable[str]) -> dict[str, str]:
        """For each person, the time zone of an institution of theirs that states one (the
        first by id): where their own stated hours are read when they name no zone."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        return await self._db.read(lambda conn: _home_timezones(conn, wanted))

    async def contact_details(
        self, user_ids: Sequence[str], tutor_ids: Sequence[str]
    ) -> tuple[dict[str, UserRecord], dict[str, str]]:
        """The people a contacts search chose, and the home time zones of the tutors among them
        (as `people` and `home_timezones`, in one unit of work)."""
        ids = list(dict.fromkeys(user_ids))
        tutors = sorted(set(tutor_ids))

        def work(conn: Connection) -> tuple[dict[str, UserRecord], dict[str, str]]:
            return self._people(conn, ids), _home_timezones(conn, tutors) if tutors else {}

        return await self._db.read(work)

    async def batches_of(self, user_id: str, now: datetime) -> list[tuple[str, str, str]]:
        """(how: "studies"/"teaches", course title, batch title) of a person's current
        enrollments and teaching assignments."""
        found: list[tuple[str, str, str]] = []

        def work(conn: Connection) -> None:
            for how, table in (("studies", enrollments), ("teaches", teaching)):
                rows = conn.execute(
                    select(courses.c.title, batches.c.title.label("batch"))
                    .select_from(
                        table.join(batches, batches.c.id == table.c.batch_id).join(
                            courses, courses.c.id == batches.c.course_id
                        )
                    )
                    .where(
                        table.c.user_id == user_id,
                        or_(table.c.begins_at.is_(None), table.c.begins_at <= now),
                        or_(table.c.ends_at.is_(None), table.c.ends_at > now),
                    )
                    .order_by(courses.c.title, batches.c.title)
                )
                found.extend((how, r.title, r.batch) for r in rows)

        await self._db.read(work)
        return found

    async def contact_candidates(
        self, named: Sequence[MembersNamed], related: Sequence[RelatedTo]
    ) -> tuple[list[list[tuple[str, str, int]]], list[list[tuple[str, str, str]]]]:
        """The answers to a contacts search's lookups, in one unit of work: for each of `named`
        (user id, name key, rank), for each of `related` (user id, name key, course or batch).

        A rank is 0 for a name starting with the query, 1 for a name where every query word
        starts some word; alphabetical within a rank; rank 1 only as far as rank 0 leaves room
        under the limit. Each name lookup is a range scan of the search index.
        """

        def work(
            conn: Connection,
        ) -> tuple[list[list[tuple[str, str, int]]], list[list[tuple[str, str, str]]]]:
            return (
                [_members_named(conn, lookup) for lookup in named],
                [_related_to(conn, lookup) for lookup in related],
            )

        return await self._db.read(work)

    async def records_of(self, institution_ids: Sequence[str]) -> dict[str, set[tuple[str, ...]]]:
        """The keys of everything stored under these institutions: members (institution, user),
        courses (id,), batches (id,), enrollments and teaching (batch, user)."""
        found: dict[str, set[tuple[str, ...]]] = {
            "member": set(),
            "course": set(),
            "batch": set(),
            "student": set(),
            "tutor": set(),
        }

        def work(conn: Connection) -> None:
            for chunk in _chunks(list(institution_ids)):
                rows = conn.execute(
                    select(memberships.c.institution_id, memberships.c.user_id).where(
                        memberships.c.institution_id.in_(chunk)
                    )
                )
                found["member"].update((r.institution_id, r.user_id) for r in rows)
                rows = conn.execute(
                    select(courses.c.id, batches.c.id.label("batch_id"))
                    .outerjoin(batches, batches.c.course_id == courses.c.id)
                    .where(courses.c.institution_id.in_(chunk))
                )
                for r in rows:
                    found["course"].add((r.id,))
                    if r.batch_id is not None:
                        found["batch"].add((r.batch_id,))
            batch_ids = [b for (b,) in found["batch"]]
            for kind, table in (("student", enrollments), ("tutor", teaching)):
                for chunk in _chunks(batch_ids):
                    rows = conn.execute(
                        select(table.c.batch_id, table.c.user_id).where(table.c.batch_id.in_(chunk))
                    )
                    found[kind].update((r.batch_id, r.user_id) for r in rows)

        await self._db.read(work)
        return found

    # --- writing ---

    async def apply(self, changes: Sequence[RosterChange], now: datetime) -> ApplyResult:
        """Apply roster changes in one transaction (references must already be checked, and
        at most one change concerns each record)."""
        grouped = by_type(changes)
        counts: dict[str, int] = defaultdict(int)

        def work(conn: Connection) -> tuple[list[str], int | None]:
            changed_people = self._put_users(conn, grouped[UserPut], now)
            puts = grouped[InstitutionPut]
            self._upsert(
                conn,
                institutions,
                ("id", "name", "region", "timezone", "contact_info_rule", "updated_at"),
                [
                    (c.id, c.name, c.region, c.timezone, c.contact_info, now)
                    for c in puts
                    if not c.keep_unset
                ],
                ["id"],
            )
            self._upsert(
                conn,
                institutions,
                ("id", "name", "updated_at"),
                [(c.id, c.name, now) for c in puts if c.keep_unset],
                ["id"],
            )
            # These changes' fields are named as their table's columns.
            for table, columns, keys, group in (
                (courses, ("id", "institution_id", "title"), ["id"], grouped[CoursePut]),
                (batches, ("id", "course_id", "title"), ["id"], grouped[BatchPut]),
                (memberships, _MEMBER_COLUMNS, _MEMBER_COLUMNS[:2], grouped[MembershipPut]),
            ):
                self._upsert(conn, table, columns, list(map(attrgetter(*columns), group)), keys)
            for kind, table in (("student", enrollments), ("tutor", teaching)):
                assignments = [c for c in grouped[AssignmentPut] if c.kind == kind]
                rows = list(map(attrgetter(*_ASSIGNMENT_COLUMNS), assignments))
                self._upsert(conn, table, _ASSIGNMENT_COLUMNS, rows, ["batch_id", "user_id"])
                self._delete_pairs(
                    conn,
                    table,
                    ("batch_id", "user_id"),
                    [(c.batch_id, c.user_id) for c in grouped[AssignmentDelete] if c.kind == kind],
                )
            self._delete_pairs(
                conn,
                memberships,
                ("institution_id", "user_id"),
                [(c.institution_id, c.user_id) for c in grouped[MembershipDelete]],
            )
            for change_type, table in (
                (BatchDelete, batches),
                (CourseDelete, courses),
                (InstitutionDelete, institutions),
            ):
                ids = [c.id for c in grouped[change_type]]
                for chunk in _chunks(ids):
                    conn.execute(delete(table).where(table.c.id.in_(chunk)))
            # Which people's search words to rebuild: renamed people and changed memberships.
            reindex = set(changed_people["renamed"])
            reindex.update(c.user_id for c in grouped[MembershipPut])
            reindex.update(c.user_id for c in grouped[MembershipDelete])
            if grouped[InstitutionDelete]:
                self._drop_words_of_institutions(conn, [c.id for c in grouped[InstitutionDelete]])
            self._reindex(conn, sorted(reindex))
            synced = self._queue_profile_sync(
                conn, changed_people["profile"], changed_people["new"], now
            )
            # Last, so the version row is locked only briefly (it serialises roster writers).
            version = self._bump_version(conn) if changes else None
            return synced, version

        synced, version = await self._db.write(work)
        if version is not None:
            # Only once committed: a rolled-back number may be reused by another process.
            self._remember_own(version)
        for change_type, changes_of_type in grouped.items():
            if changes_of_type:
                counts[_COUNT_NAMES[change_type]] += len(changes_of_type)
        # When a table has doubled (a first import, a big sync), refresh its planner statistics,
        # so that queries aren't planned for the nearly empty table of a moment ago.
        first_after = _ANALYZE_AFTER[self._db.dialect]
        due = [
            table
            for table in _ROSTER_TABLES
            if self._written[table] >= 2 * self._written_at_analyze[table] + first_after
        ]
        if due:
            await self.analyze(due)
        return ApplyResult(dict(counts), synced)

    # --- the roster version ---

    async def version(self) -> int:
        """The roster's current version (0 before any write); one single-row read."""
        value = await self._db.scalar(
            select(roster_version.c.version).where(roster_version.c.id == 1)
        )
        return int(value or 0)

    def written_elsewhere(self, after: int, upto: int) -> bool:
        """Whether a version in (`after`, `upto`] was made by another writer than this
        repository (a version that went back, e.g. a restored backup, counts too).

        Versions up to `upto` are then forgotten: the caller has seen them.
        """
        own = sum(1 for v in self._own_versions if after < v <= upto)
        self._own_versions = {v for v in self._own_versions if v > upto}
        return upto < after or own < upto - after

    def _remember_own(self, version: int) -> None:
        self._own_versions.add(version)
        if len(self._own_versions) > _OWN_VERSIONS_KEPT:
            # Forgetting one only costs a needless recheck if someone is watching.
            self._own_versions.discard(min(self._own_versions))

    def _bump_version(self, conn: Connection) -> int:
        """Add one to the roster version in the caller's transaction; returns the new one."""
        statement = self._dialect.insert(roster_version).values(id=1, version=1)
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={"version": roster_version.c.version + 1}
        ).returning(roster_version.c.version)
        return int(conn.execute(statement).scalar_one())

    async def analyze(self, tables: Sequence[str] = _ROSTER_TABLES) -> None:
        """Refresh the query planner's statistics of roster tables."""

        def work(conn: Connection) -> None:
            if self._db.dialect == "sqlite":
                conn.execute(text("PRAGMA analysis_limit=1000"))
            for table in tables:
                assert table in _ROSTER_TABLES
                conn.execute(text(f"ANALYZE {table}"))
                self._written_at_analyze[table] = self._written[table]

        await self._db.write(work)

    def _put_users(
        self, conn: Connection, puts: list[UserPut], now: datetime
    ) -> dict[str, list[str]]:
        renamed: list[str] = []
        profile: list[str] = []
        new: list[str] = []
        for chunk in _chunks(puts):
            before = {
                r.id: r
                for r in conn.execute(
                    select(users.c.id, users.c.display_name, users.c.avatar_url).where(
                        one_of(users.c.id, [p.id for p in chunk], self._db.dialect)
                    )
                )
            }
            for put in chunk:
                old = before.get(put.id)
                if old is None:
                    new.append(put.id)
                if old is None or old.display_name != put.display_name:
                    renamed.append(put.id)
                photo_changed = (
                    not put.keep_unset and old is not None and old.avatar_url != put.avatar_url
                )
                if old is not None and (old.display_name != put.display_name or photo_changed):
                    profile.append(put.id)
        rows = [
            (
                p.id,
                p.display_name,
                name_key(p.display_name),
                p.active,
                now,
                p.avatar_url,
                p.availability,
            )
            for p in puts
        ]
        replaced = [row for row, p in zip(rows, puts, strict=True) if not p.keep_unset]
        self._upsert(conn, users, _USER_COLUMNS, replaced, ["id"])
        # Imports leave the photo and the stated hours (the last two columns) as they are.
        kept = [row[:-2] for row, p in zip(rows, puts, strict=True) if p.keep_unset]
        self._upsert(conn, users, _USER_COLUMNS[:-2], kept, ["id"])
        return {"renamed": renamed, "profile": profile, "new": new}

    def _upsert(
        self,
        conn: Connection,
        table: Table,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        keys: Sequence[str],
    ) -> None:
        """Insert `rows` (tuples in `columns` order, one per key); a row whose `keys` exist
        replaces the stored one's other columns (with no other columns, it is left alone)."""
        self._written[table.name] += len(rows)
        for chunk in _chunks(rows, _MANY_CHUNK):
            insert_rows(conn, table, columns, chunk, keys)

    def _delete_pairs(
        self,
        conn: Connection,
        table: Table,
        columns: tuple[str, str],
        pairs: list[tuple[str, str]],
    ) -> None:
        left, right = (table.c[name] for name in columns)
        for chunk in _chunks(pairs, 500):
            conn.execute(delete(table).where(tuple_(left, right).in_(list(chunk))))

    def _drop_words_of_institutions(self, conn: Connection, institution_ids: list[str]) -> None:
        for chunk in _chunks(institution_ids):
            conn.execute(delete(contact_words).where(contact_words.c.institution_id.in_(chunk)))

    def _reindex(self, conn: Connection, user_ids: list[str]) -> None:
        """Rebuild the search words of these people from their current name and memberships."""
        dialect = self._db.dialect
        for chunk in _chunks(user_ids, _MANY_CHUNK):
            conn.execute(
                delete(contact_words).where(one_of(contact_words.c.user_id, chunk, dialect))
            )
            rows = conn.execute(
                select(
                    memberships.c.institution_id,
                    memberships.c.role,
                    memberships.c.user_id,
                    users.c.name_key,
                )
                .join(users, users.c.id == memberships.c.user_id)
                .where(one_of(memberships.c.user_id, chunk, dialect))
            )
            words = []
            for institution_id, role, user_id, full_key in rows:
                key = full_key[:_NAME_KEY_MAX]
                # A name without letters or digits still needs a row to be listed at all.
                indexed = (key.split() or [""])[:MAX_NAME_WORDS]
                for position, word in enumerate(dict.fromkeys(indexed)):
                    words.append((institution_id, role, position == 0, word[:255], key, user_id))
            self._upsert(conn, contact_words, _WORD_COLUMNS, words, list(_WORD_COLUMNS))

    def _queue_profile_sync(
        self, conn: Connection, changed: list[str], new: list[str], now: datetime
    ) -> list[str]:
        """Queue the Matrix profile work: people with an account whose name or photo changed,
        and people new to the roster, whose account is made before anyone writes to them."""
        queued = list(new)
        for chunk in _chunks(changed):
            queued += [
                r.platform_id
                for r in conn.execute(
                    select(matrix_accounts.c.platform_id).where(
                        one_of(matrix_accounts.c.platform_id, chunk, self._db.dialect)
                    )
                )
            ]
        rows = [(user_id, now) for user_id in queued]
        self._upsert(conn, profile_sync_queue, ("user_id", "queued_at"), rows, ["user_id"])
        return queued

    # --- the profile sync queue ---

    async def profile_syncs_queued(self) -> int:
        """How many people wait for their Matrix account or profile to be brought in line."""
        return int(await self._db.scalar(select(func.count()).select_from(profile_sync_queue)))

    async def next_profile_syncs(self, limit: int) -> list[tuple[str, datetime]]:
        """(person, queued at) of the Matrix profiles waiting to be synced, oldest first."""

        def work(conn: Connection) -> list[tuple[str, datetime]]:
            rows = conn.execute(
                select(profile_sync_queue.c.user_id, profile_sync_queue.c.queued_at)
                .order_by(profile_sync_queue.c.queued_at)
                .limit(limit)
            )
            return [(r.user_id, _aware(r.queued_at)) for r in rows]

        return await self._db.read(work)

    async def profile_synced(self, user_id: str, queued_before: datetime) -> None:
        """Remove a person from the queue, unless they were queued again meanwhile."""
        await self._db.execute(
            delete(profile_sync_queue).where(
                profile_sync_queue.c.user_id == user_id,
                profile_sync_queue.c.queued_at <= queued_before,
            )
        )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_COUNT_NAMES = {
    InstitutionPut: "institutions",
    InstitutionDelete: "institutions_deleted",
    UserPut: "users",
    MembershipPut: "members",
    MembershipDelete: "members_deleted",
    CoursePut: "courses",
    CourseDelete: "courses_deleted",
    BatchPut: "batches",
    BatchDelete: "batches_deleted",
    AssignmentPut: "assignments",
    AssignmentDelete: "assignments_deleted",
}
