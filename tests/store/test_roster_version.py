"""The roster version (both databases): every roster write bumps it in its own transaction, and
a bridge tells versions another process made from its own."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

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
)
from bridge.importers.oneroster import import_folder
from bridge.services.roster import RosterService
from bridge.services.roster_watch import RosterWatch
from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.roster import RosterRepository

SAMPLE = Path(__file__).resolve().parents[2] / "bridge" / "demo" / "oneroster_sample"
NOW = datetime.now(UTC)

# One of every kind of roster write, in an order where each one's references exist.
EVERY_WRITE: list[RosterChange] = [
    InstitutionPut("u", "Uni"),
    InstitutionPut("u", "Uni renamed", keep_unset=True),
    UserPut("s", "Sam"),
    UserPut("t", "Tia", keep_unset=True),
    MembershipPut("u", "s", "student"),
    MembershipPut("u", "t", "tutor"),
    CoursePut("c", "u", "Algebra"),
    BatchPut("b", "c", "A"),
    AssignmentPut("student", "b", "s"),
    AssignmentPut("tutor", "b", "t"),
    AssignmentDelete("student", "b", "s"),
    AssignmentDelete("tutor", "b", "t"),
    MembershipDelete("u", "s"),
    BatchDelete("b"),
    CourseDelete("c"),
    InstitutionDelete("u"),
]


@pytest.fixture
async def bridge_roster(db: Database) -> RosterRepository:
    """The running bridge's repository."""
    await migrate.upgrade(db)
    return RosterRepository(db)


@pytest.fixture
async def elsewhere(db: Database) -> AsyncIterator[RosterRepository]:
    """A repository of another process: its own engine on the same database."""
    other = Database(db.url)
    try:
        yield RosterRepository(other)
    finally:
        await other.close()


async def test_every_kind_of_write_bumps_the_version_once(
    bridge_roster: RosterRepository, elsewhere: RosterRepository
) -> None:
    assert await bridge_roster.version() == 0
    for n, change in enumerate(EVERY_WRITE, 1):
        await elsewhere.apply([change], NOW)
        assert await bridge_roster.version() == n, change
        assert bridge_roster.written_elsewhere(n - 1, n), change


async def test_a_bulk_write_is_one_version_and_own_writes_are_known(
    bridge_roster: RosterRepository, elsewhere: RosterRepository
) -> None:
    await bridge_roster.apply(EVERY_WRITE[:10], NOW)  # through the bridge's own API
    assert await bridge_roster.version() == 1
    assert not bridge_roster.written_elsewhere(0, 1)
    await RosterService(elsewhere).apply(EVERY_WRITE[10:])
    await bridge_roster.apply([UserPut("s", "Sam again")], NOW)
    assert await bridge_roster.version() == 3
    # Versions 2 (elsewhere) and 3 (own) together: something came from elsewhere.
    assert bridge_roster.written_elsewhere(1, 3)
    await bridge_roster.apply([UserPut("s", "Sam once more")], NOW)
    assert not bridge_roster.written_elsewhere(3, 4)


async def test_a_failed_write_leaves_the_version(bridge_roster: RosterRepository) -> None:
    with pytest.raises(IntegrityError):
        await bridge_roster.apply([MembershipPut("nowhere", "nobody", "student")], NOW)
    assert await bridge_roster.version() == 0


async def test_the_oneroster_import_bumps_the_version(
    bridge_roster: RosterRepository, db: Database, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    shutil.copytree(SAMPLE, export)
    await import_folder(db.url, export, progress=lambda _file, _done, _total: None)
    imported = await bridge_roster.version()
    assert imported > 0 and bridge_roster.written_elsewhere(0, imported)
    # A changed re-import (someone left a batch) is noticed too, including its removals.
    enrollments = [
        line
        for line in (export / "enrollments.csv").read_text().splitlines()
        if "stu-chloe" not in line
    ]
    (export / "enrollments.csv").write_text("\n".join(enrollments) + "\n")
    await import_folder(db.url, export, progress=lambda _file, _done, _total: None)
    assert await bridge_roster.version() > imported


async def test_the_watch_rechecks_only_for_changes_made_elsewhere(
    bridge_roster: RosterRepository, elsewhere: RosterRepository
) -> None:
    told: list[tuple[set[str], bool]] = []
    woken: list[bool] = []
    watch = RosterWatch(
        bridge_roster,
        1.0,
        lambda people, everyone: told.append((people, everyone)),
        lambda: woken.append(True),
    )
    await watch.prime()
    await bridge_roster.apply(EVERY_WRITE[:3], NOW)
    assert await watch.check() is False
    assert (told, woken) == ([], [])
    await elsewhere.apply(EVERY_WRITE[3:5], NOW)
    assert await watch.check() is True
    assert (told, woken) == ([(set(), True)], [True])
    assert await watch.check() is False  # nothing new
