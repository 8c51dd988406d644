"""Repository of bridged Matrix accounts and the profile last written to each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.store.database import Database
from bridge.store.schema import matrix_accounts


@dataclass(frozen=True)
class AccountRecord:
    """A registered bridged account."""

    user_id: str
    platform_id: str
    display_name: str | None
    avatar_source: str | None
    avatar_mxc: str | None


class AccountRepository:
    """All SQL about `matrix_accounts`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_by_platform_id(self, platform_id: str) -> AccountRecord | None:
        """The account of a platform user, if registered."""
        return await self._one(matrix_accounts.c.platform_id == platform_id)

    async def get_by_user_id(self, user_id: str) -> AccountRecord | None:
        """The account with this Matrix ID, if registered."""
        return await self._one(matrix_accounts.c.user_id == user_id)

    async def _one(self, condition: object) -> AccountRecord | None:
        c = matrix_accounts.c
        query = select(
            c.user_id, c.platform_id, c.display_name, c.avatar_source, c.avatar_mxc
        ).where(condition)  # type: ignore[arg-type]
        row = await self._db.first(query)
        return AccountRecord(*row) if row else None

    async def add(self, user_id: str, platform_id: str, now: datetime) -> None:
        """Record a registered account (a no-op when it is already recorded)."""
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        statement = (
            dialect.insert(matrix_accounts)
            .values(user_id=user_id, platform_id=platform_id, registered_at=now)
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        await self._db.execute(statement)

    async def save_profile(
        self,
        user_id: str,
        now: datetime,
        *,
        display_name: str | None = None,
        avatar_source: str | None = None,
        avatar_mxc: str | None = None,
    ) -> None:
        """Remember what was last written to an account's profile (None leaves a field as is)."""
        values: dict[str, object] = {"profile_synced_at": now}
        if display_name is not None:
            values["display_name"] = display_name
        if avatar_source is not None:
            values["avatar_source"] = avatar_source
            values["avatar_mxc"] = avatar_mxc
        await self._db.execute(
            update(matrix_accounts).where(matrix_accounts.c.user_id == user_id).values(**values)
        )
