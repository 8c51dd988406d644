"""Repository of messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.contract.events import (
    MessageBlocked,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    MessageFailed,
    ReactionAdded,
    ReactionRemoved,
    attachment_info,
)
from bridge.contract.shapes import OMITTED
from bridge.contract.values import OriginName
from bridge.domain.content import Attachment
from bridge.store import prepared
from bridge.store.database import Database
from bridge.store.events import append_event
from bridge.store.schema import (
    blocked_events,
    conversations,
    message_edits,
    messages,
    reactions,
)


@dataclass(frozen=True)
class MessageRecord:
    """A stored message."""

    seq: int
    id: str
    conversation_id: str
    sender: str
    client_message_id: str | None
    body: str
    format: str
    html: str | None
    event_id: str | None
    status: str
    created_at: datetime
    revision: int
    edited_at: datetime | None
    deleted_at: datetime | None
    pending: str | None
    attachment_kind: str | None = None
    attachment_mxc: str | None = None
    attachment_name: str | None = None
    attachment_size: int | None = None
    attachment_mimetype: str | None = None

    @property
    def attachment(self) -> Attachment | None:
        """The file the message carries, if any."""
        if self.attachment_kind is None or self.attachment_mxc is None:
            return None
        return Attachment(
            kind=self.attachment_kind,
            mxc=self.attachment_mxc,
            name=self.attachment_name or "file",
            size=self.attachment_size,
            mimetype=self.attachment_mimetype,
        )


def _attachment_values(attachment: Attachment | None) -> dict[str, Any]:
    if attachment is None:
        return {}
    return {
        "attachment_kind": attachment.kind,
        "attachment_mxc": attachment.mxc,
        "attachment_name": attachment.name,
        "attachment_size": attachment.size,
        "attachment_mimetype": attachment.mimetype,
    }


_COLUMNS = (
    messages.c.seq,
    messages.c.id,
    messages.c.conversation_id,
    messages.c.sender,
    messages.c.client_message_id,
    messages.c.body,
    messages.c.format,
    messages.c.html,
    messages.c.event_id,
    messages.c.status,
    messages.c.created_at,
    messages.c.revision,
    messages.c.edited_at,
    messages.c.deleted_at,
    messages.c.pending,
    messages.c.attachment_kind,
    messages.c.attachment_mxc,
    messages.c.attachment_name,
    messages.c.attachment_size,
    messages.c.attachment_mimetype,
)


def _record(row: Any) -> MessageRecord:
    # SQLite hands back naive datetimes; everything stored is UTC.
    values = [
        v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for v in row
    ]
    return MessageRecord(*values)


def read_client_message(
    conn: Connection, sender: str, client_message_id: str
) -> MessageRecord | None:
    """(Within a unit of work.) The message an LMS request stored under its own id, if any."""
    row = prepared.first(
        conn, _BY_CLIENT_ID, {"sender": sender, "client_message_id": client_message_id}
    )
    return _record(row) if row else None


def read_event_message(conn: Connection, event_id: str) -> MessageRecord | None:
    """(Within a unit of work.) The message a Matrix event is, if it is one of ours."""
    row = prepared.first(conn, _BY_EVENT_ID, {"event_id": event_id})
    return _record(row) if row else None


def _edited(
    record: MessageRecord,
    origin: OriginName,
    body: str,
    text_format: str,
    html: str | None,
    now: datetime,
    **matrix_ids: str | None,
) -> MessageEdited:
    """The `message.edited` payload: the new text, and the Matrix events behind the change."""
    return MessageEdited(
        message_id=record.id,
        conversation_id=record.conversation_id,
        sender=record.sender,
        body=body,
        format=text_format,  # type: ignore[arg-type]
        html=html,
        origin=origin,
        edited_at=now,
        **matrix_ids,  # type: ignore[arg-type]
    )


def _set_text(
    conn: Connection,
    message_id: str,
    body: str,
    html: str | None,
    text_format: str,
    now: datetime,
    **extra: Any,
) -> None:
    """Give a message new text, as its next revision (the first edit keeps the original)."""
    c = messages.c
    conn.execute(
        update(messages)
        .where(c.id == message_id)
        .values(
            body=body,
            html=html,
            format=text_format,
            revision=c.revision + 1,
            edited_at=now,
            original_body=func.coalesce(c.original_body, c.body),
            original_html=case((c.original_body.is_(None), c.html), else_=c.original_html),
            original_format=func.coalesce(c.original_format, c.format),
            **extra,
        )
    )


# The statements of every message sent or received, built once: building a statement costs
# several times what running it does.
_BY_ID = select(*_COLUMNS).where(messages.c.id == bindparam("id"))
_BY_EVENT_ID = select(*_COLUMNS).where(messages.c.event_id == bindparam("event_id"))
_BY_CLIENT_ID = select(*_COLUMNS).where(
    messages.c.sender == bindparam("sender"),
    messages.c.client_message_id == bindparam("client_message_id"),
)
_FIRST_QUEUED = (
    select(*_COLUMNS)
    .where(
        messages.c.conversation_id == bindparam("conversation_id"), messages.c.status == "queued"
    )
    .order_by(messages.c.seq)
    .limit(1)
)
_OLDER_QUEUED = select(messages.c.seq).where(
    messages.c.conversation_id == bindparam("conversation_id"),
    messages.c.status == "queued",
    messages.c.seq < bindparam("seq"),
)
_MARK_SENT = (
    update(messages)
    .where(messages.c.id == bindparam("message_id"))
    .values(
        status="sent",
        event_id=bindparam("event_id"),
        sent_at=bindparam("now"),
        pending=case(
            (messages.c.deleted_at.is_not(None), "redact"),
            (messages.c.revision != bindparam("sent_revision"), "edit"),
            else_=None,
        ),
    )
    .returning(*_COLUMNS)
)
_LAST_MESSAGE_AT = (
    update(conversations)
    .where(conversations.c.id == bindparam("conversation_id"))
    .values(last_message_at=bindparam("now"))
)


class MessageRepository:
    """All SQL about `messages`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._dialect = postgresql if db.dialect == "postgresql" else sqlite
        insert = self._dialect.insert(messages)
        self._insert = {
            key: insert.on_conflict_do_nothing(index_elements=key).returning(*_COLUMNS)
            for key in (("sender", "client_message_id"), ("event_id",))
        }

    async def add_outgoing(
        self,
        conversation_id: str,
        sender: str,
        client_message_id: str,
        body: str,
        text_format: str,
        html: str | None,
        now: datetime,
        attachment: Attachment | None = None,
    ) -> tuple[MessageRecord, bool, bool]:
        """Store a message from the LMS, once per (sender, client message id); (record, new,
        whether an older message of its conversation still waits to be sent)."""
        inserted = await self._add(
            {
                "conversation_id": conversation_id,
                "sender": sender,
                "client_message_id": client_message_id,
                "body": body,
                "format": text_format,
                "html": html,
                "status": "queued",
                "created_at": now,
                **_attachment_values(attachment),
            },
            ("sender", "client_message_id"),
            "lms",
        )
        if inserted is not None:
            record, behind = inserted
            return record, True, behind
        record = await self.by_client_message_id(sender, client_message_id)  # a racing request's
        assert record is not None
        return record, False, True

    async def add_incoming(
        self,
        conversation_id: str,
        sender: str,
        event_id: str,
        body: str,
        html: str | None,
        now: datetime,
        attachment: Attachment | None = None,
    ) -> bool:
        """Record a message typed (or a file sent) in a Matrix client, once per event; True
        when new."""
        inserted = await self._add(
            {
                "conversation_id": conversation_id,
                "sender": sender,
                "client_message_id": None,
                "body": body,
                "format": "html" if html is not None else "plain",
                "html": html,
                "event_id": event_id,
                "status": "sent",
                "created_at": now,
                "sent_at": now,
                **_attachment_values(attachment),
            },
            ("event_id",),
            "matrix",
        )
        return inserted is not None

    async def _add(
        self, values: dict[str, Any], unique: tuple[str, ...], origin: OriginName
    ) -> tuple[MessageRecord, bool] | None:
        """Insert a message unless its unique key exists; its `message.created` event commits
        with it. The stored message and whether an older one of its conversation waits to be
        sent (asked only of queued messages), or None when it existed."""
        values = {"id": uuid.uuid4().hex, **values}
        now: datetime = values["created_at"]

        def work(conn: Connection) -> tuple[MessageRecord, bool] | None:
            row = prepared.first(conn, self._insert[unique], values)
            if row is None:
                return None
            record = _record(row)
            created = MessageCreated(
                message_id=record.id,
                conversation_id=record.conversation_id,
                sender=record.sender,
                body=record.body,
                format=record.format,  # type: ignore[arg-type]
                html=record.html,
                event_id=record.event_id,
                origin=origin,
                created_at=now,
                attachment=attachment_info(record.attachment),
            )
            prepared.execute(
                conn, _LAST_MESSAGE_AT, {"conversation_id": values["conversation_id"], "now": now}
            )
            append_event(conn, created, now)
            # After the event log's lock (PostgreSQL): what committed before it is seen.
            behind = record.status == "queued" and (
                prepared.first(
                    conn,
                    _OLDER_QUEUED,
                    {"conversation_id": record.conversation_id, "seq": record.seq},
                )
                is not None
            )
            return record, behind

        return await self._db.write(work)

    async def by_client_message_id(
        self, sender: str, client_message_id: str
    ) -> MessageRecord | None:
        """The message an LMS request stored under its own id, if any."""
        return await self._db.read(
            lambda conn: read_client_message(conn, sender, client_message_id)
        )

    async def by_event_id(self, event_id: str) -> MessageRecord | None:
        """The message a Matrix event is, if it is one of ours."""
        return await self._db.read(lambda conn: read_event_message(conn, event_id))

    async def get(self, message_id: str) -> MessageRecord | None:
        """A message by id."""
        return await self._one(_BY_ID, {"id": message_id})

    async def _one(self, query: Select[Any], parameters: dict[str, str]) -> MessageRecord | None:
        row = await self._db.first(query, parameters)
        return _record(row) if row else None

    @staticmethod
    def _fetch(conn: Connection, message_id: str) -> MessageRecord | None:
        row = conn.execute(_BY_ID, {"id": message_id}).first()
        return _record(row) if row else None

    def _locked(self, conn: Connection, message_id: str) -> MessageRecord | None:
        query = select(*_COLUMNS).where(messages.c.id == message_id)
        if self._db.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        return _record(row) if row else None

    async def queued(self, limit: int) -> list[MessageRecord]:
        """Messages waiting to be sent, oldest first."""
        return await self._with_status("queued", limit)

    async def _with_status(self, status: str, limit: int) -> list[MessageRecord]:
        rows = await self._db.rows(
            select(*_COLUMNS)
            .where(messages.c.status == status)
            .order_by(messages.c.seq)
            .limit(limit)
        )
        return [_record(r) for r in rows]

    async def first_queued(self, conversation_id: str) -> MessageRecord | None:
        """The oldest message of a conversation still waiting to be sent."""
        row = await self._db.first(_FIRST_QUEUED, {"conversation_id": conversation_id})
        return _record(row) if row else None

    async def mark_sent(
        self, message_id: str, event_id: str, sent_revision: int, now: datetime
    ) -> MessageRecord:
        """Record the Matrix event of a sent message.

        An edit or deletion made while the send was in flight becomes pending, so Matrix gets it.
        """
        parameters = {
            "message_id": message_id,
            "event_id": event_id,
            "now": now,
            "sent_revision": sent_revision,
        }
        row = await self._db.write(lambda conn: prepared.first(conn, _MARK_SENT, parameters))
        if row is None:
            raise LookupError(f"no message {message_id} to mark as sent")
        return _record(row)

    async def mark_failed(self, message_id: str, reason: str, now: datetime) -> None:
        """The homeserver refused a message for good; `message.failed` commits with it."""

        def work(conn: Connection) -> None:
            record = self._locked(conn, message_id)
            if record is None or record.status != "queued":
                return
            conn.execute(
                update(messages).where(messages.c.id == message_id).values(status="failed")
            )
            failed = MessageFailed(record.id, record.conversation_id, record.sender, "lms", reason)
            append_event(conn, failed, now)

        await self._db.write(work)

    async def failed(self, limit: int) -> list[MessageRecord]:
        """Messages the homeserver refused for good, oldest first (for an operator)."""
        return await self._with_status("failed", limit)

    async def retry_failed(self, message_ids: list[str] | None) -> int:
        """Queue refused messages (those of `message_ids`, or all) to be sent again, unless
        deleted meanwhile; returns how many."""
        statement = (
            update(messages)
            .where(messages.c.status == "failed", messages.c.deleted_at.is_(None))
            .values(status="queued")
        )
        if message_ids is not None:
            statement = statement.where(messages.c.id.in_(message_ids))
        return max(await self._db.execute(statement), 0)

    # --- edits and deletions ---

    async def edit_outgoing(
        self, message_id: str, body: str, html: str | None, text_format: str, now: datetime
    ) -> MessageRecord | None:
        """Change a message's text from the LMS; `message.edited` commits with it.

        A message not sent yet is simply sent with the new text; a sent one is marked
        `pending = "edit"` until Matrix has the replacement. None when it doesn't exist.
        """

        def work(conn: Connection) -> MessageRecord | None:
            record = self._locked(conn, message_id)
            if record is None or record.deleted_at is not None:
                return record
            if (record.body, record.html) == (body, html):
                return record  # a repeated request: nothing changes
            # A sent message waits for Matrix to get the edit; an unsent one goes out edited.
            pending = "edit" if record.status == "sent" else None
            _set_text(conn, message_id, body, html, text_format, now, pending=pending)
            append_event(conn, _edited(record, "lms", body, text_format, html, now), now)
            return self._fetch(conn, message_id)

        return await self._db.write(work)

    async def delete_outgoing(
        self, message_id: str, now: datetime, moderator: str | None = None
    ) -> MessageRecord | None:
        """Delete a message from the LMS (by its sender, or by a `moderator`);
        `message.deleted` commits with it.

        A message not sent yet is never sent; a sent one is marked `pending = "redact"` until
        Matrix has the redaction. None when it doesn't exist.
        """

        def work(conn: Connection) -> MessageRecord | None:
            record = self._locked(conn, message_id)
            if record is None or record.deleted_at is not None:
                return record
            sent = record.status == "sent"
            conn.execute(
                update(messages)
                .where(messages.c.id == message_id)
                .values(
                    deleted_at=now,
                    pending="redact" if sent else None,
                    # Never sent: it never will be (unless a send is in flight: see mark_sent).
                    status=record.status if sent else "withdrawn",
                )
            )
            deleted = MessageDeleted(
                record.id,
                record.conversation_id,
                record.sender,
                "lms",
                now,
                moderator=OMITTED if moderator is None else moderator,
            )
            append_event(conn, deleted, now)
            return self._fetch(conn, message_id)

        return await self._db.write(work)

    async def pending_changes(self, limit: int) -> list[MessageRecord]:
        """Sent messages with an edit or deletion Matrix hasn't seen, oldest first."""
        rows = await self._db.rows(
            select(*_COLUMNS)
            .where(messages.c.pending.is_not(None))
            .order_by(messages.c.seq)
            .limit(limit)
        )
        return [_record(r) for r in rows]

    async def mark_synced(
        self,
        message_id: str,
        revision: int,
        kind: str,
        edit: tuple[str, MessageRecord] | None,
        now: datetime,
    ) -> None:
        """Matrix has the `kind` change made at `revision` (a later change stays pending);
        `edit` is the edit event Matrix got and the message as it was sent in it."""

        def work(conn: Connection) -> None:
            if edit is not None:
                edit_event_id, sent = edit
                conn.execute(
                    self._dialect.insert(message_edits)
                    .values(
                        event_id=edit_event_id,
                        message_id=message_id,
                        created_at=now,
                        body=sent.body,
                        html=sent.html,
                        format=sent.format,
                    )
                    .on_conflict_do_nothing(index_elements=["event_id"])
                )
            conn.execute(
                update(messages)
                .where(
                    messages.c.id == message_id,
                    messages.c.revision == revision,
                    messages.c.pending == kind,
                )
                .values(pending=None)
            )

        await self._db.write(work)

    async def is_edit_event(self, event_id: str) -> bool:
        """Whether a Matrix edit event was already applied (or was the bridge's own)."""
        row = await self._db.first(
            select(message_edits.c.event_id).where(message_edits.c.event_id == event_id)
        )
        return row is not None

    async def edit_incoming(
        self, edit_event_id: str, message_id: str, body: str, html: str | None, now: datetime
    ) -> bool:
        """Apply an edit typed in a Matrix client, once per edit event; True when applied."""

        def work(conn: Connection) -> bool:
            record = self._locked(conn, message_id)  # first: the lock order of edits
            if record is None or record.deleted_at is not None:
                return False
            text_format = "html" if html is not None else "plain"
            inserted = conn.execute(
                self._dialect.insert(message_edits)
                .values(
                    event_id=edit_event_id,
                    message_id=message_id,
                    created_at=now,
                    body=body,
                    html=html,
                    format=text_format,
                )
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(message_edits.c.event_id)
            )
            if inserted.first() is None:
                return False
            _set_text(conn, message_id, body, html, text_format, now)
            edited = _edited(
                record, "matrix", body, text_format, html, now, edit_event_id=edit_event_id
            )
            append_event(conn, edited, now)
            return True

        return await self._db.write(work)

    async def undo_edit(
        self, edit_event_id: str, conversation_id: str, redaction_event_id: str, now: datetime
    ) -> bool:
        """An edit was redacted in Matrix, where clients then show the latest edit left (or the
        original): the message gets that text back. True when `message.edited` was published."""
        e = message_edits.c

        def work(conn: Connection) -> bool:
            message_id = (
                conn.execute(
                    select(e.message_id).where(e.event_id == edit_event_id, e.redacted_at.is_(None))
                )
            ).scalar()
            if message_id is None:
                return False
            record = self._locked(conn, message_id)  # first: the lock order of edits
            if record is None or record.conversation_id != conversation_id:
                return False
            conn.execute(
                update(message_edits).where(e.event_id == edit_event_id).values(redacted_at=now)
            )
            if record.deleted_at is not None:
                return False
            latest = (
                conn.execute(
                    select(e.event_id, e.body, e.html, e.format)
                    .where(e.message_id == message_id, e.redacted_at.is_(None))
                    .order_by(e.created_at.desc(), e.event_id.desc())
                    .limit(1)
                )
            ).first()
            if latest is not None and latest.body is not None:
                now_shown, body, html, text_format = latest
            else:
                original = (
                    conn.execute(
                        select(
                            messages.c.original_body,
                            messages.c.original_html,
                            messages.c.original_format,
                        ).where(messages.c.id == message_id)
                    )
                ).one()
                if original.original_body is None:
                    return False  # edited before texts were kept: nothing to go back to
                now_shown = None
                body, html, text_format = original
            if (body, html) == (record.body, record.html):
                return False
            _set_text(conn, message_id, body, html, text_format, now)
            append_event(
                conn,
                _edited(
                    record,
                    "matrix",
                    body,
                    text_format,
                    html,
                    now,
                    edit_event_id=now_shown,
                    undone_edit_event_id=edit_event_id,
                    redaction_event_id=redaction_event_id,
                ),
                now,
            )
            return True

        return await self._db.write(work)

    async def delete_incoming(
        self, message_id: str, redaction_event_id: str, now: datetime
    ) -> bool:
        """Record a redaction made in Matrix; True when the message was not deleted before."""

        def work(conn: Connection) -> bool:
            record = self._locked(conn, message_id)
            if record is None or record.deleted_at is not None:
                return False
            conn.execute(
                update(messages)
                .where(messages.c.id == message_id)
                .values(deleted_at=now, pending=None)  # an edit Matrix lacks no longer matters
            )
            deleted = MessageDeleted(
                message_id=record.id,
                conversation_id=record.conversation_id,
                sender=record.sender,
                origin="matrix",
                deleted_at=now,
                redaction_event_id=redaction_event_id,
            )
            append_event(conn, deleted, now)
            return True

        return await self._db.write(work)

    async def record_blocked(self, blocked: MessageBlocked, now: datetime) -> bool:
        """An event typed in Matrix that the contact-info rule removed; `message.blocked`
        commits with it. False when it was recorded before."""

        def work(conn: Connection) -> bool:
            inserted = conn.execute(
                self._dialect.insert(blocked_events)
                .values(
                    event_id=blocked.event_id,
                    conversation_id=blocked.conversation_id,
                    created_at=now,
                )
                .on_conflict_do_nothing()
                .returning(blocked_events.c.event_id)
            )
            if inserted.first() is None:
                return False
            append_event(conn, blocked, now)
            return True

        return await self._db.write(work)

    # --- reactions ---

    async def add_reaction(
        self, event_id: str, message: MessageRecord, sender: str, key: str, now: datetime
    ) -> bool:
        """Record a reaction made in Matrix, once per event; `reaction.added` commits with it."""

        def work(conn: Connection) -> bool:
            inserted = conn.execute(
                self._dialect.insert(reactions)
                .values(
                    event_id=event_id,
                    message_id=message.id,
                    sender=sender,
                    key=key,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(reactions.c.event_id)
            )
            if inserted.first() is None:
                return False
            added = ReactionAdded(message.id, message.conversation_id, sender, key, event_id, now)
            append_event(conn, added, now)
            return True

        return await self._db.write(work)

    async def remove_reaction(
        self, event_id: str, conversation_id: str, redaction_event_id: str, now: datetime
    ) -> bool:
        """A reaction was taken back (redacted) in Matrix; `reaction.removed` commits with it.
        False when `event_id` is no reaction of this conversation, or was removed before."""
        r = reactions.c

        def work(conn: Connection) -> bool:
            found = (
                conn.execute(
                    select(r.message_id, r.sender, r.key)
                    .select_from(reactions.join(messages, messages.c.id == r.message_id))
                    .where(
                        r.event_id == event_id,
                        r.removed_at.is_(None),
                        messages.c.conversation_id == conversation_id,
                    )
                )
            ).first()
            if found is None:
                return False
            conn.execute(update(reactions).where(r.event_id == event_id).values(removed_at=now))
            removed = ReactionRemoved(
                message_id=found.message_id,
                conversation_id=conversation_id,
                sender=found.sender,
                key=found.key,
                event_id=event_id,
                redaction_event_id=redaction_event_id,
                removed_at=now,
            )
            append_event(conn, removed, now)
            return True

        return await self._db.write(work)

    # --- reading ---

    async def page(
        self, conversation_id: str, before_seq: int | None, limit: int
    ) -> list[MessageRecord]:
        """Up to `limit` messages before `before_seq` (newest page first), oldest first."""
        query = select(*_COLUMNS).where(messages.c.conversation_id == conversation_id)
        if before_seq is not None:
            query = query.where(messages.c.seq < before_seq)
        query = query.order_by(messages.c.seq.desc()).limit(limit)
        return [_record(r) for r in reversed(await self._db.rows(query))]
