"""Building blocks of the OpenAPI document shared by its sections."""

from __future__ import annotations

import re
from typing import Any


def closed(
    required: dict[str, Any], optional: dict[str, Any] | None = None, **keywords: Any
) -> dict[str, Any]:
    """An object with exactly these properties: `required` always present, `optional` only
    sometimes; `keywords` add to the schema (a description, conditions)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return {**schema, **keywords}


_STRING = {"type": "string"}
# One bad record of a bulk request: `field` for invalid input (400), `missing` for references
# to records that don't exist (422).
_PROBLEM = closed(
    {"index": {"type": "integer", "minimum": 0}, "code": _STRING, "message": _STRING},
    {
        "field": {"type": "string", "example": "records[3].display_name"},
        "missing": {"type": "object", "additionalProperties": _STRING},
    },
)
ERROR_SCHEMA = closed(
    {
        "error": closed(
            {
                "code": {"type": "string", "description": "snake_case, stable"},
                "message": {"type": "string", "description": "for people"},
            },
            {
                "field": {"type": "string", "description": "the request field at fault"},
                "missing": {
                    "type": "object",
                    "description": "ids that don't exist, by field",
                    "additionalProperties": _STRING,
                },
                "problems": {"type": "array", "items": _PROBLEM},
                "reason_code": {"type": "string", "description": "the policy's code"},
                "limit": {"type": "integer", "description": "the limit exceeded (413)"},
                "limit_bytes": {"type": "integer", "description": "the size limit exceeded"},
                "retry_after_seconds": {"type": "number", "description": "when to retry (429)"},
                "found": {
                    "type": "array",
                    "description": "the contact information found (422 `contact_info`)",
                    "items": {
                        "type": "object",
                        "properties": {
                            "kind": {"type": "string", "enum": ["phone", "email", "social"]},
                            "text": {"type": "string"},
                            "start": {"type": "integer"},
                            "end": {"type": "integer"},
                        },
                        "required": ["kind", "text", "start", "end"],
                        "additionalProperties": False,
                    },
                },
                "until": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "when a suspension ends (null: until lifted)",
                },
                "message_id": {
                    "type": "string",
                    "description": "the message a reused client_message_id belongs to",
                },
            },
        )
    }
)

DESCRIPTIONS = {
    400: "Invalid input; `error.field` names the field",
    401: "No API token",
    403: "Wrong API token, or not allowed (`error.message` says why; `suspended`: the sender's "
    "messaging is suspended, `error.until` says until when)",
    404: "Unknown id; `error.missing` names it",
    409: "Conflicts with the current state (see `error.code`; a reused client_message_id "
    "names its message in `error.message_id`)",
    413: "Too large: the body, a file, a text or the number of records; `error.limit` (or "
    "`error.limit_bytes`) says the limit",
    422: "A referenced record doesn't exist (`error.missing` names it), or the request can't "
    "apply to it (`error.message` says why)",
    429: "Too many messages; `error.retry_after_seconds` says when to retry",
    502: "The homeserver refused the request; `error.message` says how",
    503: "The homeserver is unreachable; retry",
}


def errors(*statuses: int) -> dict[str, Any]:
    """The error responses of an operation: 401 and 403 (the API token), and `statuses`."""
    return {
        str(status): {
            "description": DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in (401, 403, *statuses)
    }


def json_response(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    """A response with a JSON body."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def path_params(path: str) -> list[dict[str, Any]]:
    """The parameters of a path template: ids of 1 to 255 characters."""
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
        for name in re.findall(r"{(\w+)}", path)
    ]
