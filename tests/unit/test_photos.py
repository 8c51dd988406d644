"""Profile photos: public addresses only (after DNS and at every redirect), whole bodies, images.

The photo hosts are real HTTP servers on loopback. Loopback is itself refused, so the refusals
are tested with the default (empty) allow-list, and the fetches that must work with loopback
allow-listed. No test sends traffic outside 127.0.0.0/8: connections are watched, and refused
addresses must be refused before any connection is attempted.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from bridge.config import ConfigError, env_name, load_config
from bridge.services import photos
from bridge.services.photos import PhotoFetcher, PhotoUnavailable, is_fetchable
from tests.support.http import serve

LOOPBACK = ["127.0.0.0/8"]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
# What the watch on connections lets through: loopback, and a name the fake resolver maps there.
LOOPBACK_HOSTS = {"127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1", "localhost", "photos.test"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PhotoHost:
    """A loopback HTTP server with a handler per path, remembering the requests it got."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[web.Request] = []
        self.port = 0
        self.app = web.Application()
        self.app.router.add_route("*", "/{path:.*}", self._dispatch)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def image(self, path: str, body: bytes = PNG, content_type: str = "image/png") -> str:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(body=body, headers={"Content-Type": content_type})

        self.routes[path] = handler
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location})

        self.routes[path] = handler
        return self.url(path)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404)
        return await handler(request)


async def _start(host: PhotoHost, address: str = "127.0.0.1") -> web.AppRunner:
    if address == "127.0.0.1":
        runner, host.port = await serve(host.app)
        return runner
    runner = web.AppRunner(host.app)  # another loopback address, which serve() doesn't offer
    await runner.setup()
    site = web.TCPSite(runner, address, 0)
    await site.start()
    host.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner


@pytest.fixture
async def photo_host() -> AsyncIterator[PhotoHost]:
    host = PhotoHost()
    runner = await _start(host)
    try:
        yield host
    finally:
        await runner.cleanup()


@pytest.fixture
async def fetcher_factory() -> AsyncIterator[Callable[..., PhotoFetcher]]:
    made: list[PhotoFetcher] = []

    def make(**kwargs: Any) -> PhotoFetcher:
        made.append(PhotoFetcher(**kwargs))
        return made[-1]

    try:
        yield make
    finally:
        for fetcher in made:
            await fetcher.close()


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hosts connections were asked for; anything but loopback fails the test unsent."""
    attempted: list[str] = []
    connect = aiohttp.BaseConnector.connect

    async def watched(self: aiohttp.BaseConnector, req: Any, *args: Any, **kwargs: Any) -> Any:
        host = req.url.raw_host or ""
        attempted.append(host)
        if host not in LOOPBACK_HOSTS:
            raise AssertionError(f"a connection to {host} was attempted")
        return await connect(self, req, *args, **kwargs)

    monkeypatch.setattr(aiohttp.BaseConnector, "connect", watched)
    return attempted


class FakeResolver(AbstractResolver):
    """Answers every name with the given addresses, as a DNS server the LMS's data points at."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        pass


def _resolve_to(monkeypatch: pytest.MonkeyPatch, addresses: list[str]) -> None:
    monkeypatch.setattr(photos, "DefaultResolver", lambda: FakeResolver(addresses))


