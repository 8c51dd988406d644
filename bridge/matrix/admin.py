"""The homeserver's admin API, for what only a server admin may do: read the reports people
made in their Matrix clients, and dismiss them once handled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bridge.matrix.client import HomeserverClient, HomeserverError

_PAGE = 100


@dataclass(frozen=True)
class HomeserverReport:
    """One event report as Synapse lists it."""

    id: int
    room_id: str
    event_id: str
    reporter: str  # a Matrix ID
    sender: str | None  # who sent the reported event
    reason: str
    received_ms: int


def _report(item: dict[str, Any]) -> HomeserverReport:
    return HomeserverReport(
        id=int(item["id"]),
        room_id=str(item.get("room_id", "")),
        event_id=str(item.get("event_id", "")),
        reporter=str(item.get("user_id", "")),
        sender=item.get("sender"),
        reason=str(item.get("reason") or ""),
        received_ms=int(item.get("received_ts") or 0),
    )


class HomeserverAdmin:
    """Admin-API calls, made with a server admin's access token."""

    def __init__(self, client: HomeserverClient, admin_token: str) -> None:
        self._client = client
        self._token = admin_token

    async def whoami_is_admin(self) -> bool:
        """Whether the token belongs to a server admin (the report list answers it)."""
        try:
            await self._client.request(
                "GET", "/_synapse/admin/v1/event_reports", params={"limit": "1"}, token=self._token
            )
        except HomeserverError as exc:
            if exc.status in (401, 403):
                return False
            raise
        return True

    async def event_reports_after(self, last_id: int) -> AsyncIterator[HomeserverReport]:
        """Event reports with an id above `last_id`, newest first.

        The list is paged by offset from the newest end; reports dismissed meanwhile only ever
        shift older ones, so paging backwards from the newest never skips a new one.
        """
        start = 0
        while True:
            page = await self._client.request(
                "GET",
                "/_synapse/admin/v1/event_reports",
                params={"from": str(start), "limit": str(_PAGE), "dir": "b"},
                token=self._token,
            )
            items = page.get("event_reports", [])
            for item in items:
                report = _report(item)
                if report.id <= last_id:
                    return
                yield report
            if "next_token" not in page or not items:
                return
            start = int(page["next_token"])

    async def dismiss_event_report(self, report_id: int) -> None:
        """Delete a report from the homeserver's list (already gone is fine)."""
        try:
            await self._client.request(
                "DELETE", f"/_synapse/admin/v1/event_reports/{report_id}", token=self._token
            )
        except HomeserverError as exc:
            if exc.status != 404:
                raise
