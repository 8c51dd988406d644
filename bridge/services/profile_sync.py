"""Makes bridged accounts and keeps their Matrix profiles in line with the roster, off the API's
request path.

Roster writes queue people new to the roster (their account is registered with the roster's
name and avatar, so that starting a conversation with them waits for no account work) and people
with an account whose name or photo changed; this worker drains the queue. The queue is a
table, so nothing is forgotten across restarts, and a person changed again while being synced
stays queued.
"""

from __future__ import annotations

import logging

from bridge.matrix.client import HomeserverError, HomeserverUnreachable
from bridge.services.accounts import AccountService
from bridge.services.workers import Backoff, Wakeup
from bridge.store.roster import RosterRepository

log = logging.getLogger(__name__)


class ProfileSyncWorker:
    """Drains the profile sync queue; backs off while the homeserver is unreachable."""

    def __init__(self, roster: RosterRepository, accounts: AccountService) -> None:
        self._roster = roster
        self._accounts = accounts
        self._wakeup = Wakeup()

    def wake(self) -> None:
        """Signal that people were queued."""
        self._wakeup.set()

    def stop(self) -> None:
        """Return from `run()` after the person in hand."""
        self._wakeup.stop()

    async def run(self) -> None:
        """Sync queued profiles until stopped."""
        backoff = Backoff(1.0, 60.0)
        while not self._wakeup.stopping:
            self._wakeup.clear()
            try:
                synced = await self.sync_queued()
                backoff.succeeded()
            except (HomeserverUnreachable, HomeserverError) as exc:
                delay = backoff.failed()
                log.warning("profile sync paused for %.0fs: %s", delay, exc)
                await self._wakeup.pause(delay)
                continue
            except Exception:
                log.exception("profile sync failed; retrying shortly")
                await self._wakeup.pause(5)
                continue
            if not synced and not self._wakeup.stopping:
                await self._wakeup.wait(30)

    async def sync_queued(self, limit: int = 50) -> int:
        """Sync up to `limit` queued people; returns how many."""
        queued = await self._roster.next_profile_syncs(limit)
        people = await self._roster.people(user_id for user_id, _ in queued)
        for user_id, queued_at in queued:
            if self._wakeup.stopping:
                break
            person = people.get(user_id)
            if person is not None:
                try:
                    await self._accounts.sync_profile(
                        user_id, person.display_name, person.avatar_url
                    )
                except HomeserverError as exc:
                    # The homeserver refuses this profile (not a passing fault): don't let one
                    # person hold up everyone else's sync.
                    log.error("could not sync the Matrix profile of %s: %s", user_id, exc)
            await self._roster.profile_synced(user_id, queued_at)
        return len(queued)
