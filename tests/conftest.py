"""Shared fixtures: databases (SQLite and PostgreSQL), a real Synapse per test session, a bridge.

Where a service is missing on a developer's machine the tests that need it are skipped with the
reason; with CI set in the environment a missing service fails them instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bridge.app import Bridge
from bridge.config import Config, DatabaseConfig, load_config, render_example, write_back
from bridge.demo.synapse import LocalSynapse, free_port, synapse_installed
from bridge.matrix.registration import ensure_secrets, write_registration
from bridge.store.database import Database
from bridge.store.inbox import StoredEvent

PG_ADMIN_URL = os.environ.get("LMS_BRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def require_service(available: bool, reason: str) -> None:
    """Skip (on a laptop) or fail (in CI) when a service a test needs is missing."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI requires every service)")
    pytest.skip(reason)


# --- databases ----------------------------------------------------------------------------------


async def _pg_available() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


@dataclass
class PgDatabases:
    """Creates throwaway PostgreSQL databases and drops them afterwards."""

    created: list[str]

    async def create(self) -> str:
        import asyncpg

        name = f"lmsb_test_{secrets.token_hex(6)}"
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{name}"

    async def drop_all(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            for name in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self.created.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A plain URL of an empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bridge.db'}"
        return
    require_service(await _pg_available(), f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    databases = PgDatabases([])
    url = await databases.create()
    try:
        yield url
    finally:
        await databases.drop_all()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An empty Database (both backends), closed afterwards."""
    from bridge.config import async_database_url

    database = Database(async_database_url(database_url, None))
    try:
        yield database
    finally:
        await database.close()


# --- a real Synapse -----------------------------------------------------------------------------


@dataclass
class SynapseEnv:
    """A running Synapse with the bridge's registration loaded, and the matching bridge config."""

    synapse: LocalSynapse
    config_path: Path
    config: Config
    admin_token: str

    def bridge_config(self, database_url: str) -> Config:
        """The bridge's config with its own database."""
        return dataclasses.replace(self.config, database=DatabaseConfig(url=database_url))

    def new_user(self, name: str | None = None, password: str = "pw") -> tuple[str, str]:
        """Register a plain (non-bridged) local user; returns (user id, password)."""
        localpart = name or f"person{secrets.token_hex(4)}"
        return self.synapse.register_user(localpart, password), password


@pytest.fixture(scope="session")
def synapse_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseEnv]:
    """One real Synapse for the whole test session, with the bridge's registration loaded."""
    require_service(synapse_installed(), "matrix-synapse is not installed (pip install -e .[dev])")
    folder = tmp_path_factory.mktemp("synapse-env")
    bridge_port = free_port()
    config_path = folder / "config.yaml"
    config_path.write_text(render_example())
    synapse = LocalSynapse(folder / "synapse", server_name="test.local")
    write_back(
        config_path,
        {
            "homeserver.url": synapse.url,
            "homeserver.server_name": "test.local",
            "homeserver.startup_wait_seconds": 5,
            "appservice.listen_port": bridge_port,
            "appservice.public_url": f"http://127.0.0.1:{bridge_port}",
            "logging.level": "DEBUG",
        },
    )
    config, _ = ensure_secrets(config_path)
    registration = folder / "registration.yaml"
    write_registration(config, registration)
    synapse.registration_files = [registration]
    synapse.start()
    try:
        synapse.register_user("admin", "admin-pw", admin=True)
        admin_token = synapse.login("admin", "admin-pw")
        yield SynapseEnv(synapse, config_path, load_config(config_path), admin_token)
    finally:
        synapse.stop()


class Recorder:
    """A handler that records every event the bridge processes."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: StoredEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def ids(self) -> list[str | None]:
        return [e.event_id for e in self.events]

    async def wait_for(self, predicate: object, timeout: float = 10.0) -> None:
        """Wait until `predicate(self)` holds."""
        async with asyncio.timeout(timeout):
            while not predicate(self):  # type: ignore[operator]
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def bridge(
    synapse_env: SynapseEnv, database_url: str
) -> AsyncIterator[tuple[Bridge, Recorder]]:
    """A started bridge (on both databases) wired to the session's Synapse, with a recorder."""
    instance = Bridge(synapse_env.bridge_config(database_url))
    recorder = Recorder()
    instance.dispatcher.on(None, recorder)
    await instance.start()
    try:
        yield instance, recorder
    finally:
        await instance.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database URL for tests that need only one backend."""
    return f"sqlite:///{tmp_path / 'bridge.db'}"


def registration_of(path: Path) -> dict[str, object]:
    """A registration file's contents."""
    return dict(yaml.safe_load(path.read_text()))
