"""Conversation and message routes: thin handlers over the conversation, message and reading
services."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.files import read_file_form, stream_download
from bridge.api.http import ApiFailure, path_id, read_body, read_query, reply
from bridge.api.operations import Operation, Reply, bind
from bridge.contract.events import attachment_info
from bridge.contract.messaging import (
    ContactInfoFound,
    ConversationView,
    DeleteQuery,
    DownloadQuery,
    EditText,
    HistoryMessage,
    HistoryPage,
    HistoryQuery,
    Inbox,
    InboxItem,
    InboxQuery,
    LastMessage,
    MarkRead,
    MessageView,
    OtherPerson,
    Participant,
    ReadResult,
    RuleNotice,
    SendFile,
    SendText,
    SentMessage,
    StartConversation,
)
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import HomeserverUnreachable
from bridge.services.attachments import AttachmentDownloads
from bridge.services.content_rules import RuleHit, guideline_notice
from bridge.services.conversations import ConversationRefused, ConversationService
from bridge.services.messages import MessageService
from bridge.services.policy import UnknownUser
from bridge.services.reading import InboxItem as InboxEntry
from bridge.services.reading import ReadingService
from bridge.store.conversations import ConversationRecord
from bridge.store.messages import MessageRecord


def conversation_view(record: ConversationRecord, ids: MatrixIdMapper) -> ConversationView:
    """A conversation as the API shows it."""
    return ConversationView(**_conversation_fields(record, ids))


def _conversation_fields(record: ConversationRecord, ids: MatrixIdMapper) -> dict[str, Any]:
    return {
        "id": record.id,
        "state": record.state,
        "room_id": record.room_id,
        "started_by": record.started_by,
        "encrypted": record.encrypted,
        "participants": [
            Participant(user, ids.user_id(user)) for user in (record.user_a, record.user_b)
        ],
    }


def message_fields(record: MessageRecord) -> dict[str, Any]:
    """The fields every view of a message shares."""
    deleted = record.deleted_at is not None  # a deleted message keeps no text
    return {
        "id": record.id,
        "conversation_id": record.conversation_id,
        "sender": record.sender,
        "client_message_id": record.client_message_id,
        "body": None if deleted else record.body,
        "format": record.format,
        "html": None if deleted else record.html,
        "status": record.status,
        "event_id": record.event_id,
        "created_at": record.created_at,
        "edited_at": record.edited_at,
        "deleted": deleted,
        "pending": record.pending,
        "attachment": None if deleted else attachment_info(record.attachment),
    }


def message_view(record: MessageRecord) -> MessageView:
    """A message as the API shows it."""
    return MessageView(**message_fields(record))


def sent_message(record: MessageRecord, hit: RuleHit | None) -> SentMessage:
    """A message as sent or edited, with what the contact-info rule did about it."""
    if hit is None:
        return SentMessage(**message_fields(record))
    notice = RuleNotice(
        rule=hit.mode,  # type: ignore[arg-type]
        message=guideline_notice(hit, blocked=False),
        found=[ContactInfoFound(m.kind, m.text, m.start, m.end) for m in hit.matches],
    )
    return SentMessage(**message_fields(record), contact_info=notice)


def send_status(record: MessageRecord, created: bool) -> int:
    """201 sent, 202 stored and queued, 200 a repeat of an earlier send."""
    return 200 if not created else 201 if record.status == "sent" else 202


def inbox_item(item: InboxEntry, ids: MatrixIdMapper) -> InboxItem:
    """One row of a person's inbox."""
    other = item.other
    last = item.last_message
    return InboxItem(
        **_conversation_fields(item.conversation, ids),
        other=OtherPerson(
            user_id=other.user_id,
            display_name=other.display_name,
            avatar_url=other.avatar_url,
            initials=other.initials,
            role=other.role,
            active=other.active,
            matrix_id=ids.user_id(other.user_id),
            availability=other.availability,
        ),
        last_message=None
        if last is None
        else LastMessage(item.preview or "", last.sender, last.created_at),
        unread=item.unread,
    )