# --- which addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "::1",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "fc00::1",
        "fd12:3456::1",
        "169.254.169.254",
        "fe80::1",
        "0.0.0.0",
        "::",
        "100.64.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "ff02::1",
        "240.0.0.1",
        "255.255.255.255",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    ],
)
def test_non_public_addresses_are_not_fetchable(address: str) -> None:
    assert not is_fetchable(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_fetchable(address: str) -> None:
    assert is_fetchable(ipaddress.ip_address(address))


def test_allowed_networks_make_private_addresses_fetchable() -> None:
    allowed = [ipaddress.ip_network("10.1.0.0/16")]
    assert is_fetchable(ipaddress.ip_address("10.1.2.3"), allowed)
    assert is_fetchable(ipaddress.ip_address("::ffff:10.1.2.3"), allowed)
    assert not is_fetchable(ipaddress.ip_address("10.2.0.1"), allowed)


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
async def test_loopback_is_refused_without_a_request(
    photo_host: PhotoHost, fetcher_factory: Callable[..., PhotoFetcher], host: str
) -> None:
    photo_host.image("/me.png")
    with pytest.raises(PhotoUnavailable, match="not a public address"):
        await fetcher_factory().fetch(photo_host.url("/me.png", host))
    assert photo_host.requests == []


async def test_metadata_address_is_refused_without_connecting(
    fetcher_factory: Callable[..., PhotoFetcher], connections: list[str]
) -> None:
    with pytest.raises(PhotoUnavailable, match="not a public address"):
        await fetcher_factory().fetch("http://169.254.169.254/latest/meta-data/")
    assert connections == []


@pytest.mark.parametrize(
    "addresses", [["169.254.169.254"], ["10.0.0.1"], ["93.184.216.34", "10.0.0.1"], ["fe80::1"]]
)
async def test_a_name_with_any_non_public_address_is_refused_without_connecting(
    monkeypatch: pytest.MonkeyPatch,
    fetcher_factory: Callable[..., PhotoFetcher],
    connections: list[str],
    addresses: list[str],
) -> None:
    _resolve_to(monkeypatch, addresses)
    with pytest.raises(PhotoUnavailable, match="not a public address"):
        await fetcher_factory().fetch("http://photos.test/me.png")
    assert set(connections) <= {"photos.test"}  # asked for, refused at resolution


async def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(
    monkeypatch: pytest.MonkeyPatch,
    photo_host: PhotoHost,
    fetcher_factory: Callable[..., PhotoFetcher],
) -> None:
    _resolve_to(monkeypatch, ["127.0.0.1"])
    photo_host.image("/me.png")
    fetcher = fetcher_factory(allowed_networks=LOOPBACK)
    assert await fetcher.fetch(f"http://photos.test:{photo_host.port}/me.png") == (
        PNG,
        "image/png",
    )
    assert photo_host.requests[0].host == f"photos.test:{photo_host.port}"


async def test_redirect_to_a_refused_loopback_server_sends_it_nothing(
    photo_host: PhotoHost, fetcher_factory: Callable[..., PhotoFetcher], connections: list[str]
) -> None:
    other = PhotoHost()
    runner = await _start(other, "127.0.0.2")
    try:
        other.image("/me.png")
        start = photo_host.redirect("/start", other.url("/me.png", "127.0.0.2"))
        fetcher = fetcher_factory(allowed_networks=["127.0.0.1/32"])
        with pytest.raises(PhotoUnavailable, match=r"127\.0\.0\.2 is not a public address"):
            await fetcher.fetch(start)
        assert other.requests == []
        assert connections == ["127.0.0.1"]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "target", ["http://[::1]:9/me.png", "http://10.0.0.1/me.png", "http://169.254.169.254/"]
)
async def test_redirect_to_a_non_public_address_is_refused_before_connecting(
    photo_host: PhotoHost,
    fetcher_factory: Callable[..., PhotoFetcher],
    connections: list[str],
    target: str,
) -> None:
    start = photo_host.redirect("/start", target)
    with pytest.raises(PhotoUnavailable, match="not a public address"):
        await fetcher_factory(allowed_networks=["127.0.0.1/32"]).fetch(start)
    assert connections == ["127.0.0.1"]


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/me.png", "file:///etc/passwd"])
async def test_redirect_to_another_scheme_is_refused(
    photo_host: PhotoHost, fetcher_factory: Callable[..., PhotoFetcher], target: str
) -> None:
    start = photo_host.redirect("/start", target)
    with pytest.raises(PhotoUnavailable, match="only http and https"):
        await fetcher_factory(allowed_networks=LOOPBACK).fetch(start)


async def test_three_redirects_are_followed_relative_or_absolute(
    photo_host: PhotoHost, fetcher_factory: Callable[..., PhotoFetcher]
) -> None:
    photo_host.image("/photos/me.png")
    photo_host.redirect("/c", "photos/me.png", status=307)  # relative to /c
    photo_host.redirect("/b/x", "/c", status=301)
    start = photo_host.redirect("/a", photo_host.url("/b/x"))
    fetcher = fetcher_factory(allowed_networks=LOOPBACK)
    assert await fetcher.fetch(start) == (PNG, "image/png")
    assert [r.path for r in photo_host.requests] == ["/a", "/b/x", "/c", "/photos/me.png"]


async def test_more_than_three_redirects_are_refused(
    photo_host: PhotoHost, fetcher_factory: Callable[..., PhotoFetcher]
) -> None:
    photo_host.image("/4")
    for hop in range(4):
        photo_host.redirect(f"/{hop}", f"/{hop + 1}")
    with pytest.raises(PhotoUnavailable, match="more than 3 redirects"):
        await fetcher_factory(allowed_networks=LOOPBACK).fetch(photo_host.url("/0"))
    assert [r.path for r in photo_host.requests] == ["/0", "/1", "/2", "/3"]


# --- bodies and types --------------------------------------------------------------------------


