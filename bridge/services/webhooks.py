"""Delivers the event log to the LMS's webhook: in order, signed, retried until acknowledged.

The position is stored, so a restart resumes where delivery stopped; an event is sent again
only when the bridge stopped between the LMS's 2xx and storing it (receivers deduplicate by the
event's `id`).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import aiohttp

from bridge.contract.shapes import dump
from bridge.domain.signing import sign
from bridge.services.workers import Backoff, Wakeup
from bridge.store.events import EventLogRepository, LoggedEvent

log = logging.getLogger(__name__)
_PAGE = 100  # events read at a time


class WebhookDelivery:
    """The delivery worker (idle when no webhook URL is configured)."""

    def __init__(
        self,
        events: EventLogRepository,
        url: str | None,
        secret: str,
        *,
        max_delay: float = 60.0,
    ) -> None:
        self._events = events
        self._url = url
        self._secret = secret
        self._max_delay = max_delay
        self._wakeup = Wakeup()

    def wake(self) -> None:
        """Signal that events were appended."""
        self._wakeup.set()

    def stop(self) -> None:
        """Return from `run()` after the request in hand."""
        self._wakeup.stop()

    async def run(self) -> None:
        """Deliver until stopped."""
        if not self._url:
            return
        backoff = Backoff(0.5, self._max_delay)
        # Only this worker moves the position: it is read once and then kept here.
        position = await self._events.delivered_up_to()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            self._wakeup.clear()
            pending = await self._events.after(position, _PAGE)
            while not self._wakeup.stopping:
                if not pending:
                    # All there was is delivered: wait for an append (one made since the last
                    # read has woken the worker already, so the wait ends at once).
                    await self._wakeup.wait(2)
                    self._wakeup.clear()
                    pending = await self._events.after(position, _PAGE)
                    continue
                following: list[LoggedEvent] = []
                for event in pending:
                    if self._wakeup.stopping:
                        return
                    if not await self._post(session, event):
                        break
                    last = event is pending[-1]
                    if last:
                        self._wakeup.clear()  # before the next page is read
                    # The page's last event is marked in the unit that reads the next page.
                    following = await self._events.mark_delivered(
                        event.seq, datetime.now(UTC), then_read=_PAGE if last else 0
                    )
                    position = event.seq
                    backoff.succeeded()
                else:
                    pending = following
                    continue
                await self._wakeup.pause(backoff.failed())  # the receiver refused or was away
                self._wakeup.clear()
                pending = await self._events.after(position, _PAGE)

    async def _post(self, session: aiohttp.ClientSession, event: LoggedEvent) -> bool:
        body = json.dumps(
            dump(event.envelope()), separators=(",", ":"), ensure_ascii=False
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Bridge-Signature": sign(self._secret, int(time.time()), body),
        }
        assert self._url is not None
        try:
            async with session.post(self._url, data=body, headers=headers) as response:
                if 200 <= response.status < 300:
                    return True
                log.warning("webhook answered %d for event %d", response.status, event.seq)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("webhook unreachable for event %d: %s", event.seq, exc)
        return False
