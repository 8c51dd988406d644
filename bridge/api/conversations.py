"""Conversation routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.fields import FieldError, check_id
from bridge.api.http import ApiFailure, path_id, read_json
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import HomeserverUnreachable
from bridge.services.conversations import ConversationRefused, ConversationService
from bridge.services.messages import MessageRefused, MessageService
from bridge.services.policy import UnknownUser
from bridge.store.conversations import ConversationRecord
from bridge.store.messages import MessageRecord


def conversation_json(record: ConversationRecord, ids: MatrixIdMapper) -> dict[str, Any]:
    """A conversation as the API shows it."""
    return {
        "id": record.id,
        "state": record.state,
        "room_id": record.room_id,
        "started_by": record.started_by,
        "participants": [
            {"user_id": user, "matrix_id": ids.user_id(user)}
            for user in (record.user_a, record.user_b)
        ],
    }


def message_json(record: MessageRecord) -> dict[str, Any]:
    """A message as the API shows it."""
    return {
        "id": record.id,
        "conversation_id": record.conversation_id,
        "sender": record.sender,
        "client_message_id": record.client_message_id,
        "body": record.body,
        "format": record.format,
        "html": record.html,
        "status": record.status,
        "event_id": record.event_id,
        "created_at": record.created_at.isoformat(),
    }


class ConversationRoutes:
    """HTTP handlers of the conversation API."""

    def __init__(
        self,
        conversations: ConversationService,
        messages: MessageService,
        ids: MatrixIdMapper,
        max_body_bytes: int,
    ) -> None:
        self._conversations = conversations
        self._messages = messages
        self._ids = ids
        self._max_body = max_body_bytes

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return [
            web.post("/api/v1/conversations", self.start),
            web.post("/api/v1/conversations/{conversation_id}/messages", self.send),
        ]

    async def send(self, request: web.Request) -> web.Response:
        """`POST /api/v1/conversations/{c}/messages`: 201 sent, 202 queued, 200 a repeat."""
        conversation_id = path_id(request, "conversation_id")
        body = await read_json(request, self._max_body)
        if not isinstance(body, dict):
            raise ApiFailure(400, "invalid_field", "body: expected a JSON object", field="body")
        try:
            sender = check_id("sender", body.get("sender"))
            client_message_id = check_id("client_message_id", body.get("client_message_id"))
        except FieldError as exc:
            raise ApiFailure(400, "invalid_field", str(exc), field=exc.field) from None
        text = body.get("body")
        if not isinstance(text, str) or "\x00" in text:
            raise ApiFailure(400, "invalid_field", "body: expected a text", field="body")
        text_format = body.get("format", "plain")
        if text_format not in ("plain", "markdown"):
            raise ApiFailure(
                400, "invalid_field", "format: expected plain or markdown", field="format"
            )
        try:
            record, created = await self._messages.send(
                conversation_id, sender, text, text_format, client_message_id
            )
        except MessageRefused as refused:
            raise ApiFailure(
                refused.status, refused.code, refused.message, **refused.details
            ) from None
        status = 200 if not created else 201 if record.status == "sent" else 202
        return web.json_response(message_json(record), status=status)

    async def start(self, request: web.Request) -> web.Response:
        """`POST /api/v1/conversations`: 201 new, 200 existing, 403 with the policy's reason."""
        body = await read_json(request, self._max_body)
        if not isinstance(body, dict):
            raise ApiFailure(400, "invalid_field", "body: expected a JSON object", field="body")
        try:
            initiator = check_id("initiator", body.get("initiator"))
            recipient = check_id("recipient", body.get("recipient"))
        except FieldError as exc:
            raise ApiFailure(400, "invalid_field", str(exc), field=exc.field) from None
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
