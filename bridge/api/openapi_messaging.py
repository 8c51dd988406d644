"""The conversation, message, reading and event sections of the OpenAPI document, with the
payload of every event type the LMS receives."""

from __future__ import annotations

from typing import Any

from bridge.api.openapi_parts import closed, errors, json_body, json_response, path_params

_STRING = {"type": "string"}
_ID = {"type": "string", "minLength": 1, "maxLength": 255}
_NULLABLE = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_FORMAT = {"type": "string", "enum": ["plain", "markdown", "html"]}
_STATE = {"type": "string", "enum": ["active", "read_only"]}
ATTACHMENT = {
    **closed(
        {
            "kind": {"type": "string", "enum": ["image", "audio", "video", "file"]},
            "name": _STRING,
            "size": {"type": ["integer", "null"], "description": "bytes, as the sender stated"},
            "mimetype": _NULLABLE,
        }
    ),
    "type": ["object", "null"],
    "description": "The file the message carries (download it from …/attachment)",
}

CONVERSATION = closed(
    {
        "id": _STRING,
        "state": _STATE,
        "room_id": {"type": "string", "example": "!abc:example.org"},
        "started_by": _STRING,
        "encrypted": {
            "type": "boolean",
            "description": "The room turned encrypted: the bridge no longer mirrors it",
        },
        "participants": {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": closed({"user_id": _STRING, "matrix_id": _STRING}),
        },
    }
)
_MESSAGE_PROPERTIES: dict[str, Any] = {
    "id": _STRING,
    "conversation_id": _STRING,
    "sender": _STRING,
    "client_message_id": {**_NULLABLE, "description": "null for a message typed in Matrix"},
    "body": {**_NULLABLE, "description": "null once deleted"},
    "format": _FORMAT,
    "html": {**_NULLABLE, "description": "rendered Markdown, or sanitised Matrix HTML"},
    "status": {"type": "string", "enum": ["sent", "queued", "withdrawn", "failed"]},
    "event_id": {**_NULLABLE, "description": "the Matrix event"},
    "created_at": _TIME,
    "edited_at": _NULLABLE_TIME,
    "deleted": {"type": "boolean"},
    "pending": {
        "type": ["string", "null"],
        "enum": ["edit", "redact", None],
        "description": "A change Matrix hasn't received yet (the homeserver is away)",
    },
    "attachment": {**ATTACHMENT, "description": "null when none, and once deleted"},
}
MESSAGE = closed(_MESSAGE_PROPERTIES)
# A message in a page of history also says whether the reader has read it.
_HISTORY_MESSAGE = closed(
    {
        **_MESSAGE_PROPERTIES,
        "read": {"type": "boolean", "description": "the reader's own messages count as read"},
    }
)
_INBOX_ITEM = closed(
    {
        **CONVERSATION["properties"],
        "other": closed(
            {
                "user_id": _STRING,
                "display_name": {
                    "type": "string",
                    "description": "the id, for someone no longer in the roster",
                },
                "avatar_url": _NULLABLE,
                "initials": {"type": "string", "example": "AK"},
                "role": {"type": ["string", "null"], "example": "tutor"},
                "active": {"type": "boolean"},
                "matrix_id": _STRING,
            }
        ),
        "last_message": {
            **closed({"preview": _STRING, "sender": _STRING, "created_at": _TIME}),
            "type": ["object", "null"],
        },
        "unread": {"type": "integer", "minimum": 0},
    }
)


def _event(
    description: str,
    required: dict[str, Any],
    optional: dict[str, Any] | None = None,
    **keywords: Any,
) -> dict[str, Any]:
    return closed(required, optional, description=description, **keywords)


def _when_origin(origin: str, then: dict[str, Any]) -> dict[str, Any]:
    """A condition on the payload of a change made in `origin` ("lms" or "matrix")."""
    return {"if": {"properties": {"origin": {"const": origin}}}, "then": then}


