"""Repository of the embedded inbox's sessions: created for one person, a code traded once for a
token, ended by the LMS or by time. Only hashes of the code and the token are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, or_, select, update

from bridge.store.database import Database
from bridge.store.schema import embed_sessions

_e = embed_sessions.c
# Expired sessions are kept a while, so a late link still gets "expired" rather than "unknown".
_KEEP_EXPIRED = timedelta(days=2)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class EmbedSession:
    """One person's session of the embedded inbox."""

    id: str
    user_id: str
    conversation_id: str | None
    expires_at: datetime


def _session(row: Any) -> EmbedSession:
    return EmbedSession(row.id, row.user_id, row.conversation_id, _utc(row.expires_at))


class EmbedSessionRepository:
    """All SQL about embedded-inbox sessions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        session_id: str,
        user_id: str,
        conversation_id: str | None,
        code_hash: str,
        now: datetime,
        code_expires_at: datetime,
        expires_at: datetime,
    ) -> None:
        """Store a new session whose code has not been traded yet (and forget long-expired
        ones)."""

        def work(conn: Connection) -> None:
            conn.execute(delete(embed_sessions).where(_e.expires_at < now - _KEEP_EXPIRED))
            conn.execute(
                embed_sessions.insert().values(
                    id=session_id,
                    user_id=user_id,
                    conversation_id=conversation_id,
                    code_hash=code_hash,
                    created_at=now,
                    code_expires_at=code_expires_at,
                    expires_at=expires_at,
                )
            )

        await self._db.write(work)

    async def exchange(self, code_hash: str, token_hash: str, now: datetime) -> EmbedSession | None:
        """Trade an unused, unexpired code for the token, once: the update is the claim, so two
        pages racing with the same link get one session between them."""
        claim = (
            update(embed_sessions)
            .where(
                _e.code_hash == code_hash,
                _e.exchanged_at.is_(None),
                _e.ended_at.is_(None),
                _e.code_expires_at > now,
                _e.expires_at > now,
            )
            .values(token_hash=token_hash, exchanged_at=now)
            .returning(_e.id, _e.user_id, _e.conversation_id, _e.expires_at)
        )
        row = await self._db.write(lambda conn: conn.execute(claim).first())
        return None if row is None else _session(row)

    async def by_token(self, token_hash: str, now: datetime) -> EmbedSession | None:
        """The live session holding this token."""
        query = select(_e.id, _e.user_id, _e.conversation_id, _e.expires_at).where(
            _e.token_hash == token_hash, _e.ended_at.is_(None), _e.expires_at > now
        )
        row = await self._db.first(query)
        return None if row is None else _session(row)

    async def end_for(self, user_id: str, now: datetime) -> list[str]:
        """End every live session (and unused link) of a person; their ids."""
        live = and_(
            _e.user_id == user_id,
            _e.ended_at.is_(None),
            or_(_e.expires_at > now, _e.code_expires_at > now),
        )

        def work(conn: Connection) -> list[str]:
            ids = list(conn.execute(select(_e.id).where(live)).scalars())
            if ids:
                conn.execute(update(embed_sessions).where(_e.id.in_(ids)).values(ended_at=now))
            return ids

        return await self._db.write(work)
