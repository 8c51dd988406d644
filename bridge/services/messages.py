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
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge.config import MessagesConfig
from bridge.domain.contact_info import RuleSettings
from bridge.domain.content import (
    Attachment,
    attachment_content,
    clean_filename,
    kind_of_mimetype,
)
from bridge.domain.formatting import (
    MAX_CONTENT_BYTES,
    MarkdownRenderer,
    TextFormat,
    bridged,
    content_bytes,
    edit_content,
    message_content,
)
from bridge.domain.ids import MatrixIdMapper
from bridge.domain.text import is_blank
from bridge.matrix.client import (
    HomeserverClient,
    HomeserverError,
    HomeserverUnreachable,
    new_txn_id,
)
from bridge.services.content_rules import ContactInfoRule, RuleHit, guideline_notice
from bridge.services.policy import PolicyService
from bridge.services.refusals import Refused, no_such_conversation, no_such_message
from bridge.services.suspensions import refusal_for
from bridge.services.workers import IDLE_LOOK_SECONDS, KeyedLocks, Wakeup
from bridge.store.conversations import ConversationRecord, ConversationRepository
from bridge.store.messages import MessageRecord, MessageRepository
from bridge.store.standing import SenderStanding, StandingRepository

log = logging.getLogger(__name__)
# How long a send waits for older messages of its conversation before answering "queued".
WAIT_FOR_OLDER_SECONDS = 3.0
MAX_OUTBOX_DELAY_SECONDS = 5.0


@dataclass(frozen=True)
class FileUpload:
    """A file the LMS sends into a conversation."""

    name: str
    mimetype: str
    data: bytes
    caption: str | None = None


def _content(body: str, html: str | None, attachment: Attachment | None) -> dict[str, object]:
    if attachment is not None:
        return attachment_content(attachment, body if body != attachment.name else None)
    return message_content(body, html)


