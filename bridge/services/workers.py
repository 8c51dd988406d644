"""The one shape of background work, and what workers and request handlers share.

Every background worker of the bridge (inbound processing, the outbox, webhooks, profile sync,
conversation states, the roster watch, catching up, pruning, the moderators' side) is a `run()`
that loops until its `stop()`: woken by a `Wakeup` when there is work, waiting on its own
schedule otherwise, backing off with a `Backoff` while something it needs is away. Those whose
work is one pass at a time share `PassWorker`'s loop. The `Supervisor` starts them all, keeps
one that fails unexpectedly running (after a pause, with the error logged), and stops them
together, giving them time to finish the work in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridge.matrix.client import HomeserverUnreachable

log = logging.getLogger(__name__)
# How often an idle worker looks for work another process (an operator) put in the database.
IDLE_LOOK_SECONDS = 5.0


class Wakeup:
    """Tells a worker's loop that there is work, or that it should stop."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._stopped = asyncio.Event()
        self.stopping = False

    def set(self) -> None:
        """There is work: end the current wait."""
        self._event.set()

    def stop(self) -> None:
        """End the loop (after the work in hand)."""
        self.stopping = True
        self._event.set()
        self._stopped.set()

    def clear(self) -> None:
        """Called at the top of each pass: wake-ups from now on count for the next wait."""
        self._event.clear()

    async def pause(self, seconds: float) -> None:
        """A backoff pause: `seconds`, cut short only by `stop` (new work must not end it)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), timeout=seconds)

    async def wait(self, seconds: float) -> bool:
        """Until woken, at most `seconds`; True when woken."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=seconds)
            return True
        return False


class KeyedLocks:
    """One asyncio lock per key, dropped once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: str) -> asyncio.Lock:
        """The lock of `key`."""
        return self._locks.setdefault(key, asyncio.Lock())


class Backoff:
    """A pause that doubles with each failure in a row, up to a ceiling, and starts over after a
    success."""

    def __init__(self, first: float = 0.5, ceiling: float = 60.0) -> None:
        self._first = first
        self._ceiling = ceiling
        self._next = first

    def failed(self) -> float:
        """How long to pause after this failure."""
        delay, self._next = self._next, min(self._next * 2, self._ceiling)
        return delay

    def succeeded(self) -> None:
        """The next failure pauses briefly again."""
        self._next = self._first


class PassWorker:
    """A worker whose work comes one pass at a time: a pass runs when the worker is woken, or
    once the wait the previous pass asked for is over; while the homeserver is away, or a
    pass fails, the worker backs off and tries again."""

    waiting_work = "work"  # what waits while the homeserver is away, for the log

    def __init__(self) -> None:
        self._wakeup = Wakeup()

    def wake(self) -> None:
        """There is work."""
        self._wakeup.set()

    def stop(self) -> None:
        """Make `run` return."""
        self._wakeup.stop()

    async def one_pass(self) -> float:
        """Do what is due; returns how long to wait for the next pass (0: go on at once)."""
        raise NotImplementedError

    async def run(self) -> None:
        """Pass after pass, until stopped."""
        backoff = Backoff(first=1.0, ceiling=60.0)
        while not self._wakeup.stopping:
            self._wakeup.clear()
            try:
                wait = await self.one_pass()
            except HomeserverUnreachable as exc:
                log.info("homeserver away; %s waits: %s", self.waiting_work, exc)
                await self._wakeup.pause(backoff.failed())
                continue
            except Exception:
                log.exception("%s failed; trying again", self.waiting_work)
                await self._wakeup.pause(backoff.failed())
                continue
            backoff.succeeded()
            if wait > 0:
                await self._wakeup.wait(wait)


@dataclass(frozen=True)
class _Job:
    name: str
    run: Callable[[], Awaitable[None]]
    stop: Callable[[], None]


class Supervisor:
    """Runs the bridge's background workers side by side."""

    def __init__(self) -> None:
        self._jobs: list[_Job] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def add(self, name: str, run: Callable[[], Awaitable[None]], stop: Callable[[], None]) -> None:
        """A worker to start with the others: `run()` works until `stop()` is called."""
        self._jobs.append(_Job(name, run, stop))

    def start(self) -> None:
        """Start every worker."""
        self._stopping = False
        for job in self._jobs:
            self._tasks[job.name] = asyncio.create_task(self._keep_running(job), name=job.name)

    async def _keep_running(self, job: _Job) -> None:
        backoff = Backoff(1.0, 60.0)
        while not self._stopping:
            try:
                await job.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = backoff.failed()
                log.exception("worker %s failed; starting it again in %.0f s", job.name, delay)
                await asyncio.sleep(delay)

    async def stop(self, grace: float) -> None:
        """Stop every worker, giving each up to `grace` seconds to finish the work in hand (an
        event being handled, a message being sent, a database call: cut short, a call could
        leave its connection to be torn down after the database is closed). Whatever is still
        running then is cancelled; what it left undone stays in the database for the next start.
        """
        self._stopping = True
        for job in self._jobs:
            job.stop()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
