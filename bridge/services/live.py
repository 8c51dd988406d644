"""Live updates for open inbox pages, fed by the event log.

One reader tails the log for the whole bridge and hands each change to the open streams of the
people it concerns; a stream tells its page only what changed where (a conversation, a
message), and the page reads the change through its own authorised routes. A page that
reconnects names the last change it saw and gets everything after it from the log, so nothing
is missed between two connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.services.workers import PassWorker
from bridge.store.conversations import ConversationRepository
from bridge.store.events import EventLogRepository, LoggedEvent

log = logging.getLogger(__name__)
BATCH = 500
# How often the log is read when nothing woke the reader (changes made by another process).
POLL_SECONDS = 0.5
# A page further behind than this reloads instead of replaying the log.
MAX_REPLAY = 5_000
# Only the people these concern hear of them (a report to its reporter, a block to its sender).
_PERSONAL = {
    "report.created": ("report", "reporter"),
    "report.resolved": ("report", "reporter"),
    "message.blocked": ("sender",),
    "user.warned": ("user_id",),
    "user.suspended": ("user_id",),
    "user.unsuspended": ("user_id",),
}


@dataclass(frozen=True)
class Change:
    """What a page hears: the log's seq, the event's type, and where it happened."""

    seq: int
    type: str
    conversation_id: str | None
    message_id: str | None

    def data(self) -> dict[str, Any]:
        """The change as the stream sends it."""
        return {
            "type": self.type,
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
        }


class Stream:
    """One open page's stream of changes."""

    def __init__(self, user_id: str, session_id: str) -> None:
        self.user_id = user_id
        self.session_id = session_id
        self.ended = False
        self.session_ended = False  # False: the bridge is stopping, and the page reconnects
        self._queue: asyncio.Queue[Change | None] = asyncio.Queue()

    def put(self, change: Change) -> None:
        """Hand a change to the page."""
        self._queue.put_nowait(change)

    def end(self, session_ended: bool = True) -> None:
        """The stream stops after what it holds: the session ended, or the bridge stops."""
        self.ended = True
        self.session_ended = session_ended
        self._queue.put_nowait(None)

    async def next(self, wait_seconds: float) -> Change | None:
        """The next change, or None when there was none for `wait_seconds` or the stream ended
        (see `ended`)."""
        try:
            return await asyncio.wait_for(self._queue.get(), wait_seconds)
        except TimeoutError:
            return None


class LiveFeed(PassWorker):
    """Tails the event log and fans each change out to the streams of the people concerned."""

    waiting_work = "the inbox pages' live updates"

    def __init__(
        self, event_log: EventLogRepository, conversations: ConversationRepository
    ) -> None:
        super().__init__()
        self._log = event_log
        self._conversations = conversations
        self._cursor: int | None = None
        self._streams: dict[str, set[Stream]] = {}

    async def open(
        self, user_id: str, session_id: str, after: int | None
    ) -> tuple[Stream, list[Change] | None]:
        """A stream for a page, and the changes it missed since `after` (None: it should load
        everything again, having nothing to resume from or being too far behind)."""
        cursor = await self._position()
        stream = Stream(user_id, session_id)
        # Registered before the replay is read: what the reader finds from now on is queued,
        # and the replay covers only what it had already passed.
        self._streams.setdefault(user_id, set()).add(stream)
        if after is None or after > cursor or cursor - after > MAX_REPLAY:
            return stream, None
        missed: list[Change] = []
        seq = after
        while seq < cursor:
            batch = [e for e in await self._log.after(seq, BATCH) if e.seq <= cursor]
            if not batch:
                break
            for event in batch:
                if user_id in await self._audience(event):
                    missed.append(_change(event))
            seq = batch[-1].seq
        return stream, missed

    def close(self, stream: Stream) -> None:
        """The page went away."""
        streams = self._streams.get(stream.user_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[stream.user_id]

    def end_sessions(self, session_ids: Sequence[str]) -> None:
        """Stop the streams of ended sessions."""
        ended = set(session_ids)
        for streams in self._streams.values():
            for stream in streams:
                if stream.session_id in ended:
                    stream.end()

    def end_all(self) -> None:
        """The bridge is stopping: every stream ends now, so no page holds the stop up (pages
        reconnect, to this bridge once it is back or to another)."""
        for streams in self._streams.values():
            for stream in streams:
                stream.end(session_ended=False)

    @property
    def open_streams(self) -> int:
        """How many pages are listening now."""
        return sum(len(streams) for streams in self._streams.values())

    async def _position(self) -> int:
        if self._cursor is None:
            self._cursor = await self._log.last_seq()
        return self._cursor

    async def one_pass(self) -> float:
        """Read what the log gained and hand it out."""
        if not self._streams:
            # Nobody listens: nothing to read. The next page to open starts from the log's end.
            self._cursor = None
            return POLL_SECONDS
        cursor = await self._position()
        batch = await self._log.after(cursor, BATCH)
        for event in batch:
            for user_id in await self._audience(event):
                for stream in self._streams.get(user_id, ()):
                    stream.put(_change(event))
            self._cursor = event.seq
        return 0 if len(batch) == BATCH else POLL_SECONDS

    async def _audience(self, event: LoggedEvent) -> Iterable[str]:
        """The people an event concerns."""
        data = event.data
        path = _PERSONAL.get(event.type)
        if path is not None:
            value: Any = data
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            return (value,) if isinstance(value, str) else ()
        if event.type == "conversation.created":
            return data.get("participants") or ()
        conversation_id = data.get("conversation_id")
        if not isinstance(conversation_id, str):
            return ()
        return await self._conversations.pair_of(conversation_id) or ()


def _change(event: LoggedEvent) -> Change:
    data = event.data
    conversation_id = data.get("conversation_id")
    message_id = data.get("message_id")
    if conversation_id is None and isinstance(data.get("report"), dict):
        conversation_id = data["report"].get("conversation_id")
        message_id = data["report"].get("message_id")
    return Change(
        event.seq,
        event.type,
        conversation_id if isinstance(conversation_id, str) else None,
        message_id if isinstance(message_id, str) else None,
    )
