"""The LMS-facing error body: `{"error": {"code": ..., "message": ...}}`."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def api_error(status: int, code: str, message: str, **details: Any) -> web.Response:
    """An error response in the documented format."""
    return web.json_response(
        {"error": {"code": code, "message": message, **details}}, status=status
    )
