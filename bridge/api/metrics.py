"""`GET /api/v1/metrics`: the bridge's metrics for Prometheus, behind the LMS API token."""

from __future__ import annotations

from aiohttp import web

from bridge.api.operations import Operation, Reply, bind
from bridge.contract.metrics import CONTENT_TYPE, render
from bridge.services.metrics import BridgeMetrics

OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/metrics",
        "metrics",
        "operations",
        "The bridge's metrics, in Prometheus's text format",
        description=(
            "Counters of the bridge's work (SQL statements, units of work, homeserver requests by "
            "kind, CPU) and its backlogs now (events waiting to be processed, the webhook's "
            "position, open inbox pages). Scrape it with the API token as a bearer token."
        ),
        replies=(Reply(200, "The metrics", {"type": "string"}, media=("text/plain",)),),
    ),
)


class MetricsRoute:
    """Serves the metrics document."""

    def __init__(self, metrics: BridgeMetrics) -> None:
        self._metrics = metrics

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return bind(self, OPERATIONS)

    async def metrics(self, _request: web.Request) -> web.Response:
        """The metrics as they stand."""
        return web.Response(
            body=render(await self._metrics.gather()).encode(),
            headers={"Content-Type": CONTENT_TYPE},
        )
