"""Alerts for the moderators: someone whose messages keep being refused (the rate limit, the
policy, a suspension, the contact-info rule) gets an alert card in the admin room, once an hour
at most, when the refusals within the last hour reach the configured threshold.

Refusals are counted in memory: an alert is about the last hour, which a restart only delays.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable

from bridge.services.workers import Wakeup

log = logging.getLogger(__name__)
WINDOW_SECONDS = 3600.0
_WORDS = {
    "rate_limited": "over the rate limit",
    "not_allowed": "refused by the policy",
    "suspended": "sent while suspended",
    "contact_info": "blocked for contact information",
}


class RefusalAlerts:
    """Counts refusals per person; the worker posts the alerts."""

    def __init__(
        self,
        threshold: int,
        post: Callable[[str, str], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
        tidy_seconds: float = 60.0,
    ) -> None:
        self._tidy_seconds = tidy_seconds
        self._threshold = threshold
        self._post = post  # (text, a key that makes the post once)
        self._clock = clock
        self._refusals: dict[str, deque[tuple[float, str]]] = {}
        self._alerted: dict[str, float] = {}
        self._due: list[tuple[str, Counter[str]]] = []
        self._wakeup = Wakeup()

    def refused(self, user_id: str, code: str) -> None:
        """One of `user_id`'s messages was refused, for `code`."""
        now = self._clock()
        recent = self._refusals.setdefault(user_id, deque(maxlen=self._threshold))
        recent.append((now, code))
        while recent and recent[0][0] < now - WINDOW_SECONDS:
            recent.popleft()
        last = self._alerted.get(user_id)
        if len(recent) < self._threshold or (last is not None and last > now - WINDOW_SECONDS):
            return
        self._alerted[user_id] = now
        self._due.append((user_id, Counter(code for _, code in recent)))
        self._wakeup.set()

    def _forget_quiet(self, now: float) -> None:
        """Drop people with nothing in the last hour, so the counts stay small (run by the
        worker at each pass, at least every `tidy_seconds`)."""
        for user_id in [u for u, r in self._refusals.items() if r[-1][0] < now - WINDOW_SECONDS]:
            del self._refusals[user_id]
        for user_id in [u for u, t in self._alerted.items() if t < now - WINDOW_SECONDS]:
            del self._alerted[user_id]

    def stop(self) -> None:
        """Make `run` return."""
        self._wakeup.stop()

    async def run(self) -> None:
        """Post the alerts that are due."""
        while not self._wakeup.stopping:
            self._wakeup.clear()
            self._forget_quiet(self._clock())
            due, self._due = self._due, []
            for user_id, codes in due:
                text = alert_text(user_id, codes)
                try:
                    await self._post(text, f"{user_id}.{int(self._clock())}")
                except Exception as exc:  # an alert is worth a try, not a retry loop
                    log.warning("alert about %s not posted: %s", user_id, exc)
            await self._wakeup.wait(self._tidy_seconds)


def alert_text(user_id: str, codes: Counter[str]) -> str:
    """The alert card about someone."""
    total = sum(codes.values())
    parts = ", ".join(f"{count} {_WORDS.get(code, code)}" for code, count in codes.most_common())
    return (
        f"⚠️ Alert: {total} messages of {user_id} were refused within the hour ({parts}). "
        f"See !whois {user_id}; !suspend {user_id} [days] [note] stops them."
    )
