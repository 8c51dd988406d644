"""Tutors' stated availability: shown in words, and a polite notice to a student who writes
outside the hours.

The notices follow the event log (every `message.created`, from the LMS or a Matrix client), so
they never hold up a send and none is lost to a restart: the worker's place in the log is
stored. At most one notice per conversation per day of the tutor's calendar; the message itself
is delivered as usual.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from bridge.contract.roster import AvailabilityWords
from bridge.domain.availability import Availability, away_notice, describe, is_outside, local_day
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import HomeserverClient, HomeserverError, new_txn_id
from bridge.services.workers import PassWorker
from bridge.store.availability import AvailabilityNoticeRepository, NoticeRecord
from bridge.store.conversations import ConversationRepository
from bridge.store.events import EventLogRepository, LoggedEvent
from bridge.store.messages import MessageRepository
from bridge.store.roster import RosterRepository, UserRecord

log = logging.getLogger(__name__)
CURSOR = "availability"
BATCH = 200
CURSOR_SAVE_SECONDS = 5.0


def stated_hours(stored: str | None, home_zone: str | None) -> AvailabilityWords | None:
    """A tutor's stored availability in words (None when they stated none); hours without a
    zone of their own are read in `home_zone` (their institution's)."""
    availability = Availability.parse(stored)
    if availability is None:
        return None
    return AvailabilityWords(describe(availability, home_zone), availability.note)


def role_at_shared(person: UserRecord, other: UserRecord) -> str | None:
    """`person`'s role at an institution both belong to."""
    theirs = {institution for institution, _role in other.memberships}
    for institution, role in person.memberships:
        if institution in theirs:
            return role
    return None


class AvailabilityNotices(PassWorker):
    """Reads new messages from the event log, records the notices due, and posts them."""

    waiting_work = "tutors' out-of-hours notices"

    def __init__(
        self,
        event_log: EventLogRepository,
        notices: AvailabilityNoticeRepository,
        conversations: ConversationRepository,
        messages: MessageRepository,
        roster: RosterRepository,
        client: HomeserverClient,
        ids: MatrixIdMapper,
        bot_user_id: str,
        on_events: Callable[[], None],
    ) -> None:
        super().__init__()
        self._log = event_log
        self._notices = notices
        self._conversations = conversations
        self._messages = messages
        self._roster = roster
        self._client = client
        self._ids = ids
        self._bot = bot_user_id
        self._on_events = on_events
        self._cursor: int | None = None  # how far this process has decided
        self._saved: int | None = None  # how far the database says
        self._saved_at = 0.0
        self._unposted = True  # a notice may wait to be posted (after a start, or a failure)

    @property
    def position(self) -> int:
        """The last event of the log decided on (0 before the first pass)."""
        return self._cursor or 0

    async def one_pass(self) -> float:
        """Decide on the messages the log gained, then post what is recorded."""
        now = time.monotonic()
        if self._cursor is None:
            stored = await self._log.cursor(CURSOR)
            if stored is None:  # first start: only messages from now on are answered
                stored = await self._log.last_seq()
                await self._log.move_cursor(CURSOR, stored, datetime.now(UTC))
            self._cursor = self._saved = stored
        batch = await self._notices.log_after(self._cursor, BATCH)
        for event, tutor_id in batch:
            # Most people state no hours: the page's read settles most messages.
            if tutor_id is not None and await self._consider(event, tutor_id):
                self._unposted = True
                self._on_events()
            self._cursor = event.seq
        # Deciding again after a restart is harmless (one notice a day is the table's rule), so
        # the place in the log is saved now and then, not after every message.
        if self._cursor != self._saved and (
            now - self._saved_at >= CURSOR_SAVE_SECONDS or self._wakeup.stopping
        ):
            await self._log.move_cursor(CURSOR, self._cursor, datetime.now(UTC))
            self._saved, self._saved_at = self._cursor, now
        if self._unposted:
            self._unposted = await self._post()
        if len(batch) == BATCH:
            return 0
        return CURSOR_SAVE_SECONDS if self._cursor == self._saved else 1.0

    async def _consider(self, event: LoggedEvent, tutor_id: str) -> bool:
        """Record a notice if `event`, a message to `tutor_id` (who states hours), is due one."""
        data = event.data
        conversation_id = str(data.get("conversation_id"))
        sender = await self._roster.get_user(str(data.get("sender")))
        tutor = await self._roster.get_user(tutor_id)
        if sender is None or tutor is None:
            return False
        if role_at_shared(sender, tutor) != "student" or role_at_shared(tutor, sender) != "tutor":
            return False
        availability = Availability.parse(tutor.availability)
        sent_at = datetime.fromisoformat(str(data["created_at"]))
        if availability is None:
            return False
        zone = (await self._roster.home_timezones([tutor.id])).get(tutor.id)
        if not is_outside(availability, sent_at, zone):
            return False
        notice = NoticeRecord(
            id=uuid.uuid4().hex,
            conversation_id=conversation_id,
            day=local_day(availability, sent_at, zone).isoformat(),
            student=sender.id,
            tutor=tutor.id,
            message_id=str(data["message_id"]),
            body=away_notice(tutor.display_name, availability, sent_at, zone),
            event_id=None,
            created_at=datetime.now(UTC),
        )
        return await self._notices.record(notice)

    async def _post(self) -> bool:
        """Post the recorded notices; True when some still wait."""
        waiting = False
        for notice in await self._notices.unposted(50):
            conversation = await self._conversations.get(notice.conversation_id)
            if conversation is None or conversation.room_id is None:
                waiting = True  # its room is being made
                continue
            message = await self._messages.get(notice.message_id)
            content: dict[str, object] = {
                "msgtype": "m.notice",
                "body": notice.body,
                "m.mentions": {"user_ids": [self._ids.user_id(notice.student)]},
            }
            if message is not None and message.event_id is not None:
                content["m.relates_to"] = {"m.in_reply_to": {"event_id": message.event_id}}
            try:
                event_id = await self._client.intent(self._bot).send_message(
                    conversation.room_id, content, new_txn_id("away", notice.id)
                )
            except HomeserverError as exc:
                # Refused for good (a frozen room, say): the page and the LMS still have it.
                log.warning("out-of-hours notice %s not posted in Matrix: %s", notice.id, exc)
                event_id = ""
            await self._notices.mark_posted(notice.id, event_id)
        return waiting