_TAG = "conversations"
_MESSAGES = "/api/v1/conversations/{conversation_id}/messages"
_MESSAGE = "/api/v1/messages/{message_id}"
# The types a download comes as (bridge.api.files.download_headers decides).
DOWNLOAD_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "audio/*",
    "video/*",
    "application/octet-stream",
)
_BINARY = {"type": "string", "format": "binary"}

OPERATIONS = (
    Operation(
        "POST",
        "/api/v1/conversations",
        "start",
        _TAG,
        "Start (or find) the conversation of two people",
        description="Creates the private Matrix room of the pair when the initiator may start "
        "a conversation with the recipient; either person may call again later and gets the "
        "same conversation.",
        body=StartConversation,
        replies=(
            Reply(201, "Created", ConversationView),
            Reply(200, "The pair's existing conversation", ConversationView),
        ),
        errors=(400, 404, 413, 502, 503),
    ),
    Operation(
        "GET",
        "/api/v1/users/{user_id}/conversations",
        "inbox",
        _TAG,
        "A person's inbox: the most recently active conversation first",
        query=InboxQuery,
        replies=(Reply(200, "OK", Inbox),),
        errors=(400, 404),
    ),
    Operation(
        "GET",
        _MESSAGES,
        "history",
        _TAG,
        "A conversation's history, a page at a time (participants only)",
        query=HistoryQuery,
        replies=(Reply(200, "OK", HistoryPage),),
        errors=(400, 404),
    ),
    Operation(
        "POST",
        _MESSAGES,
        "send",
        _TAG,
        "Send a message as a participant (idempotent on client_message_id)",
        body=SendText,
        form=SendFile,
        replies=(
            Reply(201, "Sent; `event_id` is the Matrix event", SentMessage),
            Reply(202, "Stored and queued: the homeserver is unreachable", SentMessage),
            Reply(200, "A repeat of an earlier request", SentMessage),
        ),
        errors=(400, 404, 409, 413, 422, 429, 502, 503),
    ),
    Operation(
        "POST",
        "/api/v1/conversations/{conversation_id}/read",
        "read",
        _TAG,
        "Mark read up to a message (also the person's Matrix read receipt)",
        body=MarkRead,
        replies=(Reply(200, "OK", ReadResult),),
        errors=(400, 404),
    ),
    Operation(
        "PATCH",
        _MESSAGE,
        "edit",
        _TAG,
        "Edit one's own message (an m.replace edit in Matrix)",
        body=EditText,
        replies=(
            Reply(200, "Edited, in Matrix too", SentMessage),
            Reply(202, "Edited; Matrix gets it when it is back", SentMessage),
        ),
        errors=(400, 404, 409, 413, 422),
    ),
    Operation(
        "DELETE",
        _MESSAGE,
        "delete",
        _TAG,
        "Delete one's own message (a redaction in Matrix)",
        query=DeleteQuery,
        replies=(
            Reply(200, "Deleted, in Matrix too", MessageView),
            Reply(202, "Deleted; Matrix gets it when it is back", MessageView),
        ),
        errors=(400, 404),
    ),
    Operation(
        "GET",
        f"{_MESSAGE}/attachment",
        "attachment",
        _TAG,
        "Download the file a message carries (participants only)",
        description="Streamed from the homeserver's media repository. Offered as an "
        "attachment; PNG, JPEG, GIF and WebP images, audio and video keep their type, any "
        "other type (one a browser could run: HTML, SVG, …) comes as application/octet-stream.",
        query=DownloadQuery,
        replies=(Reply(200, "The file", _BINARY, DOWNLOAD_TYPES),),
        errors=(400, 404, 413, 502, 503),
    ),
)