_ORIGIN = {"type": "string", "enum": ["lms", "matrix"], "description": "where it was made"}
_MESSAGE_REF = {"message_id": _STRING, "conversation_id": _STRING, "sender": _STRING}

_CLIENT_MESSAGE_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "description": "The LMS's own id: a repeat returns the stored message, never a second one",
}
_REACTION = {"message_id": _STRING, "conversation_id": _STRING, "sender": _STRING, "key": _STRING}
# The Matrix event ids a change made in a Matrix client carries; never on a change from the LMS.
_EDIT_IDS = ("edit_event_id", "undone_edit_event_id", "redaction_event_id")

# The `data` of each event type, by type.
EVENT_SCHEMAS: dict[str, dict[str, Any]] = {
    "message.created": _event(
        "A new message, from the LMS or typed in a Matrix client",
        {
            **_MESSAGE_REF,
            "body": {"type": "string", "description": "the text; for a file its caption or name"},
            "format": _FORMAT,
            "html": _NULLABLE,
            "event_id": {**_NULLABLE, "description": "null while an LMS message is queued"},
            "origin": _ORIGIN,
            "created_at": _TIME,
            "attachment": ATTACHMENT,
        },
        allOf=[_when_origin("matrix", {"properties": {"event_id": _STRING}})],
    ),
    "message.edited": _event(
        "A message's text changed (an edit, or an edit redacted in Matrix undone)",
        {
            **_MESSAGE_REF,
            "body": _STRING,
            "format": _FORMAT,
            "html": _NULLABLE,
            "origin": _ORIGIN,
            "edited_at": _TIME,
        },
        {
            "edit_event_id": {
                **_NULLABLE,
                "description": "the Matrix edit now shown (null: the original text again); "
                "always there for a change made in Matrix",
            },
            "undone_edit_event_id": {
                **_STRING,
                "description": "the edit redacted in Matrix, when this undoes one",
            },
            "redaction_event_id": {
                **_STRING,
                "description": "the redaction of the edit, when this undoes one",
            },
        },
        dependentRequired={
            "undone_edit_event_id": ["redaction_event_id"],
            "redaction_event_id": ["undone_edit_event_id"],
        },
        allOf=[
            _when_origin("matrix", {"required": ["edit_event_id"]}),
            _when_origin("lms", {"properties": dict.fromkeys(_EDIT_IDS, False)}),
            {
                # Only an undone edit can bring the original text (no edit) back.
                "if": {"not": {"required": ["undone_edit_event_id"]}},
                "then": {"properties": {"edit_event_id": _STRING}},
            },
        ],
    ),
    "message.deleted": _event(
        "A message was deleted (redacted in Matrix)",
        {**_MESSAGE_REF, "origin": _ORIGIN, "deleted_at": _TIME},
        {"redaction_event_id": {**_STRING, "description": "for a deletion made in Matrix"}},
        allOf=[
            _when_origin("matrix", {"required": ["redaction_event_id"]}),
            _when_origin("lms", {"properties": {"redaction_event_id": False}}),
        ],
    ),
    "reaction.added": _event(
        "Someone reacted to a message in a Matrix client (`key` is the emoji or text)",
        {**_REACTION, "event_id": _STRING, "created_at": _TIME},
    ),
    "reaction.removed": _event(
        "A reaction was taken back",
        {
            **_REACTION,
            "event_id": {**_STRING, "description": "the reaction's event"},
            "redaction_event_id": _STRING,
            "removed_at": _TIME,
        },
    ),
    "message.failed": _event(
        "The homeserver refused a message for good",
        {**_MESSAGE_REF, "origin": {**_ORIGIN, "enum": ["lms"]}, "reason": _STRING},
    ),
    "conversation.created": _event(
        "A conversation's room was made",
        {
            "conversation_id": _STRING,
            "participants": {"type": "array", "minItems": 2, "maxItems": 2, "items": _STRING},
            "started_by": _STRING,
            "room_id": _STRING,
            "state": _STATE,
        },
    ),
    "conversation.state_changed": _event(
        "A conversation turned read-only, or opened again",
        {"conversation_id": _STRING, "state": _STATE, "reason_code": _STRING, "reason": _STRING},
    ),
}
# One event, as the feed lists it and the webhook receives it: `data` is the schema of its type.
EVENT = {
    **closed(
        {
            "id": _STRING,
            "seq": {"type": "integer", "minimum": 1},
            "type": {"type": "string", "enum": sorted(EVENT_SCHEMAS)},
            "created_at": _TIME,
            "data": {"type": "object"},
        }
    ),
    "allOf": [
        {
            "if": {"properties": {"type": {"const": name}}},
            "then": {"properties": {"data": {"$ref": f"#/components/schemas/{name}"}}},
        }
        for name in sorted(EVENT_SCHEMAS)
    ],
}
SIGNATURE = (
    'Signed with `X-Bridge-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` under the '
    "webhook secret."
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
_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
}


