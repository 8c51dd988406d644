"""Roster changes made by other processes (an `import-oneroster` run, another bridge) reach this
bridge within seconds.

Every roster write bumps a version in the database in its own transaction, and the repository
remembers the versions it made. This worker reads the version (one single-row query) at an
interval; when it moved by a version this process did not make, someone else changed the roster
in ways nobody told this process about: every conversation is rechecked, and the profile sync
drains the queue the other writer filled. Polling works the same on SQLite and PostgreSQL, and a
missed wake-up can't lose a change: the next read still sees the version moved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bridge.services.workers import Wakeup
from bridge.store.roster import RosterRepository

log = logging.getLogger(__name__)


class RosterWatch:
    """Notices roster versions made elsewhere and triggers a full recheck."""

    def __init__(
        self,
        roster: RosterRepository,
        interval: float,
        on_policy_changed: Callable[[set[str], bool], None],
        on_profiles_changed: Callable[[], None],
    ) -> None:
        self._roster = roster
        self._interval = interval
        self._on_policy_changed = on_policy_changed
        self._on_profiles_changed = on_profiles_changed
        self._seen: int | None = None
        self._wakeup = Wakeup()

    async def prime(self) -> None:
        """Take the current version as the starting point.

        Call it before the start-up sweep begins: what was written before is that sweep's,
        what is written after is noticed here.
        """
        self._seen = await self._roster.version()

    def stop(self) -> None:
        """Make `run` return."""
        self._wakeup.stop()

    async def check(self) -> bool:
        """Read the version once; True (and the recheck triggered) when another process changed
        the roster since the last read."""
        current = await self._roster.version()
        seen, self._seen = self._seen, current
        if seen is None or current == seen:
            return False
        if not self._roster.written_elsewhere(seen, current):
            return False  # only this process's writes, which told the services themselves
        log.info("the roster was changed elsewhere (version %d → %d): rechecking", seen, current)
        self._on_policy_changed(set(), True)
        self._on_profiles_changed()
        return True

    async def run(self) -> None:
        """Check at the interval until stopped; a failing database is retried with a pause.

        Unprimed, the first check only takes the starting point.
        """
        delay = self._interval
        while True:
            await self._wakeup.wait(delay)  # only `stop` wakes it early
            if self._wakeup.stopping:
                return
            try:
                await self.check()
                delay = self._interval
            except Exception:
                delay = min(max(delay * 2, 1.0), 60.0)
                log.exception("reading the roster version failed; retrying in %.0fs", delay)