class ConversationRoutes:
    """HTTP handlers of the conversation API."""

    def __init__(
        self,
        conversations: ConversationService,
        messages: MessageService,
        reading: ReadingService,
        ids: MatrixIdMapper,
        max_body_bytes: int,
        downloads: AttachmentDownloads,
        max_attachment_bytes: int,
    ) -> None:
        self._downloads = downloads
        self._max_attachment = max_attachment_bytes
        self._conversations = conversations
        self._messages = messages
        self._reading = reading
        self._ids = ids
        self._max_body = max_body_bytes

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return bind(self, OPERATIONS)

    async def start(self, request: web.Request) -> web.Response:
        """`POST /api/v1/conversations`: 201 new, 200 existing, 403 with the policy's reason."""
        pair = await read_body(request, StartConversation, self._max_body)
        try:
            record, created = await self._conversations.start(pair.initiator, pair.recipient)
        except UnknownUser as exc:
            raise ApiFailure(
                404,
                "not_found",
                f"No user with id {exc.user_id!r}",
                missing={"user_id": exc.user_id},
            ) from None
        except ConversationRefused as refused:
            raise ApiFailure(
                403, "not_allowed", refused.decision.reason, reason_code=refused.decision.code
            ) from None
        except HomeserverUnreachable:
            raise ApiFailure(
                503,
                "homeserver_unavailable",
                "The homeserver can't be reached; retry and the conversation is completed",
            ) from None
        return reply(conversation_view(record, self._ids), 201 if created else 200)

    async def inbox(self, request: web.Request) -> web.Response:
        """`GET /api/v1/users/{u}/conversations`: the most recently active first."""
        user_id = path_id(request, "user_id")
        query = read_query(request, InboxQuery)
        try:
            items = await self._reading.inbox(user_id, query.limit)
        except UnknownUser:
            raise ApiFailure(
                404, "not_found", f"No user with id {user_id!r}", missing={"user_id": user_id}
            ) from None
        return reply(Inbox([inbox_item(item, self._ids) for item in items]))

    async def history(self, request: web.Request) -> web.Response:
        """`GET /api/v1/conversations/{c}/messages?as=&before=&limit=`: a page, oldest first."""
        conversation_id = path_id(request, "conversation_id")
        query = read_query(request, HistoryQuery)
        before = query.before or None
        page = await self._reading.history(conversation_id, query.reader, before, query.limit)
        return reply(
            HistoryPage(
                messages=[HistoryMessage(**message_fields(e.message), read=e.read) for e in page],
                next_before=page[0].message.id if len(page) == query.limit else None,
            )
        )

    async def send(self, request: web.Request) -> web.Response:
        """`POST /api/v1/conversations/{c}/messages`: 201 sent, 202 queued, 200 a repeat."""
        conversation_id = path_id(request, "conversation_id")
        if request.content_type == "multipart/form-data":
            form, upload = await read_file_form(request, self._max_attachment)
            record, created, hit = await self._messages.send_file(
                conversation_id, form.sender, form.client_message_id, upload
            )
        else:
            text = await read_body(request, SendText, self._max_body)
            record, created, hit = await self._messages.send(
                conversation_id, text.sender, text.body, text.format, text.client_message_id
            )
        return reply(sent_message(record, hit), send_status(record, created))

    async def read(self, request: web.Request) -> web.Response:
        """`POST /api/v1/conversations/{c}/read {user, up_to}`: marks read, sends the receipt."""
        conversation_id = path_id(request, "conversation_id")
        mark = await read_body(request, MarkRead, self._max_body)
        moved = await self._reading.mark_read(conversation_id, mark.user, mark.up_to)
        return reply(ReadResult(conversation_id, moved))

    async def edit(self, request: web.Request) -> web.Response:
        """`PATCH /api/v1/messages/{m} {user, body, format?}`: 200 done, 202 Matrix pending."""
        message_id = path_id(request, "message_id")
        text = await read_body(request, EditText, self._max_body)
        record, hit = await self._messages.edit(message_id, text.user, text.body, text.format)
        return reply(sent_message(record, hit), 202 if record.pending else 200)

    async def delete(self, request: web.Request) -> web.Response:
        """`DELETE /api/v1/messages/{m}?as={u}`: 200 done, 202 Matrix pending."""
        message_id = path_id(request, "message_id")
        query = read_query(request, DeleteQuery)
        record = await self._messages.delete(message_id, query.sender)
        return reply(message_view(record), 202 if record.pending else 200)

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/v1/messages/{m}/attachment?as={u}`: the file, for a participant."""
        message_id = path_id(request, "message_id")
        query = read_query(request, DownloadQuery)
        return await stream_download(request, self._downloads, message_id, query.reader)
