"""Homeserver failures reach the LMS as the documented error body, never as a 500."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bridge.api.http import lms_auth_middleware
from bridge.matrix.client import HomeserverError, HomeserverUnreachable
from tests.support.http import serve


async def test_a_refusing_or_unreachable_homeserver_is_a_502_or_503() -> None:
    async def refused(_request: web.Request) -> web.Response:
        raise HomeserverError(403, "M_FORBIDDEN", "no")

    async def away(_request: web.Request) -> web.Response:
        raise HomeserverUnreachable("connection refused")

    app = web.Application(middlewares=[lms_auth_middleware("t")])
    app.router.add_post("/api/v1/refused", refused)
    app.router.add_post("/api/v1/away", away)
    runner, port = await serve(app)
    try:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as session:
            for path, status, code in (
                ("refused", 502, "homeserver_refused"),
                ("away", 503, "homeserver_unavailable"),
            ):
                async with session.post(f"http://127.0.0.1:{port}/api/v1/{path}") as response:
                    body = await response.json()
                assert (response.status, body["error"]["code"]) == (status, code)
                assert "403" in body["error"]["message"] or status == 503
    finally:
        await runner.cleanup()
