"""OneRoster 1.1 import on SQLite and PostgreSQL: the sample export, a changed re-import, a
broken export."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from bridge.importers.oneroster import ImportFailed, OneRosterImport, TerminalProgress
from bridge.services.policy import PolicyService
from bridge.services.roster import RosterService
from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.roster import RosterRepository

SAMPLE = Path(__file__).resolve().parents[2] / "bridge" / "demo" / "oneroster_sample"


@pytest.fixture
async def roster(db: Database) -> RosterRepository:
    await migrate.upgrade(db)
    return RosterRepository(db)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(SAMPLE, folder)
    return folder


async def run_import(roster: RosterRepository, folder: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return await OneRosterImport(folder, RosterService(roster), roster, **kwargs).run()  # type: ignore[arg-type]


async def test_the_sample_export(roster: RosterRepository, export: Path) -> None:
    report = await run_import(roster, export)
    assert dict(report.applied) == {
        "institutions": 1,
        "users": 10,
        "members": 10,
        "courses": 2,
        "batches": 3,
        "assignments": 11,
    }
    assert dict(report.skipped_roles) == {"parent": 1}
    assert report.skipped == []
    assert "imported: 1 institutions, 10 users" in report.summary()
    policy = PolicyService(roster)
    assert (await policy.can_start("stu-ava", "tut-kim")).reason == (
        "Alex Kim teaches your course Algebra 101"
    )
    assert (await policy.can_start("adm-lee", "stu-diego")).allowed
    assert not (await policy.can_start("stu-ava", "adm-lee")).allowed
    # Farah's Algebra enrollment ended in June; she is still in Biology.
    assert (await policy.can_start("stu-farah", "stu-ava")).allowed  # both in Biology
    assert not (await policy.can_start("tut-kim", "stu-farah")).allowed
    user = await roster.get_user("stu-chloe")
    assert user is not None and user.display_name == "Chloé Martin"
    assert await roster.get_user("par-patel") is None


async def test_reimport_is_idempotent_and_applies_differences(
    roster: RosterRepository, export: Path
) -> None:
    await run_import(roster, export)
    again = await run_import(roster, export)
    assert again.removed == {} and again.skipped == []
    # The next export: Ben renamed, Chloe left Group A, Group B cancelled, Emma tobedeleted.
    users = (export / "users.csv").read_text().replace(",Ben,Okafor,", ",Benjamin,Okafor,")
    users = users.replace("stu-emma,,", "stu-emma,tobedeleted,")
    (export / "users.csv").write_text(users)
    enrollments = [
        line
        for line in (export / "enrollments.csv").read_text().splitlines()
        if "stu-chloe" not in line
    ]
    (export / "enrollments.csv").write_text("\n".join(enrollments) + "\n")
    classes = (export / "classes.csv").read_text().replace("cls-alg-b,,", "cls-alg-b,tobedeleted,")
    (export / "classes.csv").write_text(classes)
    report = await run_import(roster, export)
    assert report.removed["batches"] == 1
    assert report.removed["assignments"] >= 1
    policy = PolicyService(roster)
    assert (await roster.get_user("stu-ben")).display_name == "Benjamin Okafor"  # type: ignore[union-attr]
    assert not (await policy.can_start("stu-chloe", "stu-ava")).allowed  # left the batch
    assert not (await policy.can_start("stu-diego", "tut-nguyen")).allowed  # batch cancelled
    emma = await roster.get_user("stu-emma")
    assert emma is not None and emma.active is False and emma.memberships == ()


async def test_rows_with_missing_references_are_skipped_with_file_and_line(
    roster: RosterRepository, export: Path
) -> None:
    with (export / "enrollments.csv").open("a") as handle:
        handle.write("enr-x,,2026-09-01,cls-nope,org-riverside,stu-ava,student,false,,\n")
        handle.write("enr-y,,2026-09-01,cls-alg-a,org-riverside,stu-ava,student,false,soon,\n")
        handle.write("enr-z,,2026-09-01,cls-alg-a,org-riverside,par-patel,guardian,false,,\n")
    report = await run_import(roster, export)
    assert report.skipped == [
        "enrollments.csv:13: no batch with id 'cls-nope'",
        "enrollments.csv:14: beginDate or endDate is not a date",
    ]
    assert report.skipped_roles["enrollment guardian"] == 1
    assert report.applied["assignments"] == 11


async def test_a_broken_export_fails_clearly(roster: RosterRepository, export: Path) -> None:
    text = (export / "courses.csv").read_text().replace("orgSourcedId", "org")
    (export / "courses.csv").write_text(text)
    with pytest.raises(
        ImportFailed, match=r"courses.csv: missing required column\(s\) orgSourcedId"
    ):
        await run_import(roster, export)
    (export / "courses.csv").unlink()
    with pytest.raises(ImportFailed, match=r"listed in manifest\.csv but missing"):
        await run_import(roster, export)
    (export / "manifest.csv").unlink()
    (export / "users.csv").unlink()
    (export / "users.csv").mkdir()
    with pytest.raises(ImportFailed, match=r"users\.csv: cannot read"):
        await run_import(roster, export)


async def test_an_empty_folder_is_an_error(roster: RosterRepository, tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="no OneRoster files"):
        await run_import(roster, tmp_path)


def test_progress_bar_draws_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    bar = TerminalProgress(stream)
    bar("users.csv", 5, 10)
    bar("users.csv", 10, 10)
    assert "[###############...............]  50% 5/10" in stream.getvalue()
    assert stream.getvalue().endswith("100% 10/10\n")
    quiet = io.StringIO()
    TerminalProgress(quiet)("users.csv", 5, 10)
    assert quiet.getvalue() == ""


async def test_a_partial_folder_removes_nothing_it_did_not_read(
    roster: RosterRepository, export: Path
) -> None:
    await run_import(roster, export)
    for name in ("manifest", "courses", "classes", "enrollments"):
        (export / f"{name}.csv").unlink()
    report = await run_import(roster, export)
    assert report.removed == {}
    assert (await PolicyService(roster).can_start("stu-ava", "tut-kim")).allowed


async def test_a_skipped_row_does_not_remove_what_it_stood_for(
    roster: RosterRepository, export: Path
) -> None:
    await run_import(roster, export)
    text = (export / "enrollments.csv").read_text()
    (export / "enrollments.csv").write_text(
        text.replace(
            "stu-ava,student,false,2026-09-01,2027-06-30",
            "stu-ava,student,false,2026-09-01,someday",
            1,
        )
    )
    classes = (export / "classes.csv").read_text().replace(",Group B,", ",,")
    (export / "classes.csv").write_text(classes)
    report = await run_import(roster, export)
    assert len(report.skipped) == 2
    assert report.removed == {}
    assert (await PolicyService(roster).can_start("stu-ava", "tut-kim")).allowed
    assert (await PolicyService(roster).can_start("stu-diego", "tut-nguyen")).allowed


async def test_reimport_keeps_what_only_the_api_sets(
    roster: RosterRepository, export: Path
) -> None:
    from bridge.domain.roster import InstitutionPut, UserPut

    await run_import(roster, export)
    service = RosterService(roster)
    await service.apply(
        [
            InstitutionPut("org-riverside", "Riverside College", "GB", "Europe/London"),
            UserPut("stu-ava", "Ava Patel", "https://lms.example/ava.png", True, '{"note":"x"}'),
        ]
    )
    await run_import(roster, export)
    ava = await roster.get_user("stu-ava")
    assert ava is not None
    assert (ava.avatar_url, ava.availability) == ("https://lms.example/ava.png", '{"note":"x"}')


async def test_a_date_out_of_range_is_a_skipped_row_not_a_crash(
    roster: RosterRepository, export: Path
) -> None:
    with (export / "enrollments.csv").open("a") as handle:
        handle.write(
            "enr-far,,2026-09-01,cls-alg-b,org-riverside,stu-ava,student,false,,9999-12-31\n"
        )
    report = await run_import(roster, export)
    assert report.skipped == ["enrollments.csv:13: beginDate or endDate is not a date"]


async def test_headers_are_checked_before_anything_is_written(
    roster: RosterRepository, export: Path
) -> None:
    text = (export / "enrollments.csv").read_text().replace("userSourcedId", "user")
    (export / "enrollments.csv").write_text(text)
    with pytest.raises(ImportFailed):
        await run_import(roster, export)
    assert await roster.get_user("stu-ava") is None
