"""Conversation and message routes: thin handlers over the conversation, message and reading
services."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.fields import FieldError, check_id
from bridge.api.files import download_headers, read_file_form
from bridge.api.http import ApiFailure, path_id, query_int, read_json
from bridge.domain.formatting import TextFormat
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import HomeserverUnreachable
from bridge.services.attachments import AttachmentDownloads
from bridge.services.conversations import ConversationRefused, ConversationService
from bridge.services.messages import MessageService
from bridge.services.policy import UnknownUser
from bridge.services.reading import InboxItem, ReadingService
from bridge.store.conversations import ConversationRecord
from bridge.store.messages import MessageRecord


def conversation_json(record: ConversationRecord, ids: MatrixIdMapper) -> dict[str, Any]:
    """A conversation as the API shows it."""
    return {
        "id": record.id,
        "state": record.state,
        "room_id": record.room_id,
        "started_by": record.started_by,
        "encrypted": record.encrypted,
        "participants": [
            {"user_id": user, "matrix_id": ids.user_id(user)}
            for user in (record.user_a, record.user_b)
        ],
    }


def message_json(record: MessageRecord) -> dict[str, Any]:
    """A message as the API shows it (a deleted message keeps no text)."""
    deleted = record.deleted_at is not None
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
        "created_at": record.created_at.isoformat(),
        "edited_at": record.edited_at.isoformat() if record.edited_at else None,
        "deleted": deleted,
        "pending": record.pending,
        "attachment": record.attachment.json() if record.attachment and not deleted else None,
    }


def inbox_item_json(item: InboxItem, ids: MatrixIdMapper) -> dict[str, Any]:
    """One row of a person's inbox."""
    other = item.other
    return {
        **conversation_json(item.conversation, ids),
        "other": {
            "user_id": other.user_id,
            "display_name": other.display_name,
            "avatar_url": other.avatar_url,
            "initials": other.initials,
            "role": other.role,
            "active": other.active,
            "matrix_id": ids.user_id(other.user_id),
        },
        "last_message": None
        if item.last_message is None
        else {
            "preview": item.preview,
            "sender": item.last_message.sender,
            "created_at": item.last_message.created_at.isoformat(),
        },
        "unread": item.unread,
    }


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiFailure(400, "invalid_field", "body: expected a JSON object", field="body")
    return body


def _id(name: str, value: object) -> str:
    try:
        return check_id(name, value)
    except FieldError as exc:
        raise ApiFailure(400, "invalid_field", str(exc), field=exc.field) from None


def _id_field(body: dict[str, Any], name: str) -> str:
    return _id(name, body.get(name))


def _query_id(request: web.Request, name: str) -> str:
    return _id(name, request.query.get(name))


