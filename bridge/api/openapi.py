"""The OpenAPI document of the LMS-facing API, built from the same tables the handlers use."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from bridge.api.fields import RECORD_FIELDS, json_schema
from bridge.api.roster import MAX_BULK_RECORDS, RECORD_ROUTES
from bridge.services.policy import MAX_CONTACTS

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "snake_case, stable"},
                "message": {"type": "string", "description": "for people"},
                "field": {"type": "string", "description": "the request field at fault"},
                "missing": {"type": "object", "description": "ids that don't exist"},
                "problems": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
_DESCRIPTIONS = {
    400: "Invalid input; `error.field` names the field",
    401: "No API token",
    403: "Wrong API token, or not allowed (`error.message` says why)",
    404: "Unknown id; `error.missing` names it",
    409: "A concurrent change removed a referenced record; nothing was applied",
    413: "Body too large",
    422: "A referenced record doesn't exist; `error.missing` names it",
}
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


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {
            "description": _DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in (401, 403, *statuses)
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _params(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]


def build_document(server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, record_type, _params_map in RECORD_ROUTES:
        operation: dict[str, Any] = {
            "tags": ["roster"],
            "parameters": _params(path),
        }
        if method == "PUT":
            operation["summary"] = f"Create or replace a {record_type} (idempotent)"
            operation["requestBody"] = _body(json_schema(record_type))
            stored = _USER if record_type == "user" else {"type": "object"}
            operation["responses"] = {
                "200": _json(stored, "Stored"),
                **_errors(400, 404, 409, 413, 422),
            }
        else:
            operation["summary"] = f"Remove a {record_type} (idempotent)"
            operation["responses"] = {"204": {"description": "Removed"}, **_errors(404)}
        paths.setdefault(path, {})[method.lower()] = operation
    paths["/api/v1/users/{user_id}"]["get"] = {
        "tags": ["roster"],
        "summary": "A person with memberships and Matrix ID",
        "parameters": _params("/api/v1/users/{user_id}"),
        "responses": {"200": _json(_USER), **_errors(404)},
    }
    paths["/api/v1/roster/bulk"] = {
        "post": {
            "tags": ["roster"],
            "summary": f"Apply up to {MAX_BULK_RECORDS} records at once, all or none",
            "requestBody": _body(
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
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "applied": {"type": "integer"},
                            "counts": {"type": "object"},
                        },
                    }
                ),
                **_errors(400, 409, 413, 422),
            },
        }
    }
    paths["/api/v1/users/{user_id}/can-message/{other_id}"] = {
        "get": {
            "tags": ["policy"],
            "summary": "May the user start a conversation with the other person, and why",
            "parameters": _params("/api/v1/users/{user_id}/can-message/{other_id}"),
            "responses": {
                "200": _json(
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
                **_errors(404),
            },
        }
    }
    paths["/api/v1/users/{user_id}/contacts"] = {
        "get": {
            "tags": ["policy"],
            "summary": "People the user may start a conversation with, best matches first",
            "parameters": [
                *_params("/api/v1/users/{user_id}/contacts"),
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
                "200": _json(
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
                **_errors(400, 404),
            },
        }
    }
    conversation = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": ["active", "read_only"]},
            "room_id": {"type": "string", "example": "!abc:example.org"},
            "started_by": {"type": "string"},
            "participants": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"user_id": {"type": "string"}, "matrix_id": {"type": "string"}},
                },
            },
        },
    }
    paths["/api/v1/conversations"] = {
        "post": {
            "tags": ["conversations"],
            "summary": "Start (or find) the conversation of two people",
            "description": "Creates the private Matrix room of the pair when the initiator may "
            "start a conversation with the recipient; either person may call again later and "
            "gets the same conversation.",
            "requestBody": _body(
                {
                    "type": "object",
                    "required": ["initiator", "recipient"],
                    "properties": {
                        "initiator": {"type": "string"},
                        "recipient": {"type": "string"},
                    },
                }
            ),
            "responses": {
                "201": _json(conversation, "Created"),
                "200": _json(conversation, "The pair's existing conversation"),
                **_errors(400, 404, 413),
                "403": {
                    "description": "Not allowed by the policy; `error.message` says why and "
                    "`error.reason_code` is the policy's code",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
                "503": {"description": "The homeserver is unreachable; retry"},
            },
        }
    }
    message = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "conversation_id": {"type": "string"},
            "sender": {"type": "string"},
            "client_message_id": {"type": "string"},
            "body": {"type": "string"},
            "format": {"type": "string", "enum": ["plain", "markdown"]},
            "html": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["sent", "queued"]},
            "event_id": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
        },
    }
    paths["/api/v1/conversations/{conversation_id}/messages"] = {
        "post": {
            "tags": ["conversations"],
            "summary": "Send a message as a participant (idempotent on client_message_id)",
            "parameters": _params("/api/v1/conversations/{conversation_id}/messages"),
            "requestBody": _body(
                {
                    "type": "object",
                    "required": ["sender", "body", "client_message_id"],
                    "properties": {
                        "sender": {"type": "string"},
                        "body": {"type": "string"},
                        "format": {
                            "type": "string",
                            "enum": ["plain", "markdown"],
                            "default": "plain",
                        },
                        "client_message_id": {
                            "type": "string",
                            "description": "The LMS's own id: a repeat returns the "
                            "stored message, never a second one",
                        },
                    },
                }
            ),
            "responses": {
                "201": _json(message, "Sent; `event_id` is the Matrix event"),
                "202": _json(message, "Stored and queued: the homeserver is unreachable"),
                "200": _json(message, "A repeat of an earlier request"),
                **_errors(400, 404, 413),
                "429": {"description": "Too many messages from this sender"},
            },
        }
    }
    paths["/api/v1/events"] = {
        "get": {
            "tags": ["events"],
            "summary": "Every change, in order: read from any point, resume with next_after",
            "parameters": [
                {"name": "after", "in": "query", "schema": {"type": "integer", "default": 0}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                },
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "events": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["id", "seq", "type", "created_at", "data"],
                                    "properties": {
                                        "id": {"type": "string"},
                                        "seq": {"type": "integer"},
                                        "type": {
                                            "type": "string",
                                            "example": "message.created",
                                        },
                                        "created_at": {"type": "string", "format": "date-time"},
                                        "data": {
                                            "type": "object",
                                            "description": "message.created: message_id, "
                                            "conversation_id, sender, body, format, html "
                                            "(sanitised), event_id, origin (lms or matrix), "
                                            "created_at",
                                        },
                                    },
                                },
                            },
                            "next_after": {"type": "integer"},
                        },
                    }
                ),
                **_errors(400),
            },
        }
    }
    paths["/api/v1/openapi.json"] = {
        "get": {
            "tags": ["meta"],
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1"}, **_errors()},
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
            "schemas": {"Error": _ERROR},
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
