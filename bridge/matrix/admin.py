"""The homeserver's admin API, for what only a server admin may do: read the reports people
made in their Matrix clients, and dismiss them once handled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

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


@dataclass(frozen=True)
class HomeserverUserReport:
    """One report of a person (not of a message) as Synapse lists it."""

    id: int
    reporter: str  # a Matrix ID
    target: str  # the Matrix ID reported
    reason: str
    received_ms: int


def _user_report(item: dict[str, Any]) -> HomeserverUserReport:
    return HomeserverUserReport(
        id=int(item["id"]),
        reporter=str(item.get("user_id", "")),
        target=str(item.get("target_user_id", "")),
        reason=str(item.get("reason") or ""),
        received_ms=int(item.get("received_ts") or 0),
    )


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

    async def event_reports_after(self, last_id: int) -> list[HomeserverReport]:
        """Reports of messages with an id above `last_id`, oldest first."""
        return [_report(item) for item in await self._listed("event_reports", last_id)]

    async def user_reports_after(self, last_id: int) -> list[HomeserverUserReport]:
        """Reports of people with an id above `last_id`, oldest first (none on a homeserver
        without the user report list)."""
        try:
            items = await self._listed("user_reports", last_id)
        except HomeserverError as exc:
            if exc.status in (400, 404) and exc.errcode == "M_UNRECOGNIZED":
                return []
            raise
        return [_user_report(item) for item in items]

    async def _listed(self, listing: str, last_id: int) -> list[dict[str, Any]]:
        """A report list's items with an id above `last_id`, oldest first.

        The list is paged by offset from the newest end; reports dismissed meanwhile only ever
        shift older ones, so paging backwards from the newest never skips a new one.
        """
        found: list[dict[str, Any]] = []
        start = 0
        while True:
            page = await self._client.request(
                "GET",
                f"/_synapse/admin/v1/{listing}",
                params={"from": str(start), "limit": str(_PAGE), "dir": "b"},
                token=self._token,
            )
            items = page.get(listing, [])
            for item in items:
                if int(item["id"]) <= last_id:
                    return found[::-1]
                found.append(item)
            if "next_token" not in page or not items:
                return found[::-1]
            start = int(page["next_token"])

    async def dismiss(self, listing: str, report_id: int) -> None:
        """Delete a report from one of the homeserver's lists (`event_reports` or
        `user_reports`; already gone is fine)."""
        try:
            await self._client.request(
                "DELETE", f"/_synapse/admin/v1/{listing}/{report_id}", token=self._token
            )
        except HomeserverError as exc:
            if exc.status != 404:
                raise

    async def suspend(self, user_id: str, suspended: bool) -> bool:
        """Suspend (or unsuspend) a local account, so its clients can't post; False on a
        homeserver without the suspension API."""
        try:
            await self._client.request(
                "PUT",
                f"/_synapse/admin/v1/suspend/{quote(user_id, safe='')}",
                body={"suspend": suspended},
                token=self._token,
            )
        except HomeserverError as exc:
            if exc.status in (400, 404) and exc.errcode == "M_UNRECOGNIZED":
                return False
            raise
        return True
