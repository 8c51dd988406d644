"""Conversation routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.fields import FieldError, check_id
from bridge.api.http import ApiFailure, read_json
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import HomeserverUnreachable
from bridge.services.conversations import ConversationRefused, ConversationService
from bridge.services.policy import UnknownUser
from bridge.store.conversations import ConversationRecord


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


class ConversationRoutes:
    """HTTP handlers of the conversation API."""

    def __init__(
        self, conversations: ConversationService, ids: MatrixIdMapper, max_body_bytes: int
    ) -> None:
        self._conversations = conversations
        self._ids = ids
        self._max_body = max_body_bytes

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return [web.post("/api/v1/conversations", self.start)]

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
