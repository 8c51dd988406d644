"""The start-up ping survives Synapse's spurious failure, and still fails when it is real.

Synapse 1.163 can answer 502 M_CONNECTION_FAILED to a ping the bridge did answer, when the ping
lands while Synapse's own retry of a transaction is running (right after a bridge restart). A
small loopback server plays the homeserver here, to inject exactly that answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bridge.config import load_config, render_example
from bridge.matrix.checks import check_ping
from bridge.matrix.client import HomeserverClient
from tests.support.http import serve

SPURIOUS = {"errcode": "M_CONNECTION_FAILED", "error": "AlreadyCalled: Tried to cancel"}


@pytest.fixture
async def homeserver() -> AsyncIterator[tuple[HomeserverClient, list[int]]]:
    """A fake homeserver whose ping fails as many times as the list's first item says."""
    state = [0]
    calls: list[int] = []

    async def ping(_request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) <= state[0]:
            return web.json_response(SPURIOUS, status=502)
        return web.json_response({"duration_ms": 3})

    app = web.Application()
    app.router.add_post("/_matrix/client/v1/appservice/{id}/ping", ping)
    runner, port = await serve(app)
    client = HomeserverClient(f"http://127.0.0.1:{port}", "token", "lms-bridge")
    await client.start()
    try:
        yield client, state
    finally:
        await client.close()
        await runner.cleanup()


async def test_a_spurious_connection_failure_is_retried(
    homeserver: tuple[HomeserverClient, list[int]], tmp_path: Path
) -> None:
    client, failures = homeserver
    failures[0] = 1
    path = tmp_path / "config.yaml"
    path.write_text(render_example())
    result = await check_ping(client, load_config(path))
    assert result.ok, result.message


async def test_a_lasting_connection_failure_is_reported(
    homeserver: tuple[HomeserverClient, list[int]], tmp_path: Path
) -> None:
    client, failures = homeserver
    failures[0] = 99
    path = tmp_path / "config.yaml"
    path.write_text(render_example())
    result = await check_ping(client, load_config(path))
    assert not result.ok
    assert "could not connect to the bridge" in result.message
