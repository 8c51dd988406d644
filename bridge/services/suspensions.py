"""Suspended messaging: a moderator stops someone from sending, for some days or until lifted.

The bridge's own record decides, the instant it commits: every send, edit and new conversation
of a suspended person through the API is refused, and what they type in a Matrix client is not
carried. Where the homeserver can suspend accounts, the account is suspended there too, so their
clients can't post at all; a worker keeps the homeserver in line with the record (also when a
suspension runs out, which it announces), retrying while the homeserver is away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bridge.contract.events import UserSuspended, UserUnsuspended
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.admin import HomeserverAdmin
from bridge.matrix.client import HomeserverError
from bridge.services.refusals import Refused
from bridge.services.workers import PassWorker
from bridge.store.moderation import ModerationRepository, Suspension

log = logging.getLogger(__name__)
IDLE_SECONDS = 300.0


def until_words(suspension: Suspension) -> str:
    """When a suspension ends, in words."""
    if suspension.until is None:
        return "until a moderator lifts it"
    return f"until {suspension.until:%Y-%m-%d %H:%M} UTC"


def refusal_for(found: Suspension | None, now: datetime, sender: bool = True) -> Refused | None:
    """The API's 403 `suspended` while `found` holds (phrased for the suspended person as the
    sender, or for someone who wants to reach them); None otherwise."""
    if found is None or not found.in_force(now):
        return None
    if not sender:
        return Refused(403, "suspended", "This person can't be messaged at the moment")
    reason = f": {found.note}" if found.note else ""
    return Refused(
        403,
        "suspended",
        f"Your messaging is suspended {until_words(found)}{reason}",
        until=found.until.isoformat() if found.until else None,
    )


class Suspensions(PassWorker):
    """Suspending, lifting, checking; and the worker that tells the homeserver."""

    waiting_work = "suspending accounts on the homeserver"

    def __init__(
        self,
        store: ModerationRepository,
        ids: MatrixIdMapper,
        admin: HomeserverAdmin | None,
        on_events: Callable[[], None],
    ) -> None:
        super().__init__()
        self._store = store
        self._ids = ids
        self._admin = admin
        self._on_events = on_events

    async def in_force(self, user_id: str) -> Suspension | None:
        """Someone's suspension, while it holds."""
        found = await self._store.suspension(user_id)
        return found if found is not None and found.in_force(datetime.now(UTC)) else None

    async def refusal(self, user_id: str, *, sender: bool = True) -> Refused | None:
        """The API's 403 `suspended` while `user_id` is suspended (phrased for them as the
        sender, or for someone who wants to reach them); None otherwise."""
        return refusal_for(await self._store.suspension(user_id), datetime.now(UTC), sender)

    async def suspend(
        self,
        user_id: str,
        moderator: str,
        days: int | None,
        note: str | None,
        report_id: str | None = None,
    ) -> Suspension:
        """Suspend someone's messaging (a new suspension replaces the one before)."""
        now = datetime.now(UTC)
        until = now + timedelta(days=days) if days else None
        await self._store.suspend(
            UserSuspended(
                user_id=user_id,
                matrix_id=self._ids.user_id(user_id),
                moderator=moderator,
                note=note,
                until=until,
                report_id=report_id,
                suspended_at=now,
            ),
            now,
        )
        log.info("%s suspended %s %s", moderator, user_id, f"for {days} days" if days else "")
        self._changed()
        found = await self._store.suspension(user_id)
        assert found is not None
        return found

    async def lift(self, user_id: str, moderator: str | None) -> bool:
        """End someone's suspension; False when there was none in force."""
        now = datetime.now(UTC)
        current = await self._store.suspension(user_id)
        if current is None or not current.in_force(now):
            return False
        lifted = UserUnsuspended(user_id, self._ids.user_id(user_id), moderator, now)
        if not await self._store.lift(lifted, now):
            return False
        log.info("%s lifted the suspension of %s", moderator, user_id)
        self._changed()
        return True

    def _changed(self) -> None:
        self._on_events()
        self.wake()

    async def one_pass(self) -> float:
        """Announce suspensions that ran out, and keep the homeserver in line; wait until the
        next one runs out."""
        await self.tidy()
        next_end = await self._store.next_end()
        if next_end is None:
            return IDLE_SECONDS
        return min(IDLE_SECONDS, max(0.05, (next_end - datetime.now(UTC)).total_seconds()))

    async def tidy(self) -> None:
        """One pass: lift what ran out, then suspend or unsuspend accounts on the homeserver."""
        now = datetime.now(UTC)
        for ended in await self._store.ran_out(now):
            lifted = UserUnsuspended(ended.user_id, self._ids.user_id(ended.user_id), None, now)
            if await self._store.lift(lifted, now):
                log.info("the suspension of %s ran out", ended.user_id)
                self._on_events()
        if self._admin is None:
            return
        for suspension in await self._store.homeserver_behind(datetime.now(UTC)):
            wanted = suspension.in_force(datetime.now(UTC))
            user = self._ids.user_id(suspension.user_id)
            try:
                supported = await self._admin.suspend(user, wanted)
            except HomeserverError as exc:
                log.warning("the homeserver refused to (un)suspend %s: %s", user, exc)
                supported = False
            if not supported:
                log.warning(
                    "the homeserver can't suspend %s: only the bridge refuses their messages", user
                )
            # Recorded either way, so a refusal isn't retried for ever.
            await self._store.set_homeserver_suspended(suspension.user_id, wanted)
