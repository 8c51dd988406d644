"""The one shape of background work, and what workers and request handlers share.

Every background worker of the bridge (inbound processing, the outbox, webhooks, profile sync,
conversation states, the roster watch, catching up, pruning) is a `run()` that loops until its
`stop()`: woken by a `Wakeup` when there is work, waiting on its own schedule otherwise, backing
off with a `Backoff` while something it needs is away. The `Supervisor` starts them all, keeps
one that fails unexpectedly running (after a pause, with the error logged), and stops them
together, giving those with work in hand time to finish it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)
# How often an idle worker looks for work another process (an operator) put in the database.
IDLE_LOOK_SECONDS = 5.0


class Wakeup:
    """Tells a worker's loop that there is work, or that it should stop."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.stopping = False

    def set(self) -> None:
        """There is work: end the current wait."""
        self._event.set()

    def stop(self) -> None:
        """End the loop (after the work in hand)."""
        self.stopping = True
        self._event.set()

    def clear(self) -> None:
        """Called at the top of each pass: wake-ups from now on count for the next wait."""
        self._event.clear()

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


@dataclass(frozen=True)
class _Job:
    name: str
    run: Callable[[], Awaitable[None]]
    stop: Callable[[], None]
    finishes_work: bool


class Supervisor:
    """Runs the bridge's background workers side by side."""

    def __init__(self) -> None:
        self._jobs: list[_Job] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def add(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        stop: Callable[[], None],
        *,
        finishes_work: bool = False,
    ) -> None:
        """A worker to start with the others. With `finishes_work`, stopping waits (up to the
        grace period) for the work in hand, such as an event being handled or a message being
        sent; the others are ended at once (they only wait, or redo their work after a restart).
        """
        self._jobs.append(_Job(name, run, stop, finishes_work))

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
        """Stop every worker; those with work in hand get up to `grace` seconds to finish it.
        Whatever is cut short stays in the database and is done after a restart."""
        self._stopping = True
        finishing = []
        for job in self._jobs:
            task = self._tasks.get(job.name)
            if task is None:
                continue
            if job.finishes_work:
                finishing.append(task)
            else:
                task.cancel()  # before its stop(): a woken worker could start something
        for job in self._jobs:
            job.stop()
        if finishing:
            await asyncio.wait(finishing, timeout=grace)
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
