"""The webhook worker reads the event log once per page, the next page in the same unit as the
last event's mark: after a page that left nothing it waits for the next wake-up rather than
reading again to find nothing, and an event appended while a page was being delivered is still
read and delivered at once (both databases)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web

from bridge.contract.events import ConversationStateChanged
from bridge.services.webhooks import WebhookDelivery
from bridge.store import migrate
from bridge.store.database import Database
from bridge.store.events import EventLogRepository, append_event
from tests.support.http import serve
from tests.support.waiting import eventually


class CountingLog(EventLogRepository):
    """The event log, counting its page reads."""

    reads = 0  # units that only read a page
    marked = 0

    async def after(self, seq: int, limit: int):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().after(seq, limit)

    async def mark_delivered(self, seq: int, now: datetime, then_read: int = 0):  # type: ignore[no-untyped-def]
        following = await super().mark_delivered(seq, now, then_read)
        self.marked += 1
        return following


def _now_true(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def poll() -> bool:
        return check()

    return poll


async def _append(db: Database, n: int) -> None:
    event = ConversationStateChanged("c", "active", "test", str(n))
    await db.write(lambda conn: append_event(conn, event, datetime.now(UTC)))


@pytest.fixture
async def delivering(
    db: Database,
) -> AsyncIterator[tuple[WebhookDelivery, CountingLog, list[int], asyncio.Event]]:
    await migrate.upgrade(db)
    received: list[int] = []
    hold = asyncio.Event()
    hold.set()

    async def handle(request: web.Request) -> web.Response:
        received.append((await request.json())["seq"])
        await hold.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner, port = await serve(app)
    log = CountingLog(db)
    worker = WebhookDelivery(log, f"http://127.0.0.1:{port}/hook", "secret")
    running = asyncio.create_task(worker.run())
    try:
        await eventually(_now_true(lambda: log.reads == 1), "the worker's first read")
        yield worker, log, received, hold
    finally:
        worker.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 10)
        await runner.cleanup()


async def test_a_short_page_is_read_once(
    db: Database,
    delivering: tuple[WebhookDelivery, CountingLog, list[int], asyncio.Event],
) -> None:
    worker, log, received, _hold = delivering
    for n in range(3):
        await _append(db, n)
    worker.wake()
    await eventually(_now_true(lambda: len(received) == 3), "three events delivered")
    await eventually(_now_true(lambda: log.marked == 3), "the three marked delivered")
    await _append(db, 3)  # a marker: read in the next page, once woken
    worker.wake()
    await eventually(_now_true(lambda: len(received) == 4), "the marker delivered")
    # the first (empty) read, the page of three, the marker's page (the reads that follow a
    # page's last event come with its mark): no read of its own found nothing
    assert log.reads == 3
    assert received == sorted(received)


async def test_the_next_page_comes_with_the_last_events_mark(
    db: Database,
    delivering: tuple[WebhookDelivery, CountingLog, list[int], asyncio.Event],
) -> None:
    worker, log, received, hold = delivering
    hold.clear()  # the receiver keeps the first delivery waiting
    for n in range(3):
        await _append(db, n)
    worker.wake()
    await eventually(_now_true(lambda: len(received) == 1), "the first event arriving")
    await _append(db, 3)  # after the page was read: in the next one (no wake-up needed)
    hold.set()
    await eventually(_now_true(lambda: len(received) == 4), "the next page delivered")
    # the first (empty) read and the page of three; the next page came with the third's mark
    assert log.reads == 2
    assert received == sorted(received)


async def test_an_event_appended_during_a_delivery_is_delivered_at_once(
    db: Database,
    delivering: tuple[WebhookDelivery, CountingLog, list[int], asyncio.Event],
) -> None:
    worker, _log, received, hold = delivering
    hold.clear()  # the receiver keeps the first delivery waiting
    await _append(db, 0)
    worker.wake()
    await eventually(_now_true(lambda: len(received) == 1), "the first event arriving")
    await _append(db, 1)
    worker.wake()
    hold.set()
    # well within the worker's idle wait of 2 s: the wake-up during the delivery counts
    await eventually(_now_true(lambda: len(received) == 2), "the second event", timeout=1.5)
