"""Report routes: a participant reports a message; the LMS's admin screens list, show and
resolve reports."""

from __future__ import annotations

from aiohttp import web

from bridge.api.http import path_id, read_body, read_query, reply
from bridge.api.operations import Operation, Reply, bind
from bridge.contract.reports import (
    FileReport,
    ReportDetail,
    ReportList,
    ReportsQuery,
    ReportView,
    ResolveReport,
)
from bridge.services.moderation import ModerationService
from bridge.services.reports import ReportService

_TAG = "reports"
OPERATIONS = (
    Operation(
        "POST",
        "/api/v1/messages/{message_id}/reports",
        "file",
        _TAG,
        "Report the other person's message (participants only)",
        description="Stored at once and published as `report.created`; also filed on the "
        "homeserver as the reporter (later, when the homeserver is away). One open report per "
        "reporter and message: a repeat answers the existing one.",
        body=FileReport,
        replies=(
            Reply(201, "Reported", ReportView),
            Reply(200, "The reporter's open report of this message", ReportView),
        ),
        errors=(400, 404, 413, 422),
    ),
    Operation(
        "GET",
        "/api/v1/reports",
        "listed",
        _TAG,
        "Reports, oldest first: resume with next_after",
        query=ReportsQuery,
        replies=(Reply(200, "OK", ReportList),),
        errors=(400,),
    ),
    Operation(
        "GET",
        "/api/v1/reports/{report_id}",
        "detail",
        _TAG,
        "A report with its message, context, people and earlier reports",
        replies=(Reply(200, "OK", ReportDetail),),
        errors=(400, 404),
    ),
    Operation(
        "POST",
        "/api/v1/reports/{report_id}/resolve",
        "resolve",
        _TAG,
        "Handle an open report (published as `report.resolved`)",
        description="The same actions as the moderators' commands in the admin room, with the "
        "same effects. The moderator is an institution admin (by platform id) or one of the "
        "configured moderators (by Matrix ID).",
        body=ResolveReport,
        replies=(Reply(200, "Resolved", ReportView),),
        errors=(400, 403, 404, 409, 413, 422, 502, 503),
    ),
)


class ReportRoutes:
    """HTTP handlers of the report API."""

    def __init__(
        self, reports: ReportService, moderation: ModerationService, max_body_bytes: int
    ) -> None:
        self._reports = reports
        self._moderation = moderation
        self._max_body = max_body_bytes

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return bind(self, OPERATIONS)

    async def file(self, request: web.Request) -> web.Response:
        """`POST /api/v1/messages/{m}/reports`: 201 new, 200 the open one."""
        message_id = path_id(request, "message_id")
        body = await read_body(request, FileReport, self._max_body)
        report, created = await self._reports.file(
            message_id, body.reporter, body.reason, body.category
        )
        return reply(report, 201 if created else 200)

    async def listed(self, request: web.Request) -> web.Response:
        """`GET /api/v1/reports?state=&after=&limit=`."""
        query = read_query(request, ReportsQuery)
        state = query.state or None
        found, next_after = await self._reports.listed(state, query.after, query.limit)
        return reply(ReportList(found, next_after))

    async def detail(self, request: web.Request) -> web.Response:
        """`GET /api/v1/reports/{r}`."""
        return reply(await self._reports.detail(path_id(request, "report_id")))

    async def resolve(self, request: web.Request) -> web.Response:
        """`POST /api/v1/reports/{r}/resolve {moderator, action, note?}`."""
        report_id = path_id(request, "report_id")
        body = await read_body(request, ResolveReport, self._max_body)
        resolved = await self._moderation.act(
            report_id,
            body.moderator,
            body.action,
            body.note or None,
            body.days or None,
            check_moderator=True,
        )
        return reply(resolved)