def _query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    """An id in the query string."""
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": _ID,
    }


def messaging_paths() -> dict[str, dict[str, Any]]:
    """Paths of conversations, messages, reading and the event feed."""
    messages_path = "/api/v1/conversations/{conversation_id}/messages"
    message_path = "/api/v1/messages/{message_id}"
    text_body = {
        "body": {"type": "string", "description": "not blank; see messages.max_body_chars"},
        "format": {"type": "string", "enum": ["plain", "markdown"], "default": "plain"},
    }
    return {
        "/api/v1/conversations": {
            "post": {
                "tags": ["conversations"],
                "summary": "Start (or find) the conversation of two people",
                "description": "Creates the private Matrix room of the pair when the initiator "
                "may start a conversation with the recipient; either person may call again "
                "later and gets the same conversation.",
                "requestBody": json_body(
                    {
                        "type": "object",
                        "required": ["initiator", "recipient"],
                        "properties": {"initiator": _ID, "recipient": _ID},
                    }
                ),
                "responses": {
                    "201": json_response(CONVERSATION, "Created"),
                    "200": json_response(CONVERSATION, "The pair's existing conversation"),
                    **errors(400, 404, 413, 502, 503),
                },
            }
        },
        "/api/v1/users/{user_id}/conversations": {
            "get": {
                "tags": ["conversations"],
                "summary": "A person's inbox: the most recently active conversation first",
                "parameters": [*path_params("/api/v1/users/{user_id}/conversations"), _LIMIT],
                "responses": {
                    "200": json_response(
                        closed({"conversations": {"type": "array", "items": _INBOX_ITEM}})
                    ),
                    **errors(400, 404),
                },
            }
        },
        messages_path: {
            "get": {
                "tags": ["conversations"],
                "summary": "A conversation's history, a page at a time (participants only)",
                "parameters": [
                    *path_params(messages_path),
                    _query("as", "The participant reading", required=True),
                    _query("before", "A message id: the page ends just before it"),
                    _LIMIT,
                ],
                "responses": {
                    "200": json_response(
                        closed(
                            {
                                "messages": {
                                    "type": "array",
                                    "description": "oldest first; `read` is whether the "
                                    "reader has read it",
                                    "items": _HISTORY_MESSAGE,
                                },
                                "next_before": {
                                    **_NULLABLE,
                                    "description": "pass as `before` for the older page",
                                },
                            }
                        )
                    ),
                    **errors(400, 404),
                },
            },
            "post": {
                "tags": ["conversations"],
                "summary": "Send a message as a participant (idempotent on client_message_id)",
                "parameters": path_params(messages_path),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["sender", "body", "client_message_id"],
                                "properties": {
                                    "sender": _ID,
                                    **text_body,
                                    "client_message_id": _CLIENT_MESSAGE_ID,
                                },
                            }
                        },
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "description": "A file: uploaded to the homeserver as the "
                                "sender, then sent as an image, audio, video or file message "
                                "(503 when the homeserver can't take it now)",
                                "required": ["sender", "client_message_id", "file"],
                                "properties": {
                                    "sender": _ID,
                                    "client_message_id": _CLIENT_MESSAGE_ID,
                                    "body": {"type": "string", "description": "a caption"},
                                    "file": {"type": "string", "format": "binary"},
                                },
                            }
                        },
                    },
                },
                "responses": {
                    "201": json_response(MESSAGE, "Sent; `event_id` is the Matrix event"),
                    "202": json_response(
                        MESSAGE, "Stored and queued: the homeserver is unreachable"
                    ),
                    "200": json_response(MESSAGE, "A repeat of an earlier request"),
                    **errors(400, 404, 409, 413, 429, 502, 503),
                },
            },
        },
        "/api/v1/conversations/{conversation_id}/read": {
            "post": {
                "tags": ["conversations"],
                "summary": "Mark read up to a message (also the person's Matrix read receipt)",
                "parameters": path_params("/api/v1/conversations/{conversation_id}/read"),
                "requestBody": json_body(
                    {
                        "type": "object",
                        "required": ["user", "up_to"],
                        "properties": {
                            "user": _ID,
                            "up_to": {**_ID, "description": "a message id"},
                        },
                    }
                ),
                "responses": {
                    "200": json_response(
                        closed(
                            {
                                "conversation_id": _STRING,
                                "moved": {
                                    "type": "boolean",
                                    "description": "false when already read that far",
                                },
                            }
                        )
                    ),
                    **errors(400, 404),
                },
            }
        },
        message_path: {
            "patch": {
                "tags": ["conversations"],
                "summary": "Edit one's own message (an m.replace edit in Matrix)",
                "parameters": path_params(message_path),
                "requestBody": json_body(
                    {
                        "type": "object",
                        "required": ["user", "body"],
                        "properties": {"user": _ID, **text_body},
                    }
                ),
                "responses": {
                    "200": json_response(MESSAGE, "Edited, in Matrix too"),
                    "202": json_response(MESSAGE, "Edited; Matrix gets it when it is back"),
                    **errors(400, 404, 409, 413),
                },
            },
            "delete": {
                "tags": ["conversations"],
                "summary": "Delete one's own message (a redaction in Matrix)",
                "parameters": [
                    *path_params(message_path),
                    _query("as", "The message's sender", required=True),
                ],
                "responses": {
                    "200": json_response(MESSAGE, "Deleted, in Matrix too"),
                    "202": json_response(MESSAGE, "Deleted; Matrix gets it when it is back"),
                    **errors(400, 404),
                },
            },
        },
        f"{message_path}/attachment": {
            "get": {
                "tags": ["conversations"],
                "summary": "Download the file a message carries (participants only)",
                "description": "Streamed from the homeserver's media repository. Offered as an "
                "attachment; PNG, JPEG, GIF and WebP images, audio and video keep their type, "
                "any other type (one a browser could run: HTML, SVG, …) comes as "
                "application/octet-stream.",
                "parameters": [
                    *path_params(f"{message_path}/attachment"),
                    _query("as", "The participant downloading", required=True),
                ],
                "responses": {
                    "200": {
                        "description": "The file",
                        "content": {
                            media: {"schema": {"type": "string", "format": "binary"}}
                            for media in DOWNLOAD_TYPES
                        },
                    },
                    **errors(400, 404, 413, 502, 503),
                },
            }
        },
        "/api/v1/events": {
            "get": {
                "tags": ["events"],
                "summary": "Every change, in order: read from any point, resume with next_after",
                "description": "The same events are POSTed to the configured webhook (see "
                f"`webhooks`). {SIGNATURE} The `data` of each type is in components.schemas "
                "under the type's name.",
                "parameters": [
                    {
                        "name": "after",
                        "in": "query",
                        "description": "a seq: the events after it",
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 2**62,
                            "default": 0,
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 100,
                        },
                    },
                ],
                "responses": {
                    "200": json_response(
                        closed(
                            {
                                "events": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Event"},
                                },
                                "next_after": {
                                    "type": "integer",
                                    "description": "pass as `after` for the next page",
                                },
                            }
                        )
                    ),
                    **errors(400),
                },
            }
        },
    }
