"""What every LMS-facing handler shares: token check, JSON bodies within a size limit, errors."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from bridge.api.errors import api_error
from bridge.contract.shapes import FieldError, ParameterError, dump, load, load_query
from bridge.domain.text import has_lone_surrogate, lone_surrogate_path, may_spell_surrogate
from bridge.matrix.client import HomeserverError, HomeserverUnreachable
from bridge.services.refusals import Refused

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


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
        except ParameterError as exc:
            return api_error(400, "invalid_parameter", str(exc), field=exc.field)
        except FieldError as exc:
            return api_error(400, "invalid_field", str(exc), field=exc.field)
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
    document = b"".join(parts)
    try:
        value = json.loads(document)
    except (ValueError, RecursionError):
        raise ApiFailure(400, "invalid_json", "The body is not valid JSON") from None
    # JSON may spell half a UTF-16 pair ("\ud800"), which no database or client can store.
    if may_spell_surrogate(document) and (path := lone_surrogate_path(value)) is not None:
        raise ApiFailure(
            400,
            "invalid_text",
            f"{path}: contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode",
            field=path,
        )
    return value


async def read_body(request: web.Request, shape: type[T], max_bytes: int) -> T:
    """The request's JSON body as `shape` (400 naming the field at fault, 413 past
    `max_bytes`)."""
    return load(shape, await read_json(request, max_bytes))


def read_query(request: web.Request, shape: type[T]) -> T:
    """The request's query parameters as `shape` (400 naming the parameter at fault)."""
    return load_query(shape, request.query)


def reply(view: Any, status: int = 200) -> web.Response:
    """A JSON answer holding a shape."""
    return web.json_response(dump(view), status=status)


def path_id(request: web.Request, name: str) -> str:
    """An id from the URL; 400 unless it is 1-255 characters without NUL."""
    value = request.match_info[name]
    if not value.strip() or len(value) > 255 or "\x00" in value or has_lone_surrogate(value):
        raise ApiFailure(
            400, "invalid_field", f"{name}: expected an id of 1 to 255 characters", field=name
        )
    return value
