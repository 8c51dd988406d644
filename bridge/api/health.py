"""Liveness and readiness, for process supervisors and load balancers.

Both are deliberately open (probes carry no credentials) and reveal only yes/no answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bridge.api.http import reply
from bridge.api.operations import Operation, Reply, bind
from bridge.contract.probes import Health, Readiness

ReadinessProbe = Callable[[], Awaitable[dict[str, bool]]]
OPERATIONS = (
    Operation(
        "GET",
        "/health",
        "health",
        "operations",
        "The process answers",
        replies=(Reply(200, "Yes", Health),),
        public=True,
    ),
    Operation(
        "GET",
        "/ready",
        "ready",
        "operations",
        "Ready to work: started, database schema current, homeserver reachable",
        replies=(
            Reply(200, "Yes", Readiness),
            Reply(503, "No; `checks` says which condition fails", Readiness),
        ),
        public=True,
    ),
)


class HealthRoutes:
    """`GET /health` (the process answers) and `GET /ready` (it can do its job)."""

    def __init__(self, readiness: ReadinessProbe) -> None:
        self._readiness = readiness

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return bind(self, OPERATIONS)

    async def health(self, _request: web.Request) -> web.Response:
        """Always 200 while the process serves requests."""
        return reply(Health("ok"))

    async def ready(self, _request: web.Request) -> web.Response:
        """200 when every readiness condition holds, else 503 naming the ones that don't."""
        checks = await self._readiness()
        ready = all(checks.values())
        return reply(Readiness("ready" if ready else "not_ready", checks), 200 if ready else 503)
