"""Forgetting what is no longer needed: transaction ids past the resend window, and events
handled longer ago than the retention (set-aside ones stay for an operator)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from bridge.services.workers import Wakeup
from bridge.store.inbox import InboxRepository

log = logging.getLogger(__name__)


class InboxPruner:
    """The worker that prunes the inbox, at start-up and then at an interval."""

    def __init__(
        self,
        inbox: InboxRepository,
        dedupe_window: timedelta,
        retention: timedelta,
        every_seconds: float = 3600.0,
    ) -> None:
        self._inbox = inbox
        self._window = dedupe_window
        self._retention = retention
        self._every = every_seconds
        self._wakeup = Wakeup()

    def stop(self) -> None:
        """Make `run` return."""
        self._wakeup.stop()

    async def run(self) -> None:
        """Prune now, then every interval, until stopped."""
        while not self._wakeup.stopping:
            try:
                await self.prune()
            except Exception:
                log.exception("pruning the inbox failed; trying again at the next interval")
            await self._wakeup.wait(self._every)

    async def prune(self) -> None:
        """One pass."""
        now = datetime.now(UTC)
        await self._inbox.prune_transactions(now - self._window)
        await self._inbox.prune_processed(now - self._retention)
