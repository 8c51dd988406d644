"""The roster keeps the query planner informed: a table that has grown from nothing to a
few hundred rows in one import has statistics at once (both databases), so the policy's and
the search's queries are not planned for an empty table until the database's own maintenance
comes round."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from bridge.domain.roster import CoursePut, InstitutionPut
from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.roster import RosterRepository

NOW = datetime(2026, 9, 1, tzinfo=UTC)

_STATISTICS = {
    "sqlite": "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'courses'",
    "postgresql": "SELECT count(*) FROM pg_stats WHERE tablename = 'courses'",
}


async def test_a_table_filled_by_one_import_has_statistics(db: Database) -> None:
    await migrate.upgrade(db)
    roster = RosterRepository(db)
    courses = [CoursePut(f"c{n}", "inst", f"Course {n}") for n in range(800)]
    await roster.apply([InstitutionPut("inst", "Institute"), *courses], NOW)

    assert await db.scalar(text(_STATISTICS[db.dialect])) > 0
