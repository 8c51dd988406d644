"""The accounts repository on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.store import migrate
from bridge.store.accounts import AccountRepository
from bridge.store.database import Database


async def test_accounts_are_recorded_once_and_profiles_remembered(db: Database) -> None:
    await migrate.upgrade(db)
    repo = AccountRepository(db)
    now = datetime.now(UTC)
    await repo.add("@_lms_a:hs", "a", now)
    await repo.add("@_lms_a:hs", "a", now)
    assert (await repo.get_by_platform_id("a")).user_id == "@_lms_a:hs"  # type: ignore[union-attr]
    assert await repo.get_by_platform_id("b") is None
    await repo.save_profile("@_lms_a:hs", now, display_name="Ada")
    await repo.save_profile("@_lms_a:hs", now, avatar_source="initials:A", avatar_mxc="mxc://x/y")
    record = await repo.get_by_user_id("@_lms_a:hs")
    assert record is not None
    assert (record.display_name, record.avatar_source, record.avatar_mxc) == (
        "Ada",
        "initials:A",
        "mxc://x/y",
    )
