"""Read-only conversations: when neither side may start any more, the room is frozen.

Roster changes name the people they concern; their conversations are rechecked at once.
Changes to courses and batches, and the passing of time (an enrollment's end date), are caught
by a sweep of every conversation: at start-up, after such a change, and at a fixed interval
(kept by the clock, however busy the bridge is). Each check compares the room's real power levels
with the decision, not only the stored state: Matrix is changed first and the database second,
so a crash in between (or a room changed behind the bridge's back) is mended either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bridge.domain.rooms import power_levels_for_state
from bridge.matrix.client import (
    HomeserverClient,
    HomeserverError,
    HomeserverUnreachable,
    new_txn_id,
)
from bridge.services.policy import PolicyService, UnknownUser
from bridge.services.workers import Backoff, Wakeup
from bridge.store.conversations import ConversationRecord, ConversationRepository

log = logging.getLogger(__name__)
_NOTICES = {
    "read_only": (
        "This conversation is now read-only: there is no course relationship between you any "
        "more. Its history stays here."
    ),
    "active": "This conversation is open again.",
}


class ConversationLifecycle:
    """Keeps each conversation's state (active / read_only) in line with the policy."""

    def __init__(
        self,
        conversations: ConversationRepository,
        policy: PolicyService,
        client: HomeserverClient,
        bot_user_id: str,
        on_events: Callable[[], None] = lambda: None,
        sweep_interval: float = 3600.0,
    ) -> None:
        self._sweep_interval = sweep_interval
        self._conversations = conversations
        self._policy = policy
        self._client = client
        self._bot = bot_user_id
        self._on_events = on_events
        self._people: set[str] = set()
        self._sweep = True  # the first run checks everything
        self._wakeup = Wakeup()

    def roster_changed(self, people: set[str], everyone: bool) -> None:
        """Recheck the conversations of `people` (or all of them) soon."""
        self._people |= people
        self._sweep = self._sweep or everyone
        self._wakeup.set()

    def stop(self) -> None:
        """Make `run` return."""
        self._wakeup.stop()

    async def run(self) -> None:
        """Recheck what roster changes touched; sweep everything at the interval."""
        backoff = Backoff(1.0, 60.0)
        next_sweep = time.monotonic()  # the first pass sweeps
        while not self._wakeup.stopping:
            self._wakeup.clear()
            if time.monotonic() >= next_sweep:
                self._sweep = True
            people, self._people = self._people, set()
            sweep, self._sweep = self._sweep, False
            if sweep:
                next_sweep = time.monotonic() + self._sweep_interval
            try:
                if sweep:
                    await self._check_all()
                else:
                    for record in await self._conversations.involving(sorted(people)):
                        await self._recheck_one(record)
                backoff.succeeded()
            except Exception as exc:
                if isinstance(exc, HomeserverUnreachable):
                    log.warning("conversation states wait for the homeserver: %s", exc)
                else:
                    log.exception("checking conversation states failed; retrying with a sweep")
                    sweep = True
                # Nothing is forgotten: the same work is tried again after a pause.
                self._people |= people
                self._sweep = self._sweep or sweep
                await self._wakeup.pause(backoff.failed())
                continue
            await self._wakeup.wait(max(0.0, next_sweep - time.monotonic()))

    async def _check_all(self) -> None:
        after = ""
        while not self._wakeup.stopping:
            batch = await self._conversations.made(after, 500)
            if not batch:
                return
            for record in batch:
                await self._recheck_one(record)
            after = batch[-1].id

    async def _recheck_one(self, record: ConversationRecord) -> None:
        # One room the homeserver refuses to change (e.g. shut down by an admin) must not hold
        # back the others; an unreachable homeserver stops the pass (and it is retried).
        try:
            await self.recheck(record)
        except HomeserverError as exc:
            log.warning("conversation %s: state not brought in line: %s", record.id, exc)

    def check_soon(self, record: ConversationRecord) -> None:
        """Recheck a conversation that was just made (the roster may have changed meanwhile)."""
        self.roster_changed({record.user_a, record.user_b}, everyone=False)

    async def recheck(self, record: ConversationRecord) -> None:
        """Bring one conversation (and its room) in line with the policy."""
        try:
            decision = await self._policy.can_converse(record.user_a, record.user_b)
        except UnknownUser:
            return  # a person was removed; their conversations go with them
        state = "active" if decision.allowed else "read_only"
        if record.room_id is None or record.state == "creating":
            return
        bot = self._client.intent(self._bot)
        # The room itself, not only the stored state: they disagree after a crash between the
        # two writes below, or when the room was changed behind the bridge's back.
        levels = await bot.state(record.room_id, "m.room.power_levels")
        wanted = power_levels_for_state(levels, state)
        if wanted is not None:
            await bot.set_state(record.room_id, "m.room.power_levels", wanted)
            if state == record.state:
                log.warning("conversation %s: its room was not %s; mended", record.id, state)
        stored = await self._conversations.set_state(
            record.id, state, decision.code, decision.reason, datetime.now(UTC)
        )
        if stored:
            log.info("conversation %s is now %s (%s)", record.id, state, decision.code)
            self._on_events()
        if stored or wanted is not None:
            try:
                await bot.send_message(
                    record.room_id,
                    {"msgtype": "m.notice", "body": _NOTICES[state]},
                    new_txn_id("state"),
                )
            except HomeserverError as exc:
                log.warning("notice about conversation %s not posted: %s", record.id, exc)
