"""The LMS event feed: every change, in order, from any point."""

from __future__ import annotations

from aiohttp import web

from bridge.api.http import query_int
from bridge.store.events import EventLogRepository


class EventRoutes:
    """`GET /api/v1/events?after=&limit=`."""

    def __init__(self, log: EventLogRepository) -> None:
        self._log = log

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return [web.get("/api/v1/events", self.feed)]

    async def feed(self, request: web.Request) -> web.Response:
        """Events after `after` (a seq), oldest first; `next_after` continues the feed."""
        after = query_int(request, "after", 0, 0, 2**62)
        limit = query_int(request, "limit", 100, 1, 1000)
        found = await self._log.after(after, limit)
        return web.json_response(
            {
                "events": [
                    {
                        "id": e.id,
                        "seq": e.seq,
                        "type": e.type,
                        "created_at": e.created_at.isoformat(),
                        "data": e.data,
                    }
                    for e in found
                ],
                "next_after": found[-1].seq if found else after,
            }
        )
