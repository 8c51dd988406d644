"""Repository of conversations (one per pair of people) and of how far each person has read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.cache import BoundedCache
from bridge.contract.events import ConversationCreated, ConversationRead, ConversationStateChanged
from bridge.store import prepared
from bridge.store.database import Database, one_of_bound
from bridge.store.events import append_event
from bridge.store.schema import conversations, messages, read_markers, room_setups


@dataclass(frozen=True)
class ConversationRecord:
    """A conversation as stored."""

    id: str
    user_a: str
    user_b: str
    started_by: str
    room_id: str | None
    state: str
    encrypted: bool
    created_at: datetime
    last_message_at: datetime | None

    def other(self, user_id: str) -> str:
        """The participant who isn't `user_id`."""
        return self.user_b if user_id == self.user_a else self.user_a

    def has(self, user_id: str) -> bool:
        """Whether `user_id` is one of the two participants."""
        return user_id in (self.user_a, self.user_b)


@dataclass(frozen=True)
class LastMessage:
    """The newest message of a conversation, as an inbox previews it."""

    sender: str
    body: str
    deleted: bool
    created_at: datetime


@dataclass(frozen=True)
class InboxEntry:
    """A conversation as one person's inbox lists it."""

    conversation: ConversationRecord
    last_message: LastMessage | None
    unread: int


def pair(a: str, b: str) -> tuple[str, str]:
    """The stored order of a pair of people."""
    return (a, b) if a < b else (b, a)


def _utc(value: Any) -> Any:
    return (
        value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value
    )


_c = conversations.c
PAIRS_KEPT = 50_000  # conversations whose two people are remembered
_COLUMNS = (
    _c.id,
    _c.user_a,
    _c.user_b,
    _c.started_by,
    _c.room_id,
    _c.state,
    _c.encrypted,
    _c.created_at,
    _c.last_message_at,
)


_BY_PAIR = select(*_COLUMNS).where(_c.user_a == bindparam("a"), _c.user_b == bindparam("b"))
_BY_ROOM = select(*_COLUMNS).where(_c.room_id == bindparam("room_id"))
_BY_ID = select(*_COLUMNS).where(_c.id == bindparam("id"))
_INVOLVING_CHUNK = 2000


def _involving(dialect: str) -> Select[Any]:
    """Whose conversations a roster change reaches; people come in chunks (each is bound
    twice)."""
    return select(*_COLUMNS).where(
        or_(
            one_of_bound(_c.user_a, "people", dialect),
            one_of_bound(_c.user_b, "people", dialect),
        ),
        # Not an IN list of literals: the prepared path takes only plain parameters.
        or_(_c.state == "active", _c.state == "read_only"),
    )


def _record(row: Any) -> ConversationRecord:
    return ConversationRecord(*(_utc(v) for v in row))


def read_conversation(conn: Connection, conversation_id: str) -> ConversationRecord | None:
    """(Within a unit of work.) A conversation by id."""
    row = prepared.first(conn, _BY_ID, {"id": conversation_id})
    return _record(row) if row else None


def read_conversation_in_room(conn: Connection, room_id: str) -> ConversationRecord | None:
    """(Within a unit of work.) The conversation a Matrix room belongs to, if any."""
    row = prepared.first(conn, _BY_ROOM, {"room_id": room_id})
    return _record(row) if row else None


