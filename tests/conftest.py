"""Shared fixtures: databases (SQLite and PostgreSQL), a real Synapse per test session, a bridge.

Where a service is missing on a developer's machine the tests that need it are skipped with the
reason; with CI set in the environment a missing service fails them instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from bridge.app import Bridge
from bridge.config import (
    Config,
    DatabaseConfig,
    ModerationConfig,
    load_config,
    render_example,
    write_back,
)
from bridge.demo.synapse import (
    LocalSynapse,
    free_port,
    synapse_installed,
    write_other_appservice_registration,
)
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
    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(PG_ADMIN_URL, connect_timeout=3)
    except (OSError, psycopg.Error):
        return False
    await conn.close()
    return True


@dataclass
class PgDatabases:
    """Creates throwaway PostgreSQL databases and drops them afterwards."""

    created: list[str]

    async def create(self) -> str:
        import psycopg

        name = f"lmsb_test_{secrets.token_hex(6)}"
        async with await psycopg.AsyncConnection.connect(PG_ADMIN_URL, autocommit=True) as conn:
            await conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{name}"

    async def drop_all(self) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for name in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
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
    from bridge.config import driver_database_url

    database = Database(driver_database_url(database_url, None))
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def pg_db() -> AsyncIterator[Database]:
    """An empty Database on PostgreSQL only (for what only PostgreSQL does), closed and
    dropped afterwards."""
    from bridge.config import driver_database_url

    require_service(await _pg_available(), f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    databases = PgDatabases([])
    database = Database(driver_database_url(await databases.create(), None))
    try:
        yield database
    finally:
        await database.close()
        await databases.drop_all()


# --- a real Synapse -----------------------------------------------------------------------------


@dataclass
class SynapseEnv:
    """A running Synapse with the bridge's registration loaded, and the matching bridge config."""

    synapse: LocalSynapse
    config_path: Path
    config: Config
    admin_token: str
    other_appservice: OtherAppservice
    database: str  # the homeserver's own database: "sqlite" or "postgresql"

    def bridge_config(self, database_url: str) -> Config:
        """The bridge's config with its own database. The tests' photo host plays an LMS that
        serves photos from a private network (loopback); the homeserver's admin reads reports."""
        return dataclasses.replace(
            self.config,
            database=DatabaseConfig(url=database_url),
            lms=dataclasses.replace(self.config.lms, photo_allowed_networks=("127.0.0.0/8",)),
            moderation=ModerationConfig(
                homeserver_admin_token=self.admin_token,
                report_poll_seconds=0.5,
                # One admin room for the session's bridges (the first makes it), with the
                # homeserver's admin as moderator.
                admin_room=f"#{self.config.appservice.account_prefix}moderation:test.local",
                moderators=(self.moderator,),
            ),
        )

    @property
    def moderator(self) -> str:
        """The homeserver admin, a moderator of the bridge."""
        return "@admin:test.local"

    def new_user(self, name: str | None = None, password: str = "pw") -> tuple[str, str]:
        """Register a plain (non-bridged) local user; returns (user id, password)."""
        localpart = name or f"person{secrets.token_hex(4)}"
        return self.synapse.register_user(localpart, password), password


class OtherAppservice:
    """A second appservice on the homeserver, as a real deployment has (another bridge, a
    moderation bot): interested in every room, so Synapse draws its transaction ids from the same
    sequence as the bridge's and the ids the bridge sees jump. It answers every call with `{}`."""

    def __init__(self, folder: Path) -> None:
        self.transactions = 0
        handler = self._handler()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.registration = write_other_appservice_registration(
            folder / "other-appservice.yaml", f"http://127.0.0.1:{self._server.server_address[1]}"
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path.startswith("/_matrix/app/v1/transactions/"):
                    owner.transactions += 1
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_PUT = do_POST = do_GET = _answer

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _pg_reachable() -> bool:
    import psycopg2

    try:
        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg2.Error:
        return False
    return True


def _synapse_database(kind: str) -> dict[str, object] | None:
    """Synapse's `database` section for `kind`, creating a PostgreSQL database for it."""
    if kind == "sqlite":
        return None
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(PG_ADMIN_URL)
    name = f"lmsb_synapse_{secrets.token_hex(6)}"
    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cursor:
        # Synapse wants a C-collated UTF-8 database.
        cursor.execute(
            f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"
        )
    conn.close()
    args = {"database": name, "user": url.username, "host": url.host, "port": url.port or 5432}
    if url.password:
        args["password"] = url.password
    return {"name": "psycopg2", "txn_limit": 10000, "args": {**args, "cp_min": 1, "cp_max": 10}}


def _drop_synapse_database(database: dict[str, object] | None) -> None:
    if database is None:
        return
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cursor:
        name = database["args"]["database"]  # type: ignore[index]
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


class SynapseEnvs:
    """The test session's homeservers, started on first use: one on SQLite and one on
    PostgreSQL, each with the bridge's registration and a second appservice."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._envs: dict[str, SynapseEnv] = {}
        self._cleanups: list[Callable[[], None]] = []

    def get(self, kind: str) -> SynapseEnv:
        """The running homeserver on `kind` ("sqlite" or "postgresql")."""
        if kind not in self._envs:
            self._envs[kind] = self._start(kind)
        return self._envs[kind]

    def _start(self, kind: str) -> SynapseEnv:
        folder = self._tmp.mktemp(f"synapse-{kind}")
        bridge_port = free_port()
        config_path = folder / "config.yaml"
        config_path.write_text(render_example())
        database = _synapse_database(kind)
        self._cleanups.append(lambda: _drop_synapse_database(database))
        synapse = LocalSynapse(folder / "synapse", server_name="test.local", database=database)
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
        other = OtherAppservice(folder)
        other.start()
        self._cleanups.append(other.stop)
        synapse.registration_files = [registration, other.registration]
        synapse.start()
        self._cleanups.append(synapse.stop)
        synapse.register_user("admin", "admin-pw", admin=True)
        admin_token = synapse.login("admin", "admin-pw")
        return SynapseEnv(synapse, config_path, load_config(config_path), admin_token, other, kind)

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            cleanup()


@pytest.fixture(scope="session")
def synapse_envs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseEnvs]:
    """The session's homeservers (started when a test first needs one)."""
    require_service(synapse_installed(), "matrix-synapse is not installed (pip install -e .[dev])")
    envs = SynapseEnvs(tmp_path_factory)
    try:
        yield envs
    finally:
        envs.close()


@pytest.fixture
def synapse_env(request: pytest.FixtureRequest, synapse_envs: SynapseEnvs) -> SynapseEnv:
    """A real Synapse with the bridge's registration loaded: on PostgreSQL for a test whose
    bridge database is PostgreSQL, otherwise on SQLite."""
    callspec = getattr(request.node, "callspec", None)
    kind = "sqlite"
    if callspec is not None and callspec.params.get("database_url") == "postgresql":
        require_service(_pg_reachable(), f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
        kind = "postgresql"
    return synapse_envs.get(kind)


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
    instance.router.observe(None, recorder)
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
