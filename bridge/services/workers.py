"""What background workers and request handlers share: being woken or stopped, and one lock per
key (a conversation) within this process."""

from __future__ import annotations

import asyncio
import contextlib
import weakref


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
