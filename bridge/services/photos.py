"""Fetching people's profile photos from the LMS, to upload them as Matrix avatars.

The photo URL comes from the LMS's data, so the bridge must not become a way to reach what only
it can reach (SSRF): only public addresses are fetched, checked after DNS resolution and again
at every redirect, unless an operator allow-lists the network of an LMS on a private network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 3
# Raster formats Matrix clients show as avatars. SVG is left out: it can carry scripts.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# NAT64's well-known prefix: DNS64 maps every IPv4 address into it, public and private alike.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PhotoUnavailable(Exception):
    """A photo URL that could not be fetched as an image."""


def is_fetchable(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> bool:
    """Whether photos may be fetched from `address`: a public one, or one in `allowed`."""
    if any(address in network for network in allowed):
        return True
    # IPv6 forms that carry an IPv4 address are judged by the address they reach.
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_fetchable(embedded, allowed)
    # is_global leaves out loopback, private, link-local (the cloud metadata address among
    # them), unspecified and shared addresses, but not multicast, nor all reserved ones.
    return address.is_global and not address.is_multicast and not address.is_reserved


class _PublicResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver and refuses any host with a non-public address.

    The connection goes to exactly the addresses returned here, so a second DNS answer can't
    swap a checked address for a private one (DNS rebinding).
    """

    def __init__(self, allowed: tuple[IPNetwork, ...]) -> None:
        self._allowed = allowed
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of `host`, all of them fetchable; PhotoUnavailable otherwise."""
        results = await self._inner.resolve(host, port, family)
        for result in results:
            _check_address(host, result["host"], self._allowed)
        return results

    async def close(self) -> None:
        """Release the default resolver."""
        await self._inner.close()


def _check_address(host: str, address: str, allowed: tuple[IPNetwork, ...]) -> None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # e.g. an IPv6 address with a zone: link-local, so refused anyway
        ip = None
    if ip is None or not is_fetchable(ip, allowed):
        where = address if host == address else f"{host} resolves to {address}, which"
        raise PhotoUnavailable(f"{where} is not a public address")


def _redacted(url: URL) -> str:
    # Photo URLs may be signed (tokens in the query or user info): keep those out of messages.
    if url.raw_user is not None or url.raw_password is not None:
        url = url.with_user(None)
    return str(url.with_query(None).with_fragment(None))


class PhotoFetcher:
    """Downloads images over HTTP(S) from public addresses, size-capped, on a pool of its own."""

    def __init__(
        self,
        timeout: float = 15.0,
        *,
        allowed_networks: Iterable[str] = (),
        max_bytes: int = MAX_PHOTO_BYTES,
    ) -> None:
        """`allowed_networks` are CIDR networks that may be fetched from although not public."""
        self._timeout = timeout
        self._allowed = tuple(ipaddress.ip_network(n) for n in allowed_networks)
        self._max_bytes = max_bytes
        self._resolver: _PublicResolver | None = None
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            await self._resolver.close()  # the connector leaves a resolver it was given open
            self._resolver = None

    async def fetch(self, url: str) -> tuple[bytes, str]:
        """The image at `url` and its content type; PhotoUnavailable when it isn't one."""
        if self._session is None:
            # The default resolver needs the running loop, hence created here. trust_env stays
            # off: through a proxy the resolver would check the proxy, not the photo's host.
            self._resolver = _PublicResolver(self._allowed)
            connector = aiohttp.TCPConnector(resolver=self._resolver)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        current = _parse(url)
        try:
            # One deadline for the whole chain of redirects and the body.
            async with asyncio.timeout(self._timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    self._check_url(current)
                    result = await self._get(self._session, current)
                    if not isinstance(result, URL):
                        return result
                    current = result
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PhotoUnavailable(f"{_redacted(current)}: {exc.__class__.__name__}") from exc
        raise PhotoUnavailable(f"{_redacted(_parse(url))}: more than {MAX_REDIRECTS} redirects")

    def _check_url(self, url: URL) -> None:
        host = url.raw_host
        if url.scheme not in ("http", "https") or not host:
            raise PhotoUnavailable(f"{_redacted(url)}: only http and https URLs are fetched")
        # aiohttp connects to what it takes for an address literal (this same test) without
        # asking the resolver, so those are checked here; anything unparseable is refused.
        if ":" in host or host.replace(".", "").isdigit():
            _check_address(host, host, self._allowed)

    async def _get(self, session: aiohttp.ClientSession, url: URL) -> URL | tuple[bytes, str]:
        """One request: the URL a redirect points to, or the image and its type."""
        async with session.get(url, allow_redirects=False) as response:
            location = response.headers.get("Location")
            if response.status in _REDIRECTS and location:
                # Followed by hand so that each hop's address is checked before connecting.
                return url.join(_parse(location))
            if response.status != 200:
                raise PhotoUnavailable(f"HTTP {response.status} from {_redacted(url)}")
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type not in IMAGE_TYPES:
                raise PhotoUnavailable(
                    f"{_redacted(url)} is {content_type or 'untyped'}, not a PNG, JPEG, GIF or "
                    "WebP image"
                )
            over = f"{_redacted(url)} is over the limit of {self._max_bytes} bytes"
            if response.content_length is not None and response.content_length > self._max_bytes:
                raise PhotoUnavailable(over)
            # read(n) returns only what is already buffered: collect chunks to the end or the cap.
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > self._max_bytes:
                    raise PhotoUnavailable(over)
            return bytes(data), content_type


def _parse(url: str) -> URL:
    try:
        return URL(url)
    except (ValueError, TypeError) as exc:
        raise PhotoUnavailable("not a valid URL") from exc
