"""Liveness and readiness, for process supervisors and load balancers.

Both are deliberately open (probes carry no credentials) and reveal only yes/no answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

ReadinessProbe = Callable[[], Awaitable[dict[str, bool]]]


class HealthRoutes:
    """`GET /health` (the process answers) and `GET /ready` (it can do its job)."""

    def __init__(self, readiness: ReadinessProbe) -> None:
        self._readiness = readiness

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return [web.get("/health", self.health), web.get("/ready", self.ready)]

    async def health(self, _request: web.Request) -> web.Response:
        """Always 200 while the process serves requests."""
        return web.json_response({"status": "ok"})

    async def ready(self, _request: web.Request) -> web.Response:
        """200 when every readiness condition holds, else 503 naming the ones that don't."""
        checks = await self._readiness()
        ready = all(checks.values())
        return web.json_response(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status=200 if ready else 503,
        )
