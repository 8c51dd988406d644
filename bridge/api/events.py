"""The LMS event feed: every change, in order, from any point."""

from __future__ import annotations

from aiohttp import web

from bridge.api.http import read_query, reply
from bridge.api.operations import Operation, Reply, bind
from bridge.contract.messaging import EventPage, EventsQuery
from bridge.store.events import EventLogRepository

SIGNATURE = (
    'Signed with `X-Bridge-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` under the '
    "webhook secret."
)
OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/events",
        "feed",
        "events",
        "Every change, in order: read from any point, resume with next_after",
        description="The same events are POSTed to the configured webhook (see `webhooks`). "
        f"{SIGNATURE} The `data` of each type is in components.schemas under the type's name.",
        query=EventsQuery,
        replies=(Reply(200, "OK", EventPage),),
        errors=(400,),
    ),
)


class EventRoutes:
    """`GET /api/v1/events?after=&limit=`."""

    def __init__(self, log: EventLogRepository) -> None:
        self._log = log

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return bind(self, OPERATIONS)

    async def feed(self, request: web.Request) -> web.Response:
        """Events after `after` (a seq), oldest first; `next_after` continues the feed."""
        query = read_query(request, EventsQuery)
        found = await self._log.after(query.after, query.limit)
        return reply(
            EventPage(
                events=[e.envelope() for e in found],
                next_after=found[-1].seq if found else query.after,
            )
        )