def _streamed(body: bytes, content_type: str = "image/png") -> Handler:
    """A handler that sends `body` chunked, without a Content-Length."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 16 * 1024):
            await response.write(body[start : start + 16 * 1024])
        await response.write_eof()
        return response

    return handler


@pytest.mark.parametrize("size", [300 * 1024, 2 * 1024 * 1024])
@pytest.mark.parametrize("streamed", [False, True], ids=["sized", "chunked"])
async def test_large_photos_arrive_whole(
    photo_host: PhotoHost,
    fetcher_factory: Callable[..., PhotoFetcher],
    size: int,
    streamed: bool,
) -> None:
    body = (PNG * (size // len(PNG) + 1))[:size]
    if streamed:
        photo_host.routes["/big.png"] = _streamed(body)
    else:
        photo_host.image("/big.png", body)
    data, content_type = await fetcher_factory(allowed_networks=LOOPBACK).fetch(
        photo_host.url("/big.png")
    )
    assert len(data) == size
    assert data == body
    assert content_type == "image/png"


@pytest.mark.parametrize("streamed", [False, True], ids=["sized", "chunked"])
async def test_a_photo_over_the_cap_is_refused(
    photo_host: PhotoHost, fetcher_factory: Callable[..., PhotoFetcher], streamed: bool
) -> None:
    body = b"x" * 100_001
    if streamed:
        photo_host.routes["/big.png"] = _streamed(body)
    else:
        photo_host.image("/big.png", body)
    photo_host.image("/fits.png", body[:-1])
    fetcher = fetcher_factory(allowed_networks=LOOPBACK, max_bytes=100_000)
    assert (await fetcher.fetch(photo_host.url("/fits.png")))[0] == body[:-1]
    with pytest.raises(PhotoUnavailable, match="over the limit of 100000 bytes"):
        await fetcher.fetch(photo_host.url("/big.png"))


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "application/octet-stream", "image/svg+xml", "IMAGE/SVG+XML; charset=utf-8"],
)
async def test_non_images_and_svg_are_refused(
    photo_host: PhotoHost, fetcher_factory: Callable[..., PhotoFetcher], content_type: str
) -> None:
    url = photo_host.image("/me", b"<svg onload='alert(1)'/>", content_type)
    with pytest.raises(PhotoUnavailable, match="not a PNG, JPEG, GIF or WebP image"):
        await fetcher_factory(allowed_networks=LOOPBACK).fetch(url)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("image/png", "image/png"),
        ("image/jpeg", "image/jpeg"),
        ("image/gif", "image/gif"),
        ("Image/WebP; q=1", "image/webp"),
    ],
)
async def test_raster_images_are_accepted(
    photo_host: PhotoHost,
    fetcher_factory: Callable[..., PhotoFetcher],
    content_type: str,
    expected: str,
) -> None:
    url = photo_host.image("/me", PNG, content_type)
    assert await fetcher_factory(allowed_networks=LOOPBACK).fetch(url) == (PNG, expected)


async def test_errors_leave_out_the_url_secrets(
    photo_host: PhotoHost, fetcher_factory: Callable[..., PhotoFetcher]
) -> None:
    url = f"http://user:hunter2@127.0.0.1:{photo_host.port}/missing.png?signature=s3cr3t"
    with pytest.raises(PhotoUnavailable, match="HTTP 404") as excinfo:
        await fetcher_factory(allowed_networks=LOOPBACK).fetch(url)
    assert "hunter2" not in str(excinfo.value)
    assert "s3cr3t" not in str(excinfo.value)


# --- configuration -----------------------------------------------------------------------------

MINIMAL = """\
homeserver:
  url: http://127.0.0.1:8008
  server_name: example.org
appservice:
  public_url: http://127.0.0.1:29340
"""


def _config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_allowed_networks_default_to_none(tmp_path: Path) -> None:
    assert load_config(_config_file(tmp_path, MINIMAL), environ={}).lms.photo_allowed_networks == ()


def test_allowed_networks_parse_from_the_file_and_the_environment(tmp_path: Path) -> None:
    text = MINIMAL + "lms:\n  photo_allowed_networks: [10.1.2.0/24, 'fd00::/8']\n"
    config = load_config(_config_file(tmp_path, text), environ={})
    assert config.lms.photo_allowed_networks == ("10.1.2.0/24", "fd00::/8")
    environ = {env_name("lms", "photo_allowed_networks"): "192.168.0.0/16, 10.0.0.0/8"}
    config = load_config(_config_file(tmp_path, MINIMAL), environ=environ)
    assert config.lms.photo_allowed_networks == ("192.168.0.0/16", "10.0.0.0/8")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[10.0.0.0/33]", "lms.photo_allowed_networks: not a CIDR network"),
        ("[intranet]", "lms.photo_allowed_networks: not a CIDR network"),
        ("[10.0.0.5/8]", "lms.photo_allowed_networks: not a CIDR network: 10.0.0.5/8 has host"),
        ("{a: 1}", "lms.photo_allowed_networks: expected a list"),
        ("[[1]]", "lms.photo_allowed_networks: expected text"),
    ],
)
def test_bad_allowed_networks_name_the_key(tmp_path: Path, value: str, message: str) -> None:
    path = _config_file(tmp_path, MINIMAL + f"lms:\n  photo_allowed_networks: {value}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, environ={})
    assert str(path) in str(excinfo.value)
    assert message in str(excinfo.value)