# Stand-ins as long as the real ids, for measuring an event before it is stored.
_LONGEST_ID = "0" * 32
_LONGEST_EVENT_ID = "$" + "0" * 43


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
        bot_user_id: str,
        standing: StandingRepository,
        rule: ContactInfoRule,
        *,
        on_rule_flag: Callable[[MessageRecord, RuleHit], Awaitable[object]],
        on_refused: Callable[[str, str], None] = lambda _user, _code: None,
        on_events: Callable[[], None] = lambda: None,
    ) -> None:
        self._standing = standing
        self._rule = rule
        self._on_rule_flag = on_rule_flag
        self._on_refused = on_refused
        self._messages = messages
        self._conversations = conversations
        self._policy = policy
        self._client = client
        self._ids = ids
        self._limits = limits
        self._bot = bot_user_id
        self._on_events = on_events
        self._rate = SendRateLimiter(limits.per_user_per_minute)
        self._markdown = MarkdownRenderer()
        self._lock = KeyedLocks()  # orders this process's sends, edits, deletions per conversation
        self._wakeup = Wakeup()
        # Whether the last send reached the homeserver: while it doesn't, a send behind older
        # queued messages answers "queued" at once instead of waiting for them.
        self._reachable = True
        self._sent = asyncio.Event()  # set (and replaced) each time a message is sent
        self._in_hand: set[str] = set()  # messages their own request is delivering

    async def send(
        self,
        conversation_id: str,
        sender: str,
        body: str,
        text_format: TextFormat,
        client_message_id: str,
        attachment: Attachment | None = None,
    ) -> tuple[MessageRecord, bool, RuleHit | None]:
        """Store and send a message (a text, or a file uploaded before with `body` its caption
        or name); returns (message, whether this call stored it, what the contact-info rule
        found when it let the message through).

        The message's `status` says "sent" (with its event id) or "queued". A repeat of a stored
        message returns it whatever happened since (a freeze, the rate limit).
        """
        standing = await self._standing.of_sender(
            conversation_id, sender, datetime.now(UTC), client_message_id
        )
        existing = standing.existing
        if existing is not None:
            changed = existing.revision == 0 and existing.body != body  # (edits change it)
            if existing.conversation_id != conversation_id or changed:
                raise Refused(
                    409,
                    "client_message_id_reused",
                    "This client_message_id was used for another message",
                    message_id=existing.id,
                )
            return existing, False, None
        conversation, rule = await self._admit(standing, conversation_id, sender)
        self._check_text(body)
        wait = self._rate.retry_after(sender, time.monotonic())
        if wait:
            self._on_refused(sender, "rate_limited")
            raise Refused(
                429,
                "rate_limited",
                f"Too many messages; try again in {wait:.0f} s",
                retry_after_seconds=round(wait, 1),
            )
        hit = self._check_rule(rule, sender, body)
        html = self._markdown.render(body) if text_format == "markdown" else None
        self._check_size(bridged(_content(body, html, attachment), _LONGEST_ID))
        record, created, behind = await self._messages.add_outgoing(
            conversation_id,
            sender,
            client_message_id,
            body,
            text_format,
            html,
            datetime.now(UTC),
            attachment,
        )
        if created:
            self._on_events()
        if record.status == "queued":
            record = await self._deliver_soon(record, conversation, created and not behind)
        if created and hit is not None:
            await self._after_rule(record, conversation, hit)
        return record, created, hit

    async def send_file(
        self,
        conversation_id: str,
        sender: str,
        client_message_id: str,
        upload: FileUpload,
    ) -> tuple[MessageRecord, bool, RuleHit | None]:
        """Upload a file the LMS sent to the homeserver's media repository as the sender, then
        send it like a message. Nothing is stored when the homeserver is unreachable (503: the
        LMS still has the file and sends it again)."""
        standing = await self._standing.of_sender(
            conversation_id, sender, datetime.now(UTC), client_message_id
        )
        if standing.existing is not None:
            return await self.send(
                conversation_id, sender, standing.existing.body, "plain", client_message_id
            )
        await self._admit(standing, conversation_id, sender)  # before uploading anything
        limit = self._limits.max_attachment_bytes
        if len(upload.data) > limit:
            raise Refused(
                413, "file_too_large", f"Files are limited to {limit:,} bytes", limit=limit
            )
        name = clean_filename(upload.name)
        mimetype = upload.mimetype if "/" in upload.mimetype else "application/octet-stream"
        try:
            mxc = await self._client.intent(self._ids.user_id(sender)).upload(
                upload.data, mimetype, name
            )
        except HomeserverUnreachable as exc:
            raise Refused(
                503,
                "homeserver_unavailable",
                "The homeserver can't take the file now; send it again shortly",
            ) from exc
        attachment = Attachment(kind_of_mimetype(mimetype), mxc, name, len(upload.data), mimetype)
        return await self.send(
            conversation_id,
            sender,
            upload.caption or name,
            "plain",
            client_message_id,
            attachment,
        )

    async def _deliver_soon(
        self, record: MessageRecord, conversation: ConversationRecord, first_in_line: bool
    ) -> MessageRecord:
        """Send now, or after the older messages the outbox is sending (for a short while:
        then the answer is "queued" and the outbox sends it in turn). `first_in_line`: just
        stored with nothing older waiting, so the outbox leaves it to this request."""
        deadline = time.monotonic() + WAIT_FOR_OLDER_SECONDS
        if first_in_line:
            self._in_hand.add(record.id)
        try:
            while True:
                current, behind_older = await self._deliver(record, conversation, first_in_line)
                first_in_line = False
                if current.status != "queued":
                    return current
                self._wakeup.set()  # the outbox takes it from here, or sends the older ones
                if not behind_older or not self._reachable or time.monotonic() > deadline:
                    return current
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._sent.wait(), timeout=0.5)
        finally:
            self._in_hand.discard(record.id)

    async def _open_conversation(
        self, conversation_id: str, sender: str
    ) -> tuple[ConversationRecord, RuleSettings | None]:
        """The conversation, if `sender` is in it and may write in it now, and the content-rule
        settings of the institution through which they may."""
        standing = await self._standing.of_sender(conversation_id, sender, datetime.now(UTC))
        return await self._admit(standing, conversation_id, sender)

    async def _admit(
        self, standing: SenderStanding, conversation_id: str, sender: str
    ) -> tuple[ConversationRecord, RuleSettings | None]:
        """`_open_conversation` on a standing read already."""
        conversation = standing.conversation
        if conversation is None:
            raise no_such_conversation(conversation_id)
        if not conversation.has(sender):
            raise Refused(403, "not_a_participant", "The sender is not part of this conversation")
        suspended = refusal_for(standing.suspension, datetime.now(UTC))
        if suspended is not None:
            self._on_refused(sender, "suspended")
            raise suspended
        if conversation.encrypted:
            raise Refused(
                409,
                "conversation_encrypted",
                "This conversation's Matrix room is encrypted, so the bridge can't carry it",
            )
        if conversation.room_id is None or conversation.state == "creating":
            raise Refused(
                409, "conversation_not_ready", "This conversation's room is still being made"
            )
        decision = await self._policy.can_converse(
            sender, conversation.other(sender), standing.facts
        )
        if not decision.allowed:
            self._on_refused(sender, "not_allowed")
            raise Refused(403, "not_allowed", decision.reason, reason_code=decision.code)
        return conversation, decision.rule

    def _check_rule(self, rule: RuleSettings | None, sender: str, body: str) -> RuleHit | None:
        """What the contact-info rule says; a block is the API's 422 `contact_info`."""
        hit = self._rule.check(rule, body)
        if hit is not None and hit.mode == "block":
            self._on_refused(sender, "contact_info")
            raise Refused(
                422,
                "contact_info",
                f"This message contains {hit.what}: please don't share personal contact "
                "information here",
                found=[
                    {"kind": m.kind, "text": m.text, "start": m.start, "end": m.end}
                    for m in hit.matches
                ],
            )
        return hit

    async def _after_rule(
        self, record: MessageRecord, conversation: ConversationRecord, hit: RuleHit
    ) -> None:
        """A message the rule let through: reported (flag), or the sender told (warn)."""
        if hit.mode == "flag":
            await self._on_rule_flag(record, hit)
            return
        assert conversation.room_id is not None
        content: dict[str, object] = {
            "msgtype": "m.notice",
            "body": guideline_notice(hit, blocked=False),
            "m.mentions": {"user_ids": [self._ids.user_id(record.sender)]},
        }
        if record.event_id is not None:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": record.event_id}}
        try:
            await self._client.intent(self._bot).send_message(
                conversation.room_id,
                content,
                new_txn_id("guideline", f"{record.id}.{record.revision}"),
            )
        except (HomeserverError, HomeserverUnreachable) as exc:
            log.warning("guideline notice about message %s not posted: %s", record.id, exc)

    def _check_text(self, body: str) -> None:
        if len(body) > self._limits.max_body_chars:
            raise Refused(
                413,
                "body_too_long",
                f"Messages are limited to {self._limits.max_body_chars} characters",
                limit=self._limits.max_body_chars,
            )
        if is_blank(body):
            raise Refused(400, "invalid_field", "body: expected a non-empty text", field="body")

    @staticmethod
    def _check_size(content: dict[str, object]) -> None:
        """Refuse what the homeserver would refuse: an event too large once rendered."""
        size = content_bytes(content)
        if size > MAX_CONTENT_BYTES:
            raise Refused(
                413,
                "message_too_large",
                f"This message would be {size:,} bytes on Matrix, more than the "
                f"{MAX_CONTENT_BYTES:,} allowed: shorten it or use less formatting",
                limit_bytes=MAX_CONTENT_BYTES,
            )

    async def _own_message(
        self, message_id: str, user: str, *, deleted_ok: bool = False
    ) -> MessageRecord:
        record = await self._messages.get(message_id)
        if record is None or (record.deleted_at is not None and not deleted_ok):
            raise no_such_message(message_id)
        if record.sender != user:
            raise Refused(403, "not_the_sender", "Only the sender can change or delete a message")
        return record

    async def edit(
        self, message_id: str, user: str, body: str, text_format: TextFormat
    ) -> tuple[MessageRecord, RuleHit | None]:
        """Change the text of one's own message; Matrix gets an `m.replace` edit.

        The result's `pending` is "edit" while the homeserver is unreachable (the outbox
        sends it later).
        """
        record = await self._own_message(message_id, user)
        if record.attachment is not None:
            raise Refused(409, "not_editable", "A message carrying a file can't be edited")
        conversation, rule = await self._open_conversation(record.conversation_id, user)
        self._check_text(body)
        hit = self._check_rule(rule, user, body)
        html = self._markdown.render(body) if text_format == "markdown" else None
        self._check_size(bridged(edit_content(_LONGEST_EVENT_ID, body, html), _LONGEST_ID))
        # Under the conversation's lock: a send or sync in flight finishes first.
        async with self._lock(record.conversation_id):
            edited = await self._messages.edit_outgoing(
                message_id, body, html, text_format, datetime.now(UTC)
            )
        assert edited is not None
        if edited.revision != record.revision:
            self._on_events()
        synced = await self._sync_now(edited) if edited.pending else edited
        if hit is not None and edited.revision != record.revision:
            await self._after_rule(synced, conversation, hit)
        return synced, hit

    async def delete(self, message_id: str, user: str) -> MessageRecord:
        """Delete one's own message (also in a read-only conversation); Matrix gets a redaction.

        Deleting a deleted message again answers with it (a retried request).
        """
        record = await self._own_message(message_id, user, deleted_ok=True)
        if record.deleted_at is not None:
            return record
        async with self._lock(record.conversation_id):
            deleted = await self._messages.delete_outgoing(message_id, datetime.now(UTC))
        assert deleted is not None
        self._on_events()
        return await self._sync_now(deleted) if deleted.pending else deleted

    async def remove(self, message_id: str, moderator: str, note: str | None) -> MessageRecord:
        """A moderator removes a message: deleted for the LMS (`message.deleted` names the
        moderator) and redacted in Matrix by the bot, at once or by the outbox later."""
        record = await self._messages.get(message_id)
        if record is None:
            raise no_such_message(message_id)
        if record.deleted_at is not None:
            return record
        async with self._lock(record.conversation_id):
            deleted = await self._messages.delete_outgoing(
                message_id, datetime.now(UTC), moderator=moderator
            )
            assert deleted is not None
            self._on_events()
            conversation = await self._conversations.get(record.conversation_id)
            if deleted.pending != "redact" or conversation is None or not conversation.room_id:
                return deleted
            assert deleted.event_id is not None
            reason = "Removed by a moderator" + (f": {note}" if note else "")
            try:
                await self._client.intent(self._bot).redact(
                    conversation.room_id,
                    deleted.event_id,
                    reason,
                    new_txn_id("redact", deleted.id),
                )
            except (HomeserverUnreachable, HomeserverError) as exc:
                log.warning("removal of message %s waits for the outbox: %s", deleted.id, exc)
                self._wakeup.set()
                return deleted
            await self._messages.mark_synced(
                deleted.id, deleted.revision, "redact", None, datetime.now(UTC)
            )
        synced = await self._messages.get(message_id)
        assert synced is not None
        return synced

    async def _sync_now(self, record: MessageRecord) -> MessageRecord:
        synced = await self._sync(record)
        if synced.pending is not None:
            self._wakeup.set()  # the outbox retries it
        return synced

    async def _sync(self, record: MessageRecord) -> MessageRecord:
        """Give Matrix a pending edit or redaction of a sent message."""
        async with self._lock(record.conversation_id):
            current = await self._messages.get(record.id)
            conversation = await self._conversations.get(record.conversation_id)
            if current is None or current.pending is None or current.event_id is None:
                return current or record
            assert conversation is not None and conversation.room_id is not None
            sender = self._ids.user_id(current.sender)
            edit_event: str | None = None
            try:
                if current.pending == "redact":
                    await self._redact(conversation.room_id, current, sender)
                else:
                    edit_event = await self._client.intent(sender).send_event(
                        conversation.room_id,
                        "m.room.message",
                        bridged(
                            edit_content(current.event_id, current.body, current.html), current.id
                        ),
                        new_txn_id("edit", f"{current.id}.{current.revision}"),
                    )
            except HomeserverUnreachable as exc:
                log.warning("%s of message %s waits: %s", current.pending, current.id, exc)
                return current
            except HomeserverError as exc:
                # Refused for good (e.g. the room was frozen meanwhile): the LMS keeps the
                # change; Matrix keeps the earlier text.
                log.warning("%s of message %s refused: %s", current.pending, current.id, exc)
            await self._messages.mark_synced(
                current.id,
                current.revision,
                current.pending,
                (edit_event, current) if edit_event is not None else None,
                datetime.now(UTC),
            )
        synced = await self._messages.get(record.id)
        assert synced is not None
        return synced

    async def _redact(self, room_id: str, record: MessageRecord, sender: str) -> None:
        assert record.event_id is not None
        txn = new_txn_id("redact", record.id)
        try:
            await self._client.intent(sender).redact(room_id, record.event_id, None, txn)
        except HomeserverError as exc:
            if exc.status != 403:
                raise
            # A frozen room: people can't redact there, the bot can.
            await self._client.intent(self._bot).redact(
                room_id, record.event_id, "Deleted by its sender", txn
            )

    async def _deliver(
        self, record: MessageRecord, conversation: ConversationRecord, first_in_line: bool = False
    ) -> tuple[MessageRecord, bool]:
        """Send one queued message unless an older one of its conversation still waits
        (`first_in_line`: known not to, and still queued).

        Returns the message as it now is, and whether it waits behind an older one.
        """
        async with self._lock(record.conversation_id):
            first = (
                record
                if first_in_line
                else await self._messages.first_queued(record.conversation_id)
            )
            if first is None or first.seq > record.seq:
                current = await self._messages.get(record.id)  # sent, withdrawn or failed
                assert current is not None
                return current, False
            if first.id != record.id:
                return record, True  # the outbox sends the older ones first
            current = first
            assert conversation.room_id is not None
            try:
                event_id = await self._send(conversation.room_id, current)
            except HomeserverUnreachable as exc:
                log.warning("message %s queued: %s", record.id, exc)
                self._reachable = False
                return current, False
            except HomeserverError as exc:
                # Overload, or a registration the homeserver hasn't loaded: try again later.
                if exc.status >= 500 or exc.status in (401, 429):
                    log.warning("message %s queued: %s", record.id, exc)
                    self._reachable = False
                    return current, False
                log.error("message %s refused by the homeserver: %s", record.id, exc)
                await self._messages.mark_failed(
                    record.id,
                    f"The homeserver refused the message ({exc.errcode or exc.status})",
                    datetime.now(UTC),
                )
                self._on_events()
                failed = await self._messages.get(record.id)
                assert failed is not None
                return failed, False
            self._reachable = True
            sent = await self._messages.mark_sent(
                record.id, event_id, current.revision, datetime.now(UTC)
            )
            # Wake the sends waiting behind this one.
            self._sent.set()
            self._sent = asyncio.Event()
        return sent, False

    async def _send(self, room_id: str, record: MessageRecord) -> str:
        sender = self._ids.user_id(record.sender)
        content = bridged(_content(record.body, record.html, record.attachment), record.id)
        txn = new_txn_id("msg", record.id)
        try:
            return await self._client.intent(sender).send_message(room_id, content, txn)
        except HomeserverError as exc:
            if exc.status != 403:
                raise
            # The person may have left the room from a client: the bot brings them back.
            await self._client.intent(self._bot).invite(room_id, sender)
            await self._client.intent(sender).join(room_id)
            return await self._client.intent(sender).send_message(room_id, content, txn)

    def stop(self) -> None:
        """Make `run_outbox` return."""
        self._wakeup.stop()

    async def run_outbox(self) -> None:
        """Send queued messages, oldest first, backing off while the homeserver is away."""
        delay = 0.5
        while not self._wakeup.stopping:
            try:
                delay = await self._outbox_pass(delay)
            except Exception:
                log.exception("the outbox failed; retrying in %.0f s", delay)
                await self._wakeup.pause(delay)
                delay = min(delay * 2, MAX_OUTBOX_DELAY_SECONDS)

    async def _outbox_pass(self, delay: float) -> float:
        """One pass over the queue, then a wait; returns the backoff for the next pass."""
        self._wakeup.clear()
        queued = await self._messages.queued(200)
        blocked: set[str] = set()
        progress = False
        for record in queued:
            if self._wakeup.stopping or record.conversation_id in blocked:
                continue
            if record.id in self._in_hand:  # its own request is sending it
                blocked.add(record.conversation_id)
                continue
            conversation = await self._conversations.get(record.conversation_id)
            if conversation is None or conversation.room_id is None:
                blocked.add(record.conversation_id)
                continue
            sent, _ = await self._deliver(record, conversation)
            if sent.status != "queued":
                progress = True
            else:
                blocked.add(record.conversation_id)  # keep its order: retry later
        for change in await self._messages.pending_changes(200):  # edits, deletions
            if self._wakeup.stopping or change.conversation_id in blocked:
                continue
            synced = await self._sync(change)
            if synced.pending is None:
                progress = True
            else:
                blocked.add(change.conversation_id)
        if blocked and not progress:
            # Back off while the homeserver is away; a new request cuts the wait short.
            await self._wakeup.wait(delay)
            return min(delay * 2, MAX_OUTBOX_DELAY_SECONDS)
        if not blocked and len(queued) < 200:
            # Idle; a look now and then finds messages put back in line by another process.
            await self._wakeup.wait(IDLE_LOOK_SECONDS)
        return 0.5
