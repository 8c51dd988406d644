"""Reports made in Matrix clients ("Report content" in Element), picked up from the
homeserver's admin API; and the homeserver's copy of each resolved report dismissed, so its
list shows only what is open."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bridge.matrix.admin import HomeserverAdmin
from bridge.matrix.client import HomeserverError
from bridge.services.reports import ReportService
from bridge.services.workers import PassWorker
from bridge.store.reports import ReportRepository

log = logging.getLogger(__name__)


class HomeserverReportSync(PassWorker):
    """The worker that keeps the bridge's reports and the homeserver's in step."""

    waiting_work = "reading the homeserver's report lists"

    def __init__(
        self,
        admin: HomeserverAdmin,
        reports: ReportRepository,
        service: ReportService,
        every_seconds: float,
    ) -> None:
        super().__init__()
        self._admin = admin
        self._reports = reports
        self._service = service
        self._every = every_seconds

    async def one_pass(self) -> float:
        """Sync now, and again at the interval (sooner when woken)."""
        try:
            await self.sync()
        except HomeserverError as exc:
            log.warning(
                "the homeserver's admin API refused (%s %s): is moderation."
                "homeserver_admin_token a server admin's token?",
                exc.status,
                exc.errcode,
            )
        return self._every

    async def sync(self) -> int:
        """One pass: take new reports (oldest first), then dismiss resolved ones; returns how
        many new reports were taken."""
        taken = 0
        # Each position is stored after its reports: a crash between the two takes them
        # again, and taking is idempotent on the homeserver's report id.
        events = await self._admin.event_reports_after(
            await self._reports.homeserver_cursor("event")
        )
        for report in events:
            taken += await self._service.take_from_homeserver(report)
        if events:
            await self._reports.set_homeserver_cursor("event", events[-1].id)
        people = await self._admin.user_reports_after(await self._reports.homeserver_cursor("user"))
        for person in people:
            taken += await self._service.take_user_report(person)
        if people:
            await self._reports.set_homeserver_cursor("user", people[-1].id)
        for record in await self._reports.to_dismiss(50):
            if record.homeserver_report_id is not None:
                await self._admin.dismiss("event_reports", record.homeserver_report_id)
            if record.homeserver_user_report_id is not None:
                await self._admin.dismiss("user_reports", record.homeserver_user_report_id)
            await self._reports.mark_dismissed(record.id, datetime.now(UTC))
        return taken
