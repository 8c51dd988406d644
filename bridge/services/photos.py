"""Fetching people's profile photos from the LMS, to upload them as Matrix avatars."""

from __future__ import annotations

import aiohttp

MAX_PHOTO_BYTES = 5 * 1024 * 1024


class PhotoUnavailable(Exception):
    """A photo URL that could not be fetched as an image."""


class PhotoFetcher:
    """Downloads images over HTTP(S), size-capped, on a connection pool of its own."""

    def __init__(self, timeout: float = 15.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str) -> tuple[bytes, str]:
        """The image at `url` and its content type; PhotoUnavailable when it isn't one."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(url) as response:
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
                if response.status != 200:
                    raise PhotoUnavailable(f"HTTP {response.status} from {url}")
                if not content_type.startswith("image/"):
                    raise PhotoUnavailable(f"{url} is {content_type or 'untyped'}, not an image")
                data = await response.content.read(MAX_PHOTO_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PhotoUnavailable(f"{url}: {exc.__class__.__name__}") from exc
        if len(data) > MAX_PHOTO_BYTES:
            raise PhotoUnavailable(f"{url} is larger than {MAX_PHOTO_BYTES} bytes")
        return data, content_type
