"""IMS OneRoster 1.1 CSV import: the one place that knows OneRoster's files and columns.

orgs → institutions, users → people and memberships (student → student, teacher → tutor,
administrator → admin; other roles are counted and skipped), courses → courses, classes →
batches, enrollments → enrollments (students) and teaching (teachers). `status=tobedeleted`
removes a record (people are deactivated instead: their history stays). In a bulk export (the
default, and whatever the manifest says is "bulk") a record of an exported institution that is
no longer in the export is removed too, so re-importing a changed export applies the differences.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bridge.domain.moments import parse_moment
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
from bridge.services.roster import RosterRejected, RosterService
from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.roster import RosterRepository

FILES = ("orgs", "users", "courses", "classes", "enrollments")
REQUIRED_COLUMNS = {
    "orgs": {"sourcedId", "name"},
    "users": {"sourcedId", "role", "givenName", "familyName", "orgSourcedIds"},
    "courses": {"sourcedId", "title", "orgSourcedId"},
    "classes": {"sourcedId", "title", "courseSourcedId"},
    "enrollments": {"classSourcedId", "userSourcedId", "role"},
}
USER_ROLES = {"student": "student", "teacher": "tutor", "administrator": "admin"}
ENROLLMENT_ROLES = {"student": "student", "teacher": "tutor"}
CHUNK = 5000


class ImportFailed(Exception):
    """The export can't be imported at all (a file unreadable, a required column missing)."""


@dataclass
class ImportReport:
    """What an import did."""

    applied: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)  # "file:line: reason"
    skipped_roles: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """A few lines for the person who ran the import."""
        lines = ["imported: " + _counts(self.applied)]
        if self.removed:
            lines.append("removed: " + _counts(self.removed))
        if self.skipped_roles:
            lines.append("roles not bridged (skipped): " + _counts(self.skipped_roles))
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} row(s):")
            lines += [f"  {line}" for line in self.skipped[:200]]
            if len(self.skipped) > 200:
                lines.append(f"  … and {len(self.skipped) - 200} more")
        return "\n".join(lines)


def _file_order(skipped: str) -> tuple[int, int]:
    file, line, _ = skipped.split(":", 2)
    name = file.removesuffix(".csv")
    return (FILES.index(name) if name in FILES else len(FILES), int(line))


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in counter.items()) or "nothing"


@dataclass(frozen=True)
class Row:
    """A CSV row with where it came from."""

    file: str
    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        """A column's value, stripped ('' when absent)."""
        return (self.values.get(column) or "").strip()

    @property
    def where(self) -> str:
        """`file:line` for messages."""
        return f"{self.file}:{self.line}"

    @property
    def deleted(self) -> bool:
        """Whether the row asks for removal."""
        return self.get("status").lower() == "tobedeleted"


Progress = Callable[[str, int, int], None]


