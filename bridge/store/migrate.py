"""Schema migrations: applied at start-up and by `lms-bridge migrate`, refused when the database
is newer than this bridge."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from bridge.store.database import Database

_SCRIPTS = Path(__file__).parent / "migrations"


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer version of the bridge."""


def _alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _check_known(connection: Connection) -> str | None:
    current = _current(connection)
    scripts = ScriptDirectory.from_config(_alembic_config())
    known = {rev.revision for rev in scripts.walk_revisions()}
    if current is not None and current not in known:
        raise SchemaTooNew(
            f"the database schema is at revision {current!r}, which this version of the bridge "
            f"does not know (its newest is {head_revision()!r}): it was migrated by a newer "
            "bridge. Run that version, or restore a backup made for this one."
        )
    return current


async def current_revision(db: Database) -> str | None:
    """The revision the database is at (None for an empty database)."""
    return await db.read(_current)


async def check_known(db: Database) -> None:
    """Raise SchemaTooNew when the database is at a revision this code doesn't know."""
    await db.read(_check_known)


async def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (revision before, revision after)."""

    def run(connection: Connection) -> tuple[str | None, str]:
        before = _check_known(connection)
        command.upgrade(_alembic_config(connection), "head")
        return before, head_revision()

    return await db.write(run)
