"""Repository of reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.contract.events import ReportCreated, ReportResolved
from bridge.store.database import Database
from bridge.store.events import append_event
from bridge.store.schema import report_poll, reports

_r = reports.c
HomeserverList = Literal["event", "user"]
_CURSORS = {"event": "last_event_report_id", "user": "last_user_report_id"}


@dataclass(frozen=True)
class ReportRecord:
    """A stored report."""

    seq: int
    id: str
    origin: str
    state: str
    category: str
    reason: str
    reporter: str | None
    message_id: str | None
    conversation_id: str | None
    reported_user: str | None
    created_at: datetime
    filed_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    action: str | None
    note: str | None
    room_id: str | None
    event_id: str | None
    reporter_matrix_id: str | None
    reported_matrix_id: str | None
    homeserver_report_id: int | None
    homeserver_user_report_id: int | None
    dismissed_at: datetime | None


_COLUMNS = (
    _r.seq,
    _r.id,
    _r.origin,
    _r.state,
    _r.category,
    _r.reason,
    _r.reporter,
    _r.message_id,
    _r.conversation_id,
    _r.reported_user,
    _r.created_at,
    _r.filed_at,
    _r.resolved_at,
    _r.resolved_by,
    _r.action,
    _r.note,
    _r.room_id,
    _r.event_id,
    _r.reporter_matrix_id,
    _r.reported_matrix_id,
    _r.homeserver_report_id,
    _r.homeserver_user_report_id,
    _r.dismissed_at,
)


def _record(row: Any) -> ReportRecord:
    # SQLite hands back naive datetimes; everything stored is UTC.
    values = [
        v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for v in row
    ]
    return ReportRecord(*values)


class ReportRepository:
    """All SQL about `reports`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._dialect = postgresql if db.dialect == "postgresql" else sqlite

    async def add(
        self,
        created: ReportCreated,
        now: datetime,
        homeserver_report_id: int | None = None,
        homeserver_user_report_id: int | None = None,
    ) -> bool:
        """Store a new open report; `report.created` commits with it. False when the reporter
        already has an open report of that message, or the homeserver's report was taken
        before (nothing is stored)."""
        report = created.report

        def work(conn: Connection) -> bool:
            inserted = conn.execute(
                self._dialect.insert(reports)
                .values(
                    id=report.id,
                    origin=report.origin,
                    state="open",
                    category=report.category,
                    reason=report.reason,
                    reporter=report.reporter,
                    message_id=report.message_id,
                    conversation_id=report.conversation_id,
                    reported_user=report.reported_user,
                    room_id=report.room_id,
                    event_id=report.event_id,
                    reporter_matrix_id=report.reporter_matrix_id,
                    reported_matrix_id=report.reported_matrix_id,
                    homeserver_report_id=homeserver_report_id,
                    homeserver_user_report_id=homeserver_user_report_id,
                    created_at=report.created_at,
                )
                .on_conflict_do_nothing()
                .returning(_r.id)
            )
            if inserted.first() is None:
                return False
            append_event(conn, created, now)
            return True

        return await self._db.write(work)

    async def get(self, report_id: str) -> ReportRecord | None:
        """A report by id."""
        return await self._one(_r.id == report_id)

    async def open_by(self, reporter: str, message_id: str) -> ReportRecord | None:
        """The reporter's open report of a message, if any."""
        return await self._one(
            and_(_r.reporter == reporter, _r.message_id == message_id, _r.state == "open")
        )

    async def reported_by(self, reporter: str, message_ids: Sequence[str]) -> set[str]:
        """Which of these messages the reporter has reported (whatever came of it)."""
        if not message_ids:
            return set()
        query = select(_r.message_id).where(
            _r.reporter == reporter, _r.message_id.in_(list(message_ids))
        )

        def work(conn: Connection) -> set[str]:
            return set((conn.execute(query)).scalars())

        return await self._db.read(work)

    async def open_by_rule(self, message_id: str) -> ReportRecord | None:
        """The content rule's open report of a message, if any."""
        return await self._one(
            and_(_r.origin == "rule", _r.message_id == message_id, _r.state == "open")
        )

    async def filed_unlinked(self, reporter: str, message_id: str) -> ReportRecord | None:
        """The oldest LMS report by `reporter` of a message whose copy on the homeserver (the
        bridge files each one there) hasn't been found yet."""
        query = (
            select(*_COLUMNS)
            .where(
                _r.origin == "lms",
                _r.reporter == reporter,
                _r.message_id == message_id,
                _r.homeserver_report_id.is_(None),
            )
            .order_by(_r.seq)
            .limit(1)
        )

        row = await self._db.first(query)
        return _record(row) if row else None

    async def _one(self, condition: Any) -> ReportRecord | None:

        row = await self._db.first(select(*_COLUMNS).where(condition))
        return _record(row) if row else None

    async def listed(self, state: str | None, after_seq: int, limit: int) -> list[ReportRecord]:
        """Reports after `after_seq` (in `state`, when given), oldest first."""
        query = select(*_COLUMNS).where(_r.seq > after_seq)
        if state is not None:
            query = query.where(_r.state == state)

        def work(conn: Connection) -> list[ReportRecord]:
            rows = conn.execute(query.order_by(_r.seq).limit(limit))
            return [_record(r) for r in rows]

        return await self._db.read(work)

    async def latest(self, state: str | None, limit: int) -> list[ReportRecord]:
        """The newest reports (in `state`, when given), newest first."""
        query = select(*_COLUMNS)
        if state is not None:
            query = query.where(_r.state == state)

        return [_record(r) for r in await self._db.rows(query.order_by(_r.seq.desc()).limit(limit))]

    async def by_prefix(self, prefix: str, limit: int = 2) -> list[ReportRecord]:
        """Reports whose id starts with `prefix` (ids are hex: anything else finds none)."""
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            return []
        query = select(*_COLUMNS).where(_r.id.startswith(prefix, autoescape=True)).limit(limit)

        return [_record(r) for r in await self._db.rows(query)]

    async def against(self, user_id: str, limit: int) -> list[ReportRecord]:
        """Reports of messages a person sent, newest first."""
        query = (
            select(*_COLUMNS)
            .where(_r.reported_user == user_id)
            .order_by(_r.seq.desc())
            .limit(limit)
        )

        return [_record(r) for r in await self._db.rows(query)]

    async def to_file(self, limit: int) -> list[ReportRecord]:
        """Reports from the LMS not yet filed on the homeserver, oldest first."""
        query = (
            select(*_COLUMNS)
            .where(_r.origin == "lms", _r.filed_at.is_(None))
            .order_by(_r.seq)
            .limit(limit)
        )

        return [_record(r) for r in await self._db.rows(query)]

    async def mark_filed(self, report_id: str, now: datetime) -> None:
        """The homeserver has the report (or refused it for good: see the log)."""
        await self._db.execute(update(reports).where(_r.id == report_id).values(filed_at=now))

    async def resolve(self, resolved: ReportResolved, now: datetime) -> bool:
        """Close an open report as `resolved.report.resolution` says; `report.resolved` commits
        with it. False when it was not open."""
        report = resolved.report
        resolution = report.resolution
        assert resolution is not None

        def work(conn: Connection) -> bool:
            result = conn.execute(
                update(reports)
                .where(_r.id == report.id, _r.state == "open")
                .values(
                    state="resolved",
                    resolved_at=resolution.resolved_at,
                    resolved_by=resolution.moderator,
                    action=resolution.action,
                    note=resolution.note,
                )
            )
            if not result.rowcount:
                return False
            append_event(conn, resolved, now)
            return True

        return await self._db.write(work)

    async def link_homeserver(self, report_id: str, homeserver_report_id: int) -> None:
        """The homeserver's copy of a report the bridge has (its id, for dismissing it)."""
        await self._db.execute(
            update(reports)
            .where(_r.id == report_id, _r.homeserver_report_id.is_(None))
            .values(homeserver_report_id=homeserver_report_id)
        )

    async def homeserver_cursor(self, listing: HomeserverList) -> int:
        """The highest id taken from one of the homeserver's report lists (0 before the
        first)."""
        column = report_poll.c[_CURSORS[listing]]

        value = await self._db.scalar(select(column))
        return int(value or 0)

    async def set_homeserver_cursor(self, listing: HomeserverList, last_id: int) -> None:
        """Remember how far one of the homeserver's report lists has been read."""
        values = {_CURSORS[listing]: last_id}

        def work(conn: Connection) -> None:
            result = conn.execute(update(report_poll).where(report_poll.c.id == 1).values(**values))
            if result.rowcount == 0:
                start = dict.fromkeys(_CURSORS.values(), 0)
                conn.execute(report_poll.insert().values(id=1, **{**start, **values}))

        await self._db.write(work)

    async def to_dismiss(self, limit: int) -> list[ReportRecord]:
        """Resolved reports whose homeserver copy is still listed there, oldest first."""
        query = (
            select(*_COLUMNS)
            .where(
                _r.state == "resolved",
                or_(
                    _r.homeserver_report_id.is_not(None),
                    _r.homeserver_user_report_id.is_not(None),
                ),
                _r.dismissed_at.is_(None),
            )
            .order_by(_r.seq)
            .limit(limit)
        )

        return [_record(r) for r in await self._db.rows(query)]

    async def mark_dismissed(self, report_id: str, now: datetime) -> None:
        """The homeserver's copy is gone."""
        await self._db.execute(update(reports).where(_r.id == report_id).values(dismissed_at=now))