class ConversationRepository:
    """All SQL about `conversations` and `read_markers`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._dialect = postgresql if db.dialect == "postgresql" else sqlite
        self._involving = _involving(db.dialect)
        # A conversation's two people never change, so what is cached stays true.
        self._pairs: BoundedCache[str, tuple[str, str]] = BoundedCache(PAIRS_KEPT)

    async def claim(self, initiator: str, recipient: str, now: datetime) -> ConversationRecord:
        """The pair's conversation, recorded as "creating" if there was none (race-safe)."""
        user_a, user_b = pair(initiator, recipient)

        def work(conn: Connection) -> ConversationRecord:
            conn.execute(
                self._dialect.insert(conversations)
                .values(
                    id=uuid.uuid4().hex,
                    user_a=user_a,
                    user_b=user_b,
                    started_by=initiator,
                    room_id=None,
                    state="creating",
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["user_a", "user_b"])
            )
            found = conn.execute(
                select(*_COLUMNS).where(_c.user_a == user_a, _c.user_b == user_b)
            ).one()
            return _record(found)

        return await self._db.write(work)

    async def by_pair(self, a: str, b: str) -> ConversationRecord | None:
        """The conversation of two people, if any."""
        user_a, user_b = pair(a, b)
        return await self._one(_BY_PAIR, {"a": user_a, "b": user_b})

    async def by_room(self, room_id: str) -> ConversationRecord | None:
        """The conversation a Matrix room belongs to, if any."""
        return await self._db.read(lambda conn: read_conversation_in_room(conn, room_id))

    async def get(self, conversation_id: str) -> ConversationRecord | None:
        """A conversation by id."""
        return await self._db.read(lambda conn: read_conversation(conn, conversation_id))

    async def pair_of(self, conversation_id: str) -> tuple[str, str] | None:
        """The two people of a conversation (remembered: they never change), if it exists."""
        known = self._pairs.get(conversation_id)
        if known is None:
            record = await self.get(conversation_id)
            if record is None:
                return None
            known = self._pairs.put(conversation_id, (record.user_a, record.user_b))
        return known

    async def _one(
        self, query: Select[Any], parameters: dict[str, str]
    ) -> ConversationRecord | None:
        row = await self._db.first(query, parameters)
        return _record(row) if row else None

    async def attach_room(self, conversation_id: str, room_id: str) -> None:
        """Record the room of a conversation still being made, before anyone is invited to it:
        from then on the bridge's own records say the room is this conversation's."""
        await self._db.execute(
            update(conversations)
            .where(_c.id == conversation_id, _c.state == "creating", _c.room_id.is_(None))
            .values(room_id=room_id)
        )

    async def activate(self, conversation_id: str, room_id: str, now: datetime) -> None:
        """Record the room of a conversation being made; `conversation.created` commits with it,
        and so does the room's place in the queue of rooms to finish (`setups_due`)."""

        def work(conn: Connection) -> None:
            result = conn.execute(
                update(conversations)
                .where(_c.id == conversation_id, _c.state == "creating")
                .values(room_id=room_id, state="active")
            )
            if result.rowcount:
                row = (conn.execute(select(*_COLUMNS).where(_c.id == conversation_id))).one()
                record = _record(row)
                created = ConversationCreated(
                    conversation_id=record.id,
                    participants=[record.user_a, record.user_b],
                    started_by=record.started_by,
                    room_id=room_id,
                    state="active",
                )
                conn.execute(
                    self._dialect.insert(room_setups)
                    .values(conversation_id=conversation_id, room_id=room_id, queued_at=now)
                    .on_conflict_do_nothing(index_elements=["conversation_id"])
                )
                append_event(conn, created, now)

        await self._db.write(work)

    async def set_state(
        self, conversation_id: str, state: str, reason_code: str, reason: str, now: datetime
    ) -> bool:
        """Move a made conversation to `state` (active or read_only); `conversation.state_changed`
        commits with it. False when it already was in that state."""

        def work(conn: Connection) -> bool:
            result = conn.execute(
                update(conversations)
                .where(
                    _c.id == conversation_id,
                    _c.state != state,
                    _c.state.in_(("active", "read_only")),
                )
                .values(state=state)
            )
            if not result.rowcount:
                return False
            changed = ConversationStateChanged(conversation_id, state, reason_code, reason)  # type: ignore[arg-type]
            append_event(conn, changed, now)
            return True

        return await self._db.write(work)

    async def setups_due(self, limit: int) -> list[tuple[ConversationRecord, str]]:
        """Conversations whose rooms still need finishing (with each room id), oldest first."""
        s = room_setups.c
        rows = await self._db.rows(
            select(*_COLUMNS, s.room_id.label("setup_room"))
            .join(room_setups, s.conversation_id == _c.id)
            .order_by(s.queued_at)
            .limit(limit)
        )
        return [(_record(row[: len(_COLUMNS)]), row.setup_room) for row in rows]

    async def setup_done(self, conversation_id: str) -> None:
        """A room's finishing touches are done."""
        await self._db.execute(
            delete(room_setups).where(room_setups.c.conversation_id == conversation_id)
        )

    async def mark_encrypted(self, conversation_id: str) -> bool:
        """Record that the room turned encrypted; False when it was known already."""
        changed = await self._db.execute(
            update(conversations)
            .where(_c.id == conversation_id, _c.encrypted.is_(False))
            .values(encrypted=True)
        )
        return bool(changed)

    async def made(self, after_id: str, limit: int) -> list[ConversationRecord]:
        """Conversations with a room, in id order after `after_id` (for sweeps)."""
        query = (
            select(*_COLUMNS)
            .where(_c.id > after_id, _c.state.in_(("active", "read_only")))
            .order_by(_c.id)
            .limit(limit)
        )
        return [_record(r) for r in await self._db.rows(query)]

    async def involving(self, user_ids: Sequence[str]) -> list[ConversationRecord]:
        """Conversations with a room of which any of `user_ids` is a participant."""

        def work(conn: Connection) -> list[ConversationRecord]:
            found: dict[str, ConversationRecord] = {}
            for start in range(0, len(user_ids), _INVOLVING_CHUNK):
                chunk = list(user_ids[start : start + _INVOLVING_CHUNK])
                rows = prepared.all_rows(conn, self._involving, {"people": chunk})
                found.update((r.id, _record(r)) for r in rows)
            return list(found.values())

        return await self._db.read(work)

    # --- one person's inbox ---

    async def inbox_entry(self, conversation_id: str, user_id: str) -> InboxEntry | None:
        """One of a person's conversations as their inbox lists it."""
        entries = await self.inbox(user_id, 1, only=conversation_id)
        return entries[0] if entries else None

    async def inbox(self, user_id: str, limit: int, only: str | None = None) -> list[InboxEntry]:
        """A person's conversations (or just `only`), the most recently active first, with
        preview and unread."""
        activity = func.coalesce(_c.last_message_at, _c.created_at)
        query = select(*_COLUMNS).where(
            or_(_c.user_a == user_id, _c.user_b == user_id),
            _c.state.in_(("active", "read_only")),
            *([_c.id == only] if only is not None else []),
        )
        query = query.order_by(activity.desc(), _c.id).limit(limit)
        m = messages.c

        def work(conn: Connection) -> list[InboxEntry]:
            records = [_record(r) for r in conn.execute(query)]
            ids = [r.id for r in records]
            if not ids:
                return []
            newest = (
                select(m.conversation_id, func.max(m.seq).label("seq"))
                .where(m.conversation_id.in_(ids))
                .group_by(m.conversation_id)
                .subquery()
            )
            last = {
                row.conversation_id: LastMessage(
                    row.sender, row.body, row.deleted_at is not None, _utc(row.created_at)
                )
                for row in conn.execute(
                    select(m.conversation_id, m.sender, m.body, m.deleted_at, m.created_at).join(
                        newest, m.seq == newest.c.seq
                    )
                )
            }
            marker = read_markers.c
            unread = {
                row.conversation_id: row.count
                for row in conn.execute(
                    select(m.conversation_id, func.count().label("count"))
                    .select_from(
                        messages.outerjoin(
                            read_markers,
                            and_(
                                marker.conversation_id == m.conversation_id,
                                marker.user_id == user_id,
                            ),
                        )
                    )
                    .where(
                        m.conversation_id.in_(ids),
                        m.sender != user_id,
                        m.deleted_at.is_(None),
                        m.seq > func.coalesce(marker.up_to_seq, 0),
                    )
                    .group_by(m.conversation_id)
                )
            }
            return [InboxEntry(r, last.get(r.id), unread.get(r.id, 0)) for r in records]

        return await self._db.read(work)

    async def unread_total(self, user_id: str) -> tuple[int, int]:
        """(messages from the other person not read yet, conversations holding some) over a
        person's conversations."""
        m, marker, c = messages.c, read_markers.c, _c
        counts = (
            select(m.conversation_id, func.count().label("count"))
            .select_from(
                messages.join(conversations, c.id == m.conversation_id).outerjoin(
                    read_markers,
                    and_(marker.conversation_id == m.conversation_id, marker.user_id == user_id),
                )
            )
            .where(
                or_(c.user_a == user_id, c.user_b == user_id),
                c.state.in_(("active", "read_only")),
                m.sender != user_id,
                m.deleted_at.is_(None),
                m.seq > func.coalesce(marker.up_to_seq, 0),
            )
            .group_by(m.conversation_id)
            .subquery()
        )
        query = select(func.coalesce(func.sum(counts.c.count), 0), func.count())
        row = await self._db.first(query)
        assert row is not None
        total, with_unread = row
        return int(total), int(with_unread)

    async def mark_read(
        self,
        conversation_id: str,
        user_id: str,
        up_to_seq: int,
        up_to_id: str,
        now: datetime,
        origin: str,
    ) -> bool:
        """Move a person's read marker forward to the message `up_to_id` (its seq `up_to_seq`;
        never back), publishing `conversation.read`; True when it moved."""
        insert = self._dialect.insert(read_markers).values(
            conversation_id=conversation_id, user_id=user_id, up_to_seq=up_to_seq, updated_at=now
        )

        def work(conn: Connection) -> bool:
            # RETURNING says whether a row was written (an INSERT's rowcount is not reliable).
            moved = conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["conversation_id", "user_id"],
                    set_={"up_to_seq": insert.excluded.up_to_seq, "updated_at": now},
                    where=read_markers.c.up_to_seq < insert.excluded.up_to_seq,
                ).returning(read_markers.c.up_to_seq)
            ).first()
            if moved is None:
                return False
            append_event(
                conn,
                ConversationRead(conversation_id, user_id, up_to_id, origin, now),  # type: ignore[arg-type]
                now,
            )
            return True

        return await self._db.write(work)

    async def read_up_to(self, conversation_id: str, user_id: str) -> int:
        """The seq of the last message a person has read (0 when none)."""
        marker = read_markers.c
        value = await self._db.scalar(
            select(marker.up_to_seq).where(
                marker.conversation_id == conversation_id, marker.user_id == user_id
            )
        )
        return int(value) if value is not None else 0
