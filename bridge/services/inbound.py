"""Processing of events received from the homeserver, after they were stored and acknowledged.

Events are processed in arrival order within each room (rooms run side by side). A handler that
fails is retried with a growing delay, holding back the rest of its room so order is kept; after
`max_attempts` the event is set aside as failed (kept with its error) and the room moves on, so one
strange event can never block a room for ever. Processing is at-least-once across crashes (an event
handled but not yet marked is handled again after a restart), so handlers must be idempotent,
which they achieve by keying their effects on the event id.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bridge.matrix.client import HomeserverClient
from bridge.services.workers import IDLE_LOOK_SECONDS, Wakeup
from bridge.store.inbox import InboxBatch, InboxRepository, NewEvent, StoredEvent

log = logging.getLogger(__name__)

Handler = Callable[[StoredEvent], Awaitable[None]]


def own_message_echo(client: HomeserverClient) -> Callable[[NewEvent], bool]:
    """Whether an event is a message the homeserver answered one of this process's sends with.

    Every room's message handler ignores those (the bridge never echoes its own sends), so they
    can be stored as processed. An echo that arrives before its send's answer is processed as
    usual, and found to be one from the bridge's records.
    """
    return lambda event: (
        event.event_type == "m.room.message" and client.sent_by_bridge(event.event_id)
    )


class EventDispatcher:
    """Routes a stored event to the handlers registered for its type."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._fallback: list[Handler] = []

    def on(self, event_type: str | None, handler: Handler) -> None:
        """Call `handler` for events of `event_type` (None: for every event)."""
        if event_type is None:
            self._fallback.append(handler)
        else:
            self._handlers[event_type].append(handler)

    async def dispatch(self, event: StoredEvent) -> None:
        """Run every handler for `event`, in registration order."""
        for handler in (*self._handlers.get(event.event_type, ()), *self._fallback):
            await handler(event)


def _idle_timeout(next_retry: datetime | None) -> float:
    # Also a look now and then for work put back in line by another process (an operator's
    # `lms-bridge failed retry`).
    if next_retry is None:
        return IDLE_LOOK_SECONDS
    return min(IDLE_LOOK_SECONDS, max(0.05, (next_retry - datetime.now(UTC)).total_seconds()))


class InboundProcessor:
    """The worker that drains the inbox."""

    def __init__(
        self,
        inbox: InboxRepository,
        dispatcher: EventDispatcher,
        *,
        batch_size: int = 500,
        max_attempts: int = 8,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
    ) -> None:
        self._inbox = inbox
        self._dispatcher = dispatcher
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._wakeup = Wakeup()

    def wake(self) -> None:
        """Signal that new events were stored."""
        self._wakeup.set()

    async def run(self) -> None:
        """Process until `stop()`; picks up whatever a previous run left unprocessed."""
        batch: InboxBatch | None = None  # read with the last batch's marks, when it was done
        while not self._wakeup.stopping:
            try:
                if batch is None:
                    self._wakeup.clear()
                    batch = await self._inbox.next_batch(datetime.now(UTC), self._batch_size)
                if not batch.events:
                    await self._wakeup.wait(_idle_timeout(batch.next_retry))
                    batch = None
                    continue
                _attempted, batch = await self._process(batch.events)
            except Exception:
                log.exception("inbound processing failed; retrying shortly")
                batch = None
                await self._wakeup.pause(1)

    def stop(self) -> None:
        """Finish the event in hand, then return from `run()`."""
        self._wakeup.stop()

    async def process_pending(self) -> int:
        """Process one batch of due events; returns how many were attempted."""
        batch = await self._inbox.next_batch(datetime.now(UTC), self._batch_size)
        attempted, _following = await self._process(batch.events)
        return attempted

    async def _process(self, events: list[StoredEvent]) -> tuple[int, InboxBatch]:
        """Process a batch: how many events were attempted, and the next batch, read in the
        unit that marks this one's events handled."""
        done: list[int] = []
        try:
            attempted = await self._run_lanes(events, done)
        except BaseException:
            await self._inbox.mark_processed(done, datetime.now(UTC))
            raise
        self._wakeup.clear()  # before the next batch is read: a later store wakes the worker
        # One write marks the whole batch: after a crash at most one batch is handled again,
        # which idempotent handlers absorb.
        return attempted, await self._inbox.next_batch(datetime.now(UTC), self._batch_size, done)

    async def _run_lanes(self, events: list[StoredEvent], done: list[int]) -> int:
        lanes: dict[str | None, list[StoredEvent]] = defaultdict(list)
        for event in events:
            lanes[event.room_id].append(event)
        # A storage error in one lane cancels the others, so no lane outlives the batch.
        async with asyncio.TaskGroup() as group:
            lane_tasks = [group.create_task(self._run_lane(lane, done)) for lane in lanes.values()]
        return sum(task.result() for task in lane_tasks)

    async def _run_lane(self, events: list[StoredEvent], done: list[int]) -> int:
        attempted = 0
        for event in events:
            if self._wakeup.stopping:
                break
            attempted += 1
            try:
                await self._dispatcher.dispatch(event)
            except Exception as exc:
                if not await self._handle_failure(event, exc):
                    break
                continue
            done.append(event.seq)
        return attempted

    async def _handle_failure(self, event: StoredEvent, exc: Exception) -> bool:
        """Record a failed attempt; True when the room may move on (the event was set aside)."""
        attempts = event.attempts + 1
        error = f"{exc.__class__.__name__}: {exc}"
        if attempts >= self._max_attempts:
            log.error(
                "giving up on event %s (%s) in %s after %d attempts: %s",
                event.event_id or event.seq,
                event.event_type,
                event.room_id,
                attempts,
                error,
            )
            await self._inbox.mark_failed(event.seq, attempts, error)
            return True
        delay = min(self._max_delay, self._base_delay * 2 ** (attempts - 1))
        log.warning(
            "event %s (%s) failed (attempt %d), retrying in %.0fs: %s",
            event.event_id or event.seq,
            event.event_type,
            attempts,
            delay,
            error,
        )
        when = datetime.now(UTC) + timedelta(seconds=delay)
        await self._inbox.mark_retry(event.seq, attempts, error, when)
        return False
