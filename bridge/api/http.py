"""What every LMS-facing handler shares: token check, JSON bodies within a size limit, errors."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bridge.api.errors import api_error
from bridge.domain.text import has_lone_surrogate, lone_surrogate_path
from bridge.matrix.client import HomeserverError, HomeserverUnreachable
from bridge.services.refusals import Refused

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiFailure(Exception):
    """Raised by handlers to answer with the documented error body."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def lms_auth_middleware(api_token: str, prefix: str = "/api/") -> Any:
    """Every route under `prefix` needs `Authorization: Bearer <lms api token>`."""
    expected = api_token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(prefix):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                return api_error(401, "unauthorized", "Send Authorization: Bearer <api token>")
            if not hmac.compare_digest(token.strip().encode(), expected):
                return api_error(403, "forbidden", "This API token is not valid")
        try:
            return await handler(request)
        except (ApiFailure, Refused) as failure:
            # A service's refusal carries the same status, code and details as the API's own.
            return api_error(failure.status, failure.code, failure.message, **failure.details)
        except HomeserverUnreachable:
            # Nothing that was stored is lost: the same request again completes it.
            return api_error(
                503, "homeserver_unavailable", "The homeserver can't be reached; try again"
            )
        except HomeserverError as exc:
            return api_error(
                502,
                "homeserver_refused",
                f"The homeserver refused ({exc.status} {exc.errcode or 'error'}); try again later",
            )

    return middleware


async def read_json(request: web.Request, max_bytes: int) -> Any:
    """The request's JSON body; 413 past `max_bytes`, 400 when it isn't JSON."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiFailure(
            413, "body_too_large", f"The body is larger than {max_bytes} bytes", limit=max_bytes
        )
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.read(1 << 16):  # read() returns what has arrived
        size += len(chunk)
        if size > max_bytes:
            raise ApiFailure(
                413,
                "body_too_large",
                f"The body is larger than {max_bytes} bytes",
                limit=max_bytes,
            )
        parts.append(chunk)
    try:
        value = json.loads(b"".join(parts))
    except (ValueError, RecursionError):
        raise ApiFailure(400, "invalid_json", "The body is not valid JSON") from None
    # JSON may spell half a UTF-16 pair ("\ud800"), which no database or client can store.
    if (path := lone_surrogate_path(value)) is not None:
        raise ApiFailure(
            400,
            "invalid_text",
            f"{path}: contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode",
            field=path,
        )
    return value


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; 400 otherwise."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiFailure(
            400, "invalid_parameter", f"{name}: expected a whole number", field=name
        ) from None
    if not low <= value <= high:
        raise ApiFailure(400, "invalid_parameter", f"{name}: expected {low} to {high}", field=name)
    return value


def path_id(request: web.Request, name: str) -> str:
    """An id from the URL; 400 unless it is 1-255 characters without NUL."""
    value = request.match_info[name]
    if not value.strip() or len(value) > 255 or "\x00" in value or has_lone_surrogate(value):
        raise ApiFailure(
            400, "invalid_field", f"{name}: expected an id of 1 to 255 characters", field=name
        )
    return value
