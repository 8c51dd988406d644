"""Repository of the moderators' side: the admin room, report cards, reaction prompts and
suspensions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, or_, select, update

from bridge.contract.events import UserSuspended, UserUnsuspended, UserWarned
from bridge.store import prepared
from bridge.store.database import Database
from bridge.store.events import append_event
from bridge.store.schema import admin_room, card_prompts, report_cards, reports, suspensions

_s = suspensions.c


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class CardRecord:
    """A report's card in the admin room."""

    report_id: str
    room_id: str
    event_id: str
    shown_state: str


@dataclass(frozen=True)
class PromptRecord:
    """A reaction shortcut waiting for its confirmation."""

    event_id: str
    report_id: str
    action: str
    moderator: str


@dataclass(frozen=True)
class Suspension:
    """A suspension of someone's messaging."""

    user_id: str
    until: datetime | None
    note: str | None
    moderator: str
    created_at: datetime
    lifted_at: datetime | None
    homeserver_suspended: bool

    def in_force(self, now: datetime) -> bool:
        """Whether it holds at `now`."""
        return self.lifted_at is None and (self.until is None or self.until > now)


def _suspension(row: Any) -> Suspension:
    return Suspension(
        row.user_id,
        _utc(row.until),
        row.note,
        row.moderator,
        _utc(row.created_at),  # type: ignore[arg-type]
        _utc(row.lifted_at),
        bool(row.homeserver_suspended),
    )


_SUSPENSION = select(suspensions).where(_s.user_id == bindparam("user_id"))


def read_suspension(conn: Connection, user_id: str) -> Suspension | None:
    """(Within a unit of work.) Someone's latest suspension, lifted or not."""
    row = prepared.first(conn, _SUSPENSION, {"user_id": user_id})
    return _suspension(row) if row else None


