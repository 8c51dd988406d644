"""Building blocks of the OpenAPI document shared by its sections."""

from __future__ import annotations

import re
from typing import Any

ERROR_SCHEMA = {
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
                "reason_code": {"type": "string", "description": "the policy's code"},
            },
        }
    },
}
DESCRIPTIONS = {
    400: "Invalid input; `error.field` names the field",
    401: "No API token",
    403: "Wrong API token, or not allowed (`error.message` says why)",
    404: "Unknown id; `error.missing` names it",
    409: "Conflicts with the current state (see `error.code`)",
    413: "Body too large",
    422: "A referenced record doesn't exist; `error.missing` names it",
    429: "Too many messages; `error.retry_after_seconds` says when to retry",
    502: "The homeserver refused to hand over what was asked for",
    503: "The homeserver is unreachable; retry",
}


def errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {
            "description": DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in (401, 403, *statuses)
    }


def json_response(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def path_params(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]
