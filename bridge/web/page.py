"""Serves the embedded inbox page and its files, with the headers that keep it safe inside
another site's iframe: no inline script or style, only the LMS's origins may frame it, no
referrer, no type sniffing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from importlib import resources

from aiohttp import web

PAGE_PREFIX = "/embed/"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
Signal = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def content_security_policy(allowed_origins: Sequence[str]) -> str:
    """The page's policy: its own files only, framed only by the LMS's origins."""
    ancestors = " ".join(("'self'", *allowed_origins))
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            # Avatars are the LMS's photo URLs; files open as blobs the page fetched itself.
            "img-src 'self' https: data: blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {ancestors}",
        )
    )


def security_headers(allowed_origins: Sequence[str]) -> Signal:
    """An `on_response_prepare` hook adding the page's headers to everything under /embed/
    (its API and its live stream too, which are sent before any middleware could add them)."""
    policy = content_security_policy(allowed_origins)

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith(PAGE_PREFIX):
            headers = response.headers
            headers["Content-Security-Policy"] = policy
            headers["X-Content-Type-Options"] = "nosniff"
            headers["Referrer-Policy"] = "no-referrer"
            headers.setdefault("Cache-Control", "no-store")

    return add


class InboxPage:
    """The page (one HTML file for every address of it) and its static files; the routes are
    declared with the others, in `bridge.api.embed.PAGE_FILE_OPERATIONS`."""

    def __init__(self) -> None:
        self._files = resources.files("bridge.web") / "static"

    async def page(self, _request: web.Request) -> web.Response:
        """The inbox page; its script reads the address and the link's code."""
        return self._file("index.html")

    async def static(self, request: web.Request) -> web.Response:
        """One of the page's files."""
        return self._file(request.match_info["name"])

    def _file(self, name: str) -> web.Response:
        suffix = name[name.rfind(".") :] if "." in name else ""
        if "/" in name or name.startswith(".") or suffix not in _TYPES:
            raise web.HTTPNotFound()
        path = self._files / name
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(
            body=path.read_bytes(),
            headers={"Content-Type": _TYPES[suffix], "Cache-Control": "no-cache"},
        )
