"""The OpenAPI document of the LMS-facing API, built from the same tables the handlers use."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.fields import AVAILABILITY_SCHEMA, RECORD_FIELDS, json_schema, stored_schema
from bridge.api.openapi_messaging import EVENT, EVENT_SCHEMAS, WEBHOOKS, messaging_paths
from bridge.api.openapi_parts import (
    ERROR_SCHEMA,
    closed,
    errors,
    json_body,
    json_response,
    path_params,
)
from bridge.api.roster import MAX_BULK_RECORDS, RECORD_ROUTES
from bridge.domain.policy import ROLES
from bridge.services.policy import MAX_CONTACTS

_STRING = {"type": "string"}
_NULLABLE = {"type": ["string", "null"]}
_ROLE = {"type": "string", "enum": list(ROLES)}
_USER = closed(
    {
        "id": _STRING,
        "display_name": _STRING,
        "avatar_url": _NULLABLE,
        "initials": {"type": "string", "example": "AK"},
        "avatar_color": {"type": "string", "example": "#1f77b4"},
        "active": {"type": "boolean"},
        "availability": {
            "anyOf": [AVAILABILITY_SCHEMA, {"type": "null"}],
            "description": "A tutor's stated availability, as sent",
        },
        "matrix_id": {"type": "string", "example": "@_lms_42:example.org"},
        "memberships": {
            "type": "array",
            "items": closed({"institution_id": _STRING, "role": _ROLE}),
        },
    }
)
_READINESS = closed(
    {
        "status": {"type": "string", "enum": ["ready", "not_ready"]},
        "checks": {
            "type": "object",
            "description": "Each condition and whether it holds",
            "required": ["started", "database", "homeserver"],
            "additionalProperties": {"type": "boolean"},
        },
    }
)


def build_document(server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, record_type, params_map in RECORD_ROUTES:
        operation: dict[str, Any] = {
            "tags": ["roster"],
            "parameters": path_params(path),
        }
        if method == "PUT":
            operation["summary"] = f"Create or replace a {record_type} (idempotent)"
            operation["requestBody"] = json_body(json_schema(record_type))
            stored = (
                _USER
                if record_type == "user"
                else stored_schema(record_type, list(params_map.values()))
            )
            operation["responses"] = {
                "200": json_response(stored, "Stored"),
                **errors(400, 404, 409, 413, 422),
            }
        else:
            operation["summary"] = f"Remove a {record_type} (idempotent)"
            operation["responses"] = {
                "204": {"description": "Removed"},
                **errors(400, 404, 409),
            }
        paths.setdefault(path, {})[method.lower()] = operation
    paths["/api/v1/users/{user_id}"]["get"] = {
        "tags": ["roster"],
        "summary": "A person with memberships and Matrix ID",
        "parameters": path_params("/api/v1/users/{user_id}"),
        "responses": {"200": json_response(_USER), **errors(400, 404)},
    }
    paths["/api/v1/roster/bulk"] = {
        "post": {
            "tags": ["roster"],
            "summary": f"Apply up to {MAX_BULK_RECORDS} records at once, all or none",
            "requestBody": json_body(
                {
                    "type": "object",
                    "required": ["records"],
                    "properties": {
                        "records": {
                            "type": "array",
                            "maxItems": MAX_BULK_RECORDS,
                            "items": {
                                "oneOf": [
                                    json_schema(kind, with_keys=True) for kind in RECORD_FIELDS
                                ]
                            },
                        }
                    },
                }
            ),
            "responses": {
                "200": json_response(
                    closed(
                        {
                            "applied": {"type": "integer", "description": "records applied"},
                            "counts": {
                                "type": "object",
                                "description": "rows changed, by kind",
                                "example": {"users": 2, "members": 2},
                                "additionalProperties": {"type": "integer"},
                            },
                        }
                    )
                ),
                **errors(400, 409, 413, 422),
            },
        }
    }
    paths["/api/v1/users/{user_id}/can-message/{other_id}"] = {
        "get": {
            "tags": ["policy"],
            "summary": "May the user start a conversation with the other person, and why",
            "parameters": path_params("/api/v1/users/{user_id}/can-message/{other_id}"),
            "responses": {
                "200": json_response(
                    closed(
                        {
                            "allowed": {"type": "boolean"},
                            "code": {"type": "string", "example": "your_tutor"},
                            "reason": {
                                "type": "string",
                                "example": "Alex Kim teaches your course Algebra 101",
                            },
                            "institution_id": {"type": ["string", "null"]},
                        }
                    )
                ),
                **errors(400, 404),
            },
        }
    }
    paths["/api/v1/users/{user_id}/contacts"] = {
        "get": {
            "tags": ["policy"],
            "summary": "People the user may start a conversation with, best matches first",
            "parameters": [
                *path_params("/api/v1/users/{user_id}/contacts"),
                {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_CONTACTS,
                        "default": 20,
                    },
                },
            ],
            "responses": {
                "200": json_response(
                    closed(
                        {
                            "contacts": {
                                "type": "array",
                                "maxItems": MAX_CONTACTS,
                                "items": closed(
                                    {
                                        "user_id": _STRING,
                                        "display_name": _STRING,
                                        "avatar_url": _NULLABLE,
                                        "initials": _STRING,
                                        "avatar_color": _STRING,
                                        "role": _ROLE,
                                        "reason": {
                                            "type": "string",
                                            "example": "Tutor · Algebra 101",
                                        },
                                        "matrix_id": _STRING,
                                    }
                                ),
                            }
                        }
                    )
                ),
                **errors(400, 404),
            },
        }
    }
    paths.update(messaging_paths())
    paths["/api/v1/openapi.json"] = {
        "get": {
            "tags": ["meta"],
            "summary": "This document",
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "required": ["openapi", "info", "paths"],
                        "properties": {"openapi": {"type": "string", "pattern": "^3\\.1\\."}},
                    },
                    "OpenAPI 3.1",
                ),
                **errors(),
            },
        }
    }
    paths["/health"] = {
        "get": {
            "tags": ["operations"],
            "summary": "The process answers",
            "security": [],
            "responses": {
                "200": json_response(closed({"status": {"const": "ok"}}), "Yes"),
            },
        }
    }
    paths["/ready"] = {
        "get": {
            "tags": ["operations"],
            "summary": "Ready to work: started, database schema current, homeserver reachable",
            "security": [],
            "responses": {
                "200": json_response(_READINESS, "Yes"),
                "503": json_response(_READINESS, "No; `checks` says which condition fails"),
            },
        }
    }
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
            "securitySchemes": {"lmsToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA, "Event": EVENT, **EVENT_SCHEMAS},
        },
    }


class OpenApiRoute:
    """Serves the document."""

    def __init__(self) -> None:
        self._document = build_document()

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return [web.get("/api/v1/openapi.json", self.serve)]

    async def serve(self, _request: web.Request) -> web.Response:
        """`GET /api/v1/openapi.json`."""
        return web.json_response(self._document)
