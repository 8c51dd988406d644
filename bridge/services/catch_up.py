"""Catching up from room history: what the homeserver stored but never sent.

Synapse can lose events on their way to the bridge: when it is killed between storing an event
and making its transaction, or when a race in its recovery leaves a transaction unsent until its
next outage. The bot is in every conversation room, so after each gap in contact (the bridge
starting, the homeserver coming back) it reads every conversation room's history back to a
little before the gap and stores what the bridge does not have; the inbox keeps each event id
once, so nothing is handled twice. A second pass a little later catches what the homeserver's
own recovery leaves behind as it finishes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.matrix.client import HomeserverClient, HomeserverError, HomeserverUnreachable
from bridge.services.workers import Wakeup
from bridge.store.conversations import ConversationRecord, ConversationRepository
from bridge.store.inbox import InboxRepository, NewEvent

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGES = 10  # per room and pass: a room that busy is caught up to its last 1,000 events
# Before the gap: clocks differ a little, and events were in flight when contact was lost.
MARGIN = timedelta(minutes=2)
CONCURRENCY = 8  # rooms read at once


class HistoryCatchUp:
    """The worker that watches for gaps in contact and catches up after each."""

    def __init__(
        self,
        conversations: ConversationRepository,
        inbox: InboxRepository,
        client: HomeserverClient,
        bot_user_id: str,
        on_stored: Callable[[], None],
        *,
        retention: timedelta,
        settle_seconds: float = 20.0,
        check_seconds: float = 1.0,
    ) -> None:
        self._conversations = conversations
        self._inbox = inbox
        self._client = client
        self._bot = bot_user_id
        self._on_stored = on_stored
        self._retention = retention
        self._settle = settle_seconds
        self._check = check_seconds
        self._wakeup = Wakeup()
        # Passes to make: (when, by the monotonic clock; how far back).
        self._due: list[tuple[float, datetime]] = []
        self._unscheduled = True  # the start's own passes are not yet known
        self._running = False

    @property
    def passes_waiting(self) -> int:
        """History passes scheduled or under way (0 once the bridge has caught up)."""
        return len(self._due) + int(self._running) + int(self._unscheduled)

    def stop(self) -> None:
        """Make `run` return."""
        self._wakeup.stop()

    def _schedule(self, horizon: datetime) -> None:
        now = time.monotonic()
        self._due += [(now, horizon), (now + self._settle, horizon)]

    async def run(self) -> None:
        """Catch up after start-up, then after every time the homeserver was unreachable."""
        last_received = await self._inbox.last_received_at()
        if last_received is not None:  # a new bridge has nothing to catch up on
            self._schedule(last_received - MARGIN)
        self._unscheduled = False
        reachable, last_contact = True, datetime.now(UTC)
        seen_failure = self._client.last_unreachable
        while not self._wakeup.stopping:
            self._wakeup.clear()
            await self._run_due()
            contact = await self._reachable()
            # Any request that failed to reach the homeserver counts too: a quick restart may
            # fall between two checks.
            failed = self._client.last_unreachable
            if failed is not None and failed != seen_failure:
                seen_failure = failed
                reachable = reachable and not contact
            if contact and not reachable:
                log.info("the homeserver is back: catching up from %s", last_contact.isoformat())
                self._schedule(last_contact - MARGIN)
            elif contact:
                last_contact = datetime.now(UTC)
            reachable = contact
            until_due = min((when for when, _ in self._due), default=float("inf"))
            await self._wakeup.wait(max(0.0, min(self._check, until_due - time.monotonic())))

    async def _reachable(self) -> bool:
        try:
            await self._client.versions()
        except (HomeserverUnreachable, HomeserverError):
            return False
        return True

    async def _run_due(self) -> None:
        now = time.monotonic()
        due = [horizon for when, horizon in self._due if when <= now]
        if not due:
            return
        self._due = [(when, horizon) for when, horizon in self._due if when > now]
        horizon = min(due)
        self._running = True
        try:
            await self.catch_up(horizon)
        except HomeserverUnreachable as exc:
            log.warning("catching up waits for the homeserver: %s", exc)
            self._due.append((now + self._check, horizon))
        except Exception:
            log.exception("catching up from room history failed")
        finally:
            self._running = False

    async def catch_up(self, horizon: datetime) -> int:
        """Store the events of every conversation room since `horizon` that the bridge lacks;
        returns how many were missing."""
        # Never further back than the inbox keeps event ids: older ones could not be told apart.
        horizon = max(horizon, datetime.now(UTC) - self._retention + MARGIN)
        limit = asyncio.Semaphore(CONCURRENCY)
        found = 0
        after = ""
        while not self._wakeup.stopping:
            batch = await self._conversations.made(after, 500)
            if not batch:
                break
            rooms = [r for r in batch if r.room_id is not None and not r.encrypted]
            results = await asyncio.gather(
                *(self._room(record, horizon, limit) for record in rooms), return_exceptions=True
            )
            for record, result in zip(rooms, results, strict=True):
                if isinstance(result, HomeserverUnreachable):
                    raise result
                if isinstance(result, BaseException):
                    log.warning("conversation %s: history not read: %s", record.id, result)
                else:
                    found += result
            after = batch[-1].id
        if found:
            log.warning("caught up %d event(s) the homeserver had not sent", found)
            self._on_stored()
        return found

    async def _room(
        self, record: ConversationRecord, horizon: datetime, limit: asyncio.Semaphore
    ) -> int:
        assert record.room_id is not None
        horizon_ms = int(horizon.timestamp() * 1000)
        newest_first: list[NewEvent] = []
        token: str | None = None
        async with limit:
            for _ in range(MAX_PAGES):
                page = await self._client.room_messages(record.room_id, self._bot, PAGE_SIZE, token)
                chunk = page.get("chunk")
                reached = False
                for raw in chunk if isinstance(chunk, list) else []:
                    event = _history_event(raw, record.room_id)
                    if event is None:
                        continue
                    if int(raw.get("origin_server_ts", 0)) < horizon_ms:
                        reached = True
                        break
                    newest_first.append(event)
                token = page.get("end")
                if reached or not chunk or not isinstance(token, str):
                    break
        newest_first.reverse()
        return await self._inbox.store_events(newest_first, datetime.now(UTC))


def _history_event(raw: Any, room_id: str) -> NewEvent | None:
    """A timeline event from a history page, as the transaction stream would have brought it."""
    if not (
        isinstance(raw, dict)
        and isinstance(raw.get("event_id"), str)
        and isinstance(raw.get("type"), str)
        and isinstance(raw.get("origin_server_ts"), int)
    ):
        return None
    payload = {**raw, "room_id": room_id}
    return NewEvent(raw["event_id"], room_id, "timeline", raw["type"], payload)