def _text(body: dict[str, Any]) -> tuple[str, TextFormat]:
    text = body.get("body")
    if not isinstance(text, str) or "\x00" in text:
        raise ApiFailure(400, "invalid_field", "body: expected a text", field="body")
    text_format = body.get("format", "plain")
    if text_format not in ("plain", "markdown"):
        raise ApiFailure(400, "invalid_field", "format: expected plain or markdown", field="format")
    return text, text_format


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
        return [
            web.post("/api/v1/conversations", self.start),
            web.get("/api/v1/users/{user_id}/conversations", self.inbox),
            web.get("/api/v1/conversations/{conversation_id}/messages", self.history),
            web.post("/api/v1/conversations/{conversation_id}/messages", self.send),
            web.post("/api/v1/conversations/{conversation_id}/read", self.read),
            web.patch("/api/v1/messages/{message_id}", self.edit),
            web.delete("/api/v1/messages/{message_id}", self.delete),
            web.get("/api/v1/messages/{message_id}/attachment", self.attachment),
        ]

    async def start(self, request: web.Request) -> web.Response:
        """`POST /api/v1/conversations`: 201 new, 200 existing, 403 with the policy's reason."""
        body = _object(await read_json(request, self._max_body))
        initiator = _id_field(body, "initiator")
        recipient = _id_field(body, "recipient")
        try:
            record, created = await self._conversations.start(initiator, recipient)
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
        return web.json_response(
            conversation_json(record, self._ids), status=201 if created else 200
        )

    async def inbox(self, request: web.Request) -> web.Response:
        """`GET /api/v1/users/{u}/conversations`: the most recently active first."""
        user_id = path_id(request, "user_id")
        limit = query_int(request, "limit", 50, 1, 200)
        try:
            items = await self._reading.inbox(user_id, limit)
        except UnknownUser:
            raise ApiFailure(
                404, "not_found", f"No user with id {user_id!r}", missing={"user_id": user_id}
            ) from None
        return web.json_response(
            {"conversations": [inbox_item_json(item, self._ids) for item in items]}
        )

    async def history(self, request: web.Request) -> web.Response:
        """`GET /api/v1/conversations/{c}/messages?as=&before=&limit=`: a page, oldest first."""
        conversation_id = path_id(request, "conversation_id")
        reader = _query_id(request, "as")
        before = _query_id(request, "before") if "before" in request.query else None
        limit = query_int(request, "limit", 50, 1, 200)
        page = await self._reading.history(conversation_id, reader, before, limit)
        return web.json_response(
            {
                "messages": [{**message_json(m), "read": read} for m, read in page],
                "next_before": page[0][0].id if len(page) == limit else None,
            }
        )

    async def send(self, request: web.Request) -> web.Response:
        """`POST /api/v1/conversations/{c}/messages`: 201 sent, 202 queued, 200 a repeat."""
        conversation_id = path_id(request, "conversation_id")
        if request.content_type == "multipart/form-data":
            fields, upload = await read_file_form(request, self._max_attachment)
            record, created = await self._messages.send_file(
                conversation_id,
                _id_field(fields, "sender"),
                _id_field(fields, "client_message_id"),
                upload,
            )
        else:
            body = _object(await read_json(request, self._max_body))
            sender = _id_field(body, "sender")
            client_message_id = _id_field(body, "client_message_id")
            text, text_format = _text(body)
            record, created = await self._messages.send(
                conversation_id, sender, text, text_format, client_message_id
            )
        status = 200 if not created else 201 if record.status == "sent" else 202
        return web.json_response(message_json(record), status=status)

    async def read(self, request: web.Request) -> web.Response:
        """`POST /api/v1/conversations/{c}/read {user, up_to}`: marks read, sends the receipt."""
        conversation_id = path_id(request, "conversation_id")
        body = _object(await read_json(request, self._max_body))
        user = _id_field(body, "user")
        up_to = _id_field(body, "up_to")
        moved = await self._reading.mark_read(conversation_id, user, up_to)
        return web.json_response({"conversation_id": conversation_id, "moved": moved})

    async def edit(self, request: web.Request) -> web.Response:
        """`PATCH /api/v1/messages/{m} {user, body, format?}`: 200 done, 202 Matrix pending."""
        message_id = path_id(request, "message_id")
        body = _object(await read_json(request, self._max_body))
        user = _id_field(body, "user")
        text, text_format = _text(body)
        record = await self._messages.edit(message_id, user, text, text_format)
        return web.json_response(message_json(record), status=202 if record.pending else 200)

    async def delete(self, request: web.Request) -> web.Response:
        """`DELETE /api/v1/messages/{m}?as={u}`: 200 done, 202 Matrix pending."""
        message_id = path_id(request, "message_id")
        user = _query_id(request, "as")
        record = await self._messages.delete(message_id, user)
        return web.json_response(message_json(record), status=202 if record.pending else 200)

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/v1/messages/{m}/attachment?as={u}`: the file, for a participant."""
        message_id = path_id(request, "message_id")
        reader = _query_id(request, "as")
        async with self._downloads.open(message_id, reader) as download:
            response = web.StreamResponse(headers=download_headers(download.attachment))
            if download.length is not None:
                response.content_length = download.length
            await response.prepare(request)
            async for chunk in download.chunks:
                await response.write(chunk)
            await response.write_eof()
            return response
