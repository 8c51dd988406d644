"""The OpenAPI document of the LMS-facing API, built from the same tables the handlers use."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.fields import RECORD_FIELDS, json_schema
from bridge.api.openapi_messaging import EVENT_SCHEMAS, messaging_paths
from bridge.api.openapi_parts import ERROR_SCHEMA, errors, json_body, json_response, path_params
from bridge.api.roster import MAX_BULK_RECORDS, RECORD_ROUTES
from bridge.services.policy import MAX_CONTACTS

_USER = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "display_name": {"type": "string"},
        "avatar_url": {"type": ["string", "null"]},
        "initials": {"type": "string"},
        "avatar_color": {"type": "string"},
        "active": {"type": "boolean"},
        "availability": {"type": ["object", "null"]},
        "matrix_id": {"type": "string", "example": "@_lms_42:example.org"},
        "memberships": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"institution_id": {"type": "string"}, "role": {"type": "string"}},
            },
        },
    },
}


def build_document(server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, record_type, _params_map in RECORD_ROUTES:
        operation: dict[str, Any] = {
            "tags": ["roster"],
            "parameters": path_params(path),
        }
        if method == "PUT":
            operation["summary"] = f"Create or replace a {record_type} (idempotent)"
            operation["requestBody"] = json_body(json_schema(record_type))
            stored = _USER if record_type == "user" else {"type": "object"}
            operation["responses"] = {
                "200": json_response(stored, "Stored"),
                **errors(400, 404, 409, 413, 422),
            }
        else:
            operation["summary"] = f"Remove a {record_type} (idempotent)"
            operation["responses"] = {"204": {"description": "Removed"}, **errors(404)}
        paths.setdefault(path, {})[method.lower()] = operation
    paths["/api/v1/users/{user_id}"]["get"] = {
        "tags": ["roster"],
        "summary": "A person with memberships and Matrix ID",
        "parameters": path_params("/api/v1/users/{user_id}"),
        "responses": {"200": json_response(_USER), **errors(404)},
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
                    {
                        "type": "object",
                        "properties": {
                            "applied": {"type": "integer"},
                            "counts": {"type": "object"},
                        },
                    }
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
                    {
                        "type": "object",
                        "required": ["allowed", "code", "reason"],
                        "properties": {
                            "allowed": {"type": "boolean"},
                            "code": {"type": "string", "example": "your_tutor"},
                            "reason": {
                                "type": "string",
                                "example": "Alex Kim teaches your course Algebra 101",
                            },
                            "institution_id": {"type": ["string", "null"]},
                        },
                    }
                ),
                **errors(404),
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
                    {
                        "type": "object",
                        "properties": {
                            "contacts": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "user_id": {"type": "string"},
                                        "display_name": {"type": "string"},
                                        "avatar_url": {"type": ["string", "null"]},
                                        "initials": {"type": "string"},
                                        "avatar_color": {"type": "string"},
                                        "role": {"type": "string"},
                                        "reason": {
                                            "type": "string",
                                            "example": "Tutor · Algebra 101",
                                        },
                                        "matrix_id": {"type": "string"},
                                    },
                                },
                            }
                        },
                    }
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
            "responses": {"200": {"description": "OpenAPI 3.1"}, **errors()},
        }
    }
    for path, summary in (("/health", "The process answers"), ("/ready", "Ready to work")):
        paths[path] = {
            "get": {
                "tags": ["operations"],
                "summary": summary,
                "security": [],
                "responses": {"200": {"description": "Yes"}, "503": {"description": "No"}},
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
        "components": {
            "securitySchemes": {"lmsToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA, **EVENT_SCHEMAS},
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
