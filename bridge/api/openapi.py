"""The OpenAPI document of the LMS-facing API, built from the operation tables the routes are
served from and the shapes they take and answer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api import conversations, embed, events, health, metrics, people, reports, roster
from bridge.api.events import SIGNATURE
from bridge.api.fields import json_schema, stored_schema
from bridge.api.http import reply
from bridge.api.openapi_parts import ERROR_SCHEMA, errors, json_body, json_response, path_params
from bridge.api.operations import Operation, Reply, bind
from bridge.contract.events import Event, event_schemas
from bridge.contract.roster import UserView
from bridge.contract.shapes import component_schema, schema_of

_DOCUMENT_SCHEMA = {
    "type": "object",
    "required": ["openapi", "info", "paths"],
    "properties": {"openapi": {"type": "string", "pattern": "^3\\.1\\."}},
}
OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/openapi.json",
        "serve",
        "meta",
        "This document",
        replies=(Reply(200, "OpenAPI 3.1", _DOCUMENT_SCHEMA),),
    ),
)
WEBHOOKS = {
    "event": {
        "post": {
            "tags": ["events"],
            "summary": "Each event, POSTed to the configured webhook in order, once acknowledged",
            "description": f"{SIGNATURE} Any 2xx answer acknowledges it; anything else (or no "
            "answer) is retried with backoff, and later events wait.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Event"}}},
            },
            "responses": {"2XX": {"description": "Received"}},
        }
    }
}


def _record_operations() -> dict[str, dict[str, Any]]:
    """The single-record roster routes, generated from the record fields."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, record_type, params_map in roster.RECORD_ROUTES:
        operation: dict[str, Any] = {"tags": ["roster"], "parameters": path_params(path)}
        if method == "PUT":
            operation["summary"] = f"Create or replace a {record_type} (idempotent)"
            operation["requestBody"] = json_body(json_schema(record_type))
            stored = (
                schema_of(UserView)
                if record_type == "user"
                else stored_schema(record_type, list(params_map.values()))
            )
            operation["responses"] = {
                "200": json_response(stored, "Stored"),
                **errors(400, 404, 409, 413, 422),
            }
        else:
            operation["summary"] = f"Remove a {record_type} (idempotent)"
            operation["responses"] = {"204": {"description": "Removed"}, **errors(400, 404, 409)}
        paths.setdefault(path, {})[method.lower()] = operation
    return paths


def build_document(server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    paths = _record_operations()
    for operation in (
        *roster.OPERATIONS,
        *people.OPERATIONS,
        *conversations.OPERATIONS,
        *reports.OPERATIONS,
        *events.OPERATIONS,
        *embed.OPERATIONS,
        *embed.PAGE_OPERATIONS,
        *embed.PAGE_FILE_OPERATIONS,
        *OPERATIONS,
        *health.OPERATIONS,
        *metrics.OPERATIONS,
    ):
        paths.setdefault(operation.path, {})[operation.method.lower()] = operation.document()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lms-matrix-bridge",
            "version": "1",
            "description": "The bridge's REST API for the learning platform.",
        },
        "servers": [{"url": server_url}],
        "security": [{"lmsToken": []}],
        "paths": paths,
        "webhooks": WEBHOOKS,
        "components": {
            "securitySchemes": {
                "lmsToken": {"type": "http", "scheme": "bearer"},
                "embedSession": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token of an embedded-inbox session "
                    "(POST /embed/api/session), for that one person",
                },
            },
            "schemas": {
                "Error": ERROR_SCHEMA,
                "Event": component_schema(Event),
                **event_schemas(),
            },
        },
    }


class OpenApiRoute:
    """Serves the document."""

    def __init__(self) -> None:
        self._document = build_document()

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return bind(self, OPERATIONS)

    async def serve(self, _request: web.Request) -> web.Response:
        """`GET /api/v1/openapi.json`."""
        return reply(self._document)