class ModerationRepository:
    """All SQL about the admin room, cards, prompts and suspensions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- the admin room ---

    async def admin_room(self) -> str | None:
        """The admin room the bot keeps, once known."""
        return await self._db.scalar(select(admin_room.c.room_id))

    async def set_admin_room(self, room_id: str, now: datetime) -> None:
        """Remember the admin room (replacing an earlier one)."""

        def work(conn: Connection) -> None:
            conn.execute(delete(admin_room))
            conn.execute(admin_room.insert().values(id=1, room_id=room_id, created_at=now))

        await self._db.write(work)

    # --- cards ---

    async def cards_due(self, limit: int) -> list[tuple[str, str, CardRecord | None]]:
        """Open reports without a card, and cards that show an older state than their report's:
        (report id, its state, the card if posted), oldest report first. (A report resolved
        before it had a card, say before the admin room existed, needs none.)"""
        c = report_cards.c
        query = (
            select(reports.c.id, reports.c.state, c.report_id, c.room_id, c.event_id, c.shown_state)
            .select_from(reports.outerjoin(report_cards, c.report_id == reports.c.id))
            .where(
                or_(
                    and_(c.report_id.is_(None), reports.c.state == "open"),
                    c.shown_state != reports.c.state,
                )
            )
            .order_by(reports.c.seq)
            .limit(limit)
        )

        rows = await self._db.rows(query)
        return [
            (
                row[0],
                row[1],
                CardRecord(row[2], row[3], row[4], row[5]) if row[2] is not None else None,
            )
            for row in rows
        ]

    async def card_posted(
        self, report_id: str, room_id: str, event_id: str, state: str, now: datetime
    ) -> None:
        """A card was posted (or edited) to show `state`."""
        c = report_cards.c

        def work(conn: Connection) -> None:
            changed = conn.execute(
                update(report_cards)
                .where(c.report_id == report_id)
                .values(room_id=room_id, event_id=event_id, shown_state=state)
            )
            if not changed.rowcount:
                conn.execute(
                    report_cards.insert().values(
                        report_id=report_id,
                        room_id=room_id,
                        event_id=event_id,
                        shown_state=state,
                        posted_at=now,
                    )
                )

        await self._db.write(work)

    async def report_of_card(self, event_id: str) -> str | None:
        """The report a card event shows."""
        c = report_cards.c

        return await self._db.scalar(select(c.report_id).where(c.event_id == event_id))

    async def forget_cards(self) -> None:
        """Cards live in one admin room: a new room gets them all again."""
        await self._db.execute(delete(report_cards))

    # --- reaction prompts ---

    async def add_prompt(self, prompt: PromptRecord, now: datetime) -> None:
        """The bot asked a moderator to confirm a shortcut."""
        await self._db.execute(
            card_prompts.insert().values(
                event_id=prompt.event_id,
                report_id=prompt.report_id,
                action=prompt.action,
                moderator=prompt.moderator,
                created_at=now,
            )
        )

    async def prompt_waiting(self, event_id: str) -> bool:
        """Whether an event is a bot question still waiting for its confirmation."""
        c = card_prompts.c
        query = select(c.event_id).where(c.event_id == event_id, c.answered_at.is_(None))

        def work(conn: Connection) -> bool:
            return (conn.execute(query)).first() is not None

        return await self._db.read(work)

    async def answer_prompt(self, event_id: str, now: datetime) -> PromptRecord | None:
        """Take an unanswered prompt (once: a second confirmation finds nothing)."""
        c = card_prompts.c

        row = await self._db.write(
            lambda conn: conn.execute(
                update(card_prompts)
                .where(c.event_id == event_id, c.answered_at.is_(None))
                .values(answered_at=now)
                .returning(c.event_id, c.report_id, c.action, c.moderator)
            ).first()
        )
        return PromptRecord(*row) if row else None

    # --- warnings and suspensions ---

    async def record_warning(self, warned: UserWarned, now: datetime) -> None:
        """Publish `user.warned`."""

        def work(conn: Connection) -> None:
            append_event(conn, warned, now)

        await self._db.write(work)

    async def suspension(self, user_id: str) -> Suspension | None:
        """Someone's latest suspension, lifted or not."""
        return await self._db.read(lambda conn: read_suspension(conn, user_id))

    async def suspend(self, suspended: UserSuspended, now: datetime) -> None:
        """Suspend someone (replacing an earlier suspension); `user.suspended` commits with it."""

        def work(conn: Connection) -> None:
            told = (
                conn.execute(select(_s.homeserver_suspended).where(_s.user_id == suspended.user_id))
            ).scalar()
            conn.execute(delete(suspensions).where(_s.user_id == suspended.user_id))
            conn.execute(
                suspensions.insert().values(
                    user_id=suspended.user_id,
                    until=suspended.until,
                    note=suspended.note,
                    moderator=suspended.moderator,
                    created_at=now,
                    homeserver_suspended=bool(told),
                )
            )
            append_event(conn, suspended, now)

        await self._db.write(work)

    async def lift(self, lifted: UserUnsuspended, now: datetime) -> bool:
        """End a suspension in force (or one that ran out, unannounced); `user.unsuspended`
        commits with it. False when there was none."""

        def work(conn: Connection) -> bool:
            result = conn.execute(
                update(suspensions)
                .where(_s.user_id == lifted.user_id, _s.lifted_at.is_(None))
                .values(lifted_at=now)
            )
            if not result.rowcount:
                return False
            append_event(conn, lifted, now)
            return True

        return await self._db.write(work)

    async def ran_out(self, now: datetime) -> list[Suspension]:
        """Suspensions past their end not yet lifted."""
        query = select(suspensions).where(
            _s.lifted_at.is_(None), _s.until.is_not(None), _s.until <= now
        )

        return [_suspension(r) for r in await self._db.rows(query)]

    async def homeserver_behind(self, now: datetime) -> list[Suspension]:
        """Suspensions whose state on the homeserver differs from what holds now."""
        in_force = and_(_s.lifted_at.is_(None), or_(_s.until.is_(None), _s.until > now))
        query = select(suspensions).where(
            or_(
                and_(in_force, _s.homeserver_suspended.is_(False)),
                and_(~in_force, _s.homeserver_suspended.is_(True)),
            )
        )

        return [_suspension(r) for r in await self._db.rows(query)]

    async def next_end(self) -> datetime | None:
        """When the next suspension in force runs out."""
        query = select(_s.until).where(_s.lifted_at.is_(None), _s.until.is_not(None))
        ends = [_utc(row.until) for row in await self._db.rows(query)]
        return min((e for e in ends if e is not None), default=None)

    async def set_homeserver_suspended(self, user_id: str, value: bool) -> None:
        """What the homeserver now holds for someone."""
        await self._db.execute(
            update(suspensions).where(_s.user_id == user_id).values(homeserver_suspended=value)
        )