class OneRosterImport:
    """Reads an export folder and applies it through the roster service."""

    def __init__(
        self,
        folder: Path,
        service: RosterService,
        roster: RosterRepository,
        progress: Progress | None = None,
    ) -> None:
        self._folder = folder
        self._service = service
        self._roster = roster
        self._progress = progress or (lambda _file, _done, _total: None)
        self.report = ImportReport()

    def _modes(self) -> dict[str, str]:
        """Each file's mode from manifest.csv: bulk, delta or absent (bulk when no manifest)."""
        modes = dict.fromkeys(FILES, "bulk")
        manifest = self._folder / "manifest.csv"
        if not manifest.exists():
            return modes
        for row in self._rows("manifest", {"propertyName", "value"}):
            name = row.get("propertyName")
            if name.startswith("file.") and name[5:] in modes:
                modes[name[5:]] = row.get("value").lower() or "absent"
        return modes

    def _rows(self, name: str, required: set[str]) -> Iterator[Row]:
        path = self._folder / f"{name}.csv"
        try:
            handle = path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise ImportFailed(f"{path}: cannot read ({exc.strerror})") from exc
        with handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or [])
            missing = required - columns
            if missing:
                raise ImportFailed(
                    f"{path}: missing required column(s) {', '.join(sorted(missing))}"
                )
            try:
                for values in reader:
                    yield Row(f"{name}.csv", reader.line_num, values)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise ImportFailed(f"{path}:{reader.line_num}: {exc}") from exc

    def _count_lines(self, name: str) -> int:
        try:
            with (self._folder / f"{name}.csv").open("rb") as handle:
                return max(0, sum(1 for _ in handle) - 1)
        except OSError:
            return 0

    async def run(self) -> ImportReport:
        """Import every file present, in dependency order."""
        modes = self._modes()
        has_manifest = (self._folder / "manifest.csv").exists()
        present = {name for name in FILES if (self._folder / f"{name}.csv").exists()}
        for name in FILES:
            if has_manifest and modes[name] != "absent" and name not in present:
                raise ImportFailed(f"{self._folder / name}.csv: listed in manifest.csv but missing")
        if not present:
            raise ImportFailed(f"{self._folder}: no OneRoster files ({', '.join(FILES)}.csv)")
        for name in present:  # every header is checked before anything is written
            next(self._rows(name, REQUIRED_COLUMNS[name]), None)
        seen: dict[str, set[tuple[str, ...]]] = {}
        institutions: list[str] = []
        for name in FILES:
            if modes[name] == "absent" or name not in present:
                continue
            total = self._count_lines(name)
            changes: list[tuple[Row, RosterChange]] = []
            parse = getattr(self, f"_parse_{name}")
            for done, row in enumerate(self._rows(name, REQUIRED_COLUMNS[name]), 1):
                for change in parse(row, seen):
                    changes.append((row, change))
                if len(changes) >= CHUNK:
                    await self._apply(changes)
                    changes = []
                if done % 500 == 0 or done == total:
                    self._progress(f"{name}.csv", done, total)
            await self._apply(changes)
            self._progress(f"{name}.csv", total, total)
            if name == "orgs":
                institutions = [key for (key,) in seen.get("institution", set())]
        # Only a file that was read can say what is gone.
        bulk = {name for name, mode in modes.items() if mode == "bulk"} & present
        if institutions:
            await self._remove_absent(institutions, seen, bulk)
        self.report.skipped.sort(key=_file_order)
        return self.report

    async def _apply(self, changes: list[tuple[Row, RosterChange]]) -> None:
        """Apply a chunk; rows whose references are missing are skipped with the reason."""
        while changes:
            try:
                result = await self._service.apply([change for _, change in changes])
            except RosterRejected as rejected:
                bad = {p.index for p in rejected.problems}
                for problem in rejected.problems:
                    self.report.skipped.append(
                        f"{changes[problem.index][0].where}: {problem.message}"
                    )
                changes = [c for n, c in enumerate(changes) if n not in bad]
                continue
            self.report.applied.update(
                {k: v for k, v in result.counts.items() if not k.endswith("_deleted")}
            )
            self.report.removed.update(
                {
                    k.removesuffix("_deleted"): v
                    for k, v in result.counts.items()
                    if k.endswith("_deleted")
                }
            )
            return

    def _skip(self, row: Row, reason: str) -> list[RosterChange]:
        self.report.skipped.append(f"{row.where}: {reason}")
        return []

    def _parse_orgs(self, row: Row, seen: dict[str, set[tuple[str, ...]]]) -> list[RosterChange]:
        org_id, name = row.get("sourcedId"), row.get("name")
        if not org_id:
            return self._skip(row, "no sourcedId")
        if row.deleted:
            return [InstitutionDelete(org_id)]
        if not name:
            return self._skip(row, "no name")
        seen.setdefault("institution", set()).add((org_id,))
        return [InstitutionPut(org_id, name, keep_unset=True)]

    def _parse_users(self, row: Row, seen: dict[str, set[tuple[str, ...]]]) -> list[RosterChange]:
        user_id = row.get("sourcedId")
        if not user_id:
            return self._skip(row, "no sourcedId")
        name = " ".join(p for p in (row.get("givenName"), row.get("familyName")) if p)
        name = name or row.get("username") or user_id
        role = USER_ROLES.get(row.get("role").lower())
        if role is None:
            self.report.skipped_roles[row.get("role") or "(none)"] += 1
            return []
        enabled = row.get("enabledUser").lower() not in ("false", "0", "no")
        changes: list[RosterChange] = [
            UserPut(user_id, name, active=enabled and not row.deleted, keep_unset=True)
        ]
        for org in filter(None, (o.strip() for o in row.get("orgSourcedIds").split(","))):
            if row.deleted:
                changes.append(MembershipDelete(org, user_id))
            else:
                seen.setdefault("member", set()).add((org, user_id))
                changes.append(MembershipPut(org, user_id, role))  # type: ignore[arg-type]
        return changes

    def _parse_courses(self, row: Row, seen: dict[str, set[tuple[str, ...]]]) -> list[RosterChange]:
        course_id = row.get("sourcedId")
        if not course_id:
            return self._skip(row, "no sourcedId")
        if row.deleted:
            return [CourseDelete(course_id)]
        seen.setdefault("course", set()).add((course_id,))  # a skipped row removes nothing
        if not row.get("title") or not row.get("orgSourcedId"):
            return self._skip(row, "no title or orgSourcedId")
        return [CoursePut(course_id, row.get("orgSourcedId"), row.get("title"))]

    def _parse_classes(self, row: Row, seen: dict[str, set[tuple[str, ...]]]) -> list[RosterChange]:
        class_id = row.get("sourcedId")
        if not class_id:
            return self._skip(row, "no sourcedId")
        if row.deleted:
            return [BatchDelete(class_id)]
        seen.setdefault("batch", set()).add((class_id,))  # a skipped row removes nothing
        if not row.get("title") or not row.get("courseSourcedId"):
            return self._skip(row, "no title or courseSourcedId")
        return [BatchPut(class_id, row.get("courseSourcedId"), row.get("title"))]

    def _parse_enrollments(
        self, row: Row, seen: dict[str, set[tuple[str, ...]]]
    ) -> list[RosterChange]:
        class_id, user_id = row.get("classSourcedId"), row.get("userSourcedId")
        if not class_id or not user_id:
            return self._skip(row, "no classSourcedId or userSourcedId")
        kind = ENROLLMENT_ROLES.get(row.get("role").lower())
        if kind is None:
            self.report.skipped_roles[f"enrollment {row.get('role') or '(none)'}"] += 1
            return []
        if row.deleted:
            return [AssignmentDelete(kind, class_id, user_id)]  # type: ignore[arg-type]
        seen.setdefault(kind, set()).add((class_id, user_id))  # a skipped row removes nothing
        try:
            begins = parse_moment(row.get("beginDate")) if row.get("beginDate") else None
            ends = (
                parse_moment(row.get("endDate"), end_of_period=True) if row.get("endDate") else None
            )
        except ValueError:
            return self._skip(row, "beginDate or endDate is not a date")
        return [AssignmentPut(kind, class_id, user_id, begins, ends)]  # type: ignore[arg-type]

    async def _remove_absent(
        self,
        institutions: list[str],
        seen: dict[str, set[tuple[str, ...]]],
        bulk: set[str],
    ) -> None:
        """In bulk files, what the export no longer lists (under its institutions) goes."""
        stored = await self._roster.records_of(institutions)
        removals: list[RosterChange] = []
        if "users" in bulk:
            removals += [
                MembershipDelete(i, u) for i, u in stored["member"] - seen.get("member", set())
            ]
        if "enrollments" in bulk:
            for kind in ("student", "tutor"):
                removals += [
                    AssignmentDelete(kind, b, u)  # type: ignore[arg-type]
                    for b, u in stored[kind] - seen.get(kind, set())
                ]
        if "classes" in bulk:
            removals += [BatchDelete(b) for (b,) in stored["batch"] - seen.get("batch", set())]
        if "courses" in bulk:
            removals += [CourseDelete(c) for (c,) in stored["course"] - seen.get("course", set())]
        for start in range(0, len(removals), CHUNK):
            result = await self._service.apply(removals[start : start + CHUNK])
            self.report.removed.update(
                {k.removesuffix("_deleted"): v for k, v in result.counts.items()}
            )


class TerminalProgress:
    """A one-line progress bar on a terminal (silent when stderr is not one)."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._enabled = stream.isatty()

    def __call__(self, file: str, done: int, total: int) -> None:
        if not self._enabled:
            return
        width = 30
        filled = width if not total else int(width * done / total)
        percent = 100 if not total else int(100 * done / total)
        self._stream.write(
            f"\r{file:<16} [{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {done}/{total}"
        )
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()


async def import_folder(
    database_url: str, folder: Path, progress: Progress | None = None
) -> ImportReport:
    """Migrate the database if needed and import `folder` into it."""

    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        roster = RosterRepository(db)
        importer = OneRosterImport(
            folder, RosterService(roster), roster, progress or TerminalProgress()
        )
        return await importer.run()
    finally:
        await db.close()
