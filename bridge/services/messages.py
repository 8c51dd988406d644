"""Messages from the LMS to Matrix: checked, stored, then sent in order, exactly once.

A message is stored before it is sent, under the sender's own client message id, so a retried
request never makes a second message. Its Matrix transaction id is derived from the stored id,
so a retried send (after a timeout) never makes a second event. When the homeserver is
unreachable the message stays queued and the outbox worker sends it, in order per conversation,
once the homeserver is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime

from bridge.config import MessagesConfig
from bridge.domain.formatting import MarkdownRenderer, TextFormat, message_content
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import HomeserverClient, HomeserverUnreachable, new_txn_id
from bridge.services.policy import PolicyService
from bridge.store.conversations import ConversationRecord, ConversationRepository
from bridge.store.messages import MessageRecord, MessageRepository

log = logging.getLogger(__name__)


class MessageRefused(Exception):
    """A message the bridge won't take; `status` and `code` are the API's answer."""

    def __init__(self, status: int, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class SendRateLimiter:
    """At most `per_minute` sends per person in any sliding minute (per bridge process)."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._sent: defaultdict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, person: str, now: float) -> float:
        """0 when the person may send now (and counts it), else the seconds to wait."""
        recent = self._sent[person]
        while recent and recent[0] <= now - 60:
            recent.popleft()
        if len(recent) >= self._per_minute:
            return 60 - (now - recent[0])
        recent.append(now)
        return 0.0


class MessageService:
    """Sends LMS messages into conversation rooms as the sender's Matrix account."""

    def __init__(
        self,
        messages: MessageRepository,
        conversations: ConversationRepository,
        policy: PolicyService,
        client: HomeserverClient,
        ids: MatrixIdMapper,
        limits: MessagesConfig,
        on_events: Callable[[], None] = lambda: None,
    ) -> None:
        self._messages = messages
        self._conversations = conversations
        self._policy = policy
        self._client = client
        self._ids = ids
        self._limits = limits
        self._on_events = on_events
        self._rate = SendRateLimiter(limits.per_user_per_minute)
        self._markdown = MarkdownRenderer()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._wake = asyncio.Event()
        self._stopping = False

    async def send(
        self,
        conversation_id: str,
        sender: str,
        body: str,
        text_format: TextFormat,
        client_message_id: str,
    ) -> tuple[MessageRecord, bool]:
        """Store and send a message; returns (message, whether this call stored it).

        The message's `status` says "sent" (with its event id) or "queued".
        """
        conversation = await self._conversations.get(conversation_id)
        if conversation is None:
            raise MessageRefused(
                404,
                "not_found",
                f"No conversation with id {conversation_id!r}",
                missing={"conversation_id": conversation_id},
            )
        if sender not in (conversation.user_a, conversation.user_b):
            raise MessageRefused(
                403, "not_a_participant", "The sender is not part of this conversation"
            )
        if conversation.state != "active" or conversation.room_id is None:
            raise MessageRefused(
                403, "conversation_not_active", "This conversation is not open for messages"
            )
        if len(body) > self._limits.max_body_chars:
            raise MessageRefused(
                413,
                "body_too_long",
                f"Messages are limited to {self._limits.max_body_chars} characters",
                limit=self._limits.max_body_chars,
            )
        if not body.strip():
            raise MessageRefused(
                400, "invalid_field", "body: expected a non-empty text", field="body"
            )
        other = conversation.user_b if sender == conversation.user_a else conversation.user_a
        decision = await self._policy.can_converse(sender, other)
        if not decision.allowed:
            raise MessageRefused(403, "not_allowed", decision.reason, reason_code=decision.code)
        wait = self._rate.retry_after(sender, time.monotonic())
        if wait:
            raise MessageRefused(
                429,
                "rate_limited",
                f"Too many messages; try again in {wait:.0f} s",
                retry_after_seconds=round(wait, 1),
            )
        html = self._markdown.render(body) if text_format == "markdown" else None
        record, created = await self._messages.add_outgoing(
            conversation_id,
            sender,
            client_message_id,
            body,
            text_format,
            html,
            datetime.now(UTC),
        )
        if created:
            self._on_events()
        if record.status == "queued":
            record = await self._deliver(record, conversation)
        return record, created

    async def _deliver(
        self, record: MessageRecord, conversation: ConversationRecord
    ) -> MessageRecord:
        """Send one queued message unless an older one of its conversation still waits."""
        lock = self._locks.setdefault(record.conversation_id, asyncio.Lock())
        async with lock:
            current = await self._messages.get(record.id)
            assert current is not None
            if current.status != "queued":
                return current
            if await self._messages.queued_before(record.conversation_id, record.seq):
                self._wake.set()  # the worker sends them in order
                return current
            assert conversation.room_id is not None
            try:
                event_id = await self._client.intent(self._ids.user_id(record.sender)).send_message(
                    conversation.room_id,
                    message_content(record.body, record.html),
                    new_txn_id("msg", record.id),
                )
            except HomeserverUnreachable as exc:
                log.warning("message %s queued: %s", record.id, exc)
                self._wake.set()
                return current
            await self._messages.mark_sent(record.id, event_id, datetime.now(UTC))
        sent = await self._messages.get(record.id)
        assert sent is not None
        return sent

    def stop(self) -> None:
        """Make `run_outbox` return."""
        self._stopping = True
        self._wake.set()

    async def run_outbox(self) -> None:
        """Send queued messages, oldest first, backing off while the homeserver is away."""
        delay = 0.5
        while not self._stopping:
            self._wake.clear()
            queued = await self._messages.queued(200)
            blocked: set[str] = set()
            progress = False
            for record in queued:
                if self._stopping or record.conversation_id in blocked:
                    continue
                conversation = await self._conversations.get(record.conversation_id)
                if conversation is None or conversation.room_id is None:
                    blocked.add(record.conversation_id)
                    continue
                sent = await self._deliver(record, conversation)
                if sent.status == "sent":
                    progress = True
                else:
                    blocked.add(record.conversation_id)  # keep its order: retry later
            if queued and not progress:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.5
            if not queued or not blocked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=30)
