"""Everything that talks to the homeserver goes through `HomeserverClient`.

Plain appservice calls (register, ping, versions, admin) are made directly on one shared aiohttp
session; acting as an account goes through a matrix-nio `AsyncClient` per account that shares the
same session and adds the appservice's ``user_id`` query parameter to every request.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import aiohttp
from nio import AsyncClient, AsyncClientConfig, RoomPreset
from nio.responses import ErrorResponse

from bridge.cache import BoundedCache

log = logging.getLogger(__name__)

MAX_CACHED_INTENTS = 2048
MAX_REMEMBERED_SENDS = 10_000
# Path segments after which the rest names one request, not a kind (a txn id, a state key).
_KIND_ENDS = {"send": 1, "state": 1, "redact": 0, "account_data": 1, "receipt": 1}


def call_name(method: str, path: str) -> str:
    """A homeserver request's kind, for counting: the method and the path with ids left out
    ("PUT rooms/{id}/send/m.room.message")."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts[:1] == ["_matrix"]:
        parts = parts[3:] if len(parts) > 3 else parts[2:]  # _matrix/client/v3/…, …/versions
    elif parts[:2] == ["_synapse", "admin"]:
        parts = ["admin", *parts[3:]]  # _synapse/admin/v1/…
    kept: list[str] = []
    keep_after: int | None = None
    for part in parts:
        if keep_after is not None:
            if keep_after == 0:
                break
            keep_after -= 1
        if part[:1] in "!@#$" or part[:3].upper() in ("%21", "%40", "%23", "%24"):
            kept.append("{id}")
            continue
        kept.append(part)
        if keep_after is None and part in _KIND_ENDS:
            keep_after = _KIND_ENDS[part]
    return f"{method.upper()} {'/'.join(kept)}"


class HomeserverError(Exception):
    """The homeserver answered with an error."""

    def __init__(self, status: int, errcode: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {errcode}: {message}")
        self.status = status
        self.errcode = errcode
        self.message = message
        self.body = body


class HomeserverUnreachable(Exception):
    """The homeserver could not be reached (connection refused, timeout, TLS failure…)."""


class _ActingClient(AsyncClient):
    """A nio client that acts as one account through the appservice token."""

    async def send(  # type: ignore[override]
        self,
        method: str,
        path: str,
        data: Any = None,
        headers: dict[str, str] | None = None,
        trace_context: Any = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> aiohttp.ClientResponse:
        parts = urlsplit(path)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "user_id"]
        query.append(("user_id", self.user_id))
        path = urlunsplit(parts._replace(query=urlencode(query)))
        return await super().send(method, path, data, headers, trace_context, timeout)

    async def close(self) -> None:
        # The session belongs to HomeserverClient; never let nio close it.
        return None


class Intent:
    """Acting as one account: the operations the bridge performs on its behalf."""

    def __init__(self, owner: HomeserverClient, nio_client: _ActingClient) -> None:
        self._owner = owner
        self._nio = nio_client
        self.user_id: str = nio_client.user_id

    async def set_displayname(self, name: str) -> None:
        """Set the account's global display name."""
        await self._owner.call_nio(self._nio.set_displayname(name))

    async def set_avatar_url(self, mxc: str) -> None:
        """Set the account's global avatar."""
        await self._owner.call_nio(self._nio.set_avatar(mxc))

    async def set_member_profile(self, room_id: str, name: str, avatar_url: str | None) -> None:
        """Set this account's name and avatar in one room (its member event there)."""
        content: dict[str, Any] = {"membership": "join", "displayname": name}
        if avatar_url is not None:
            content["avatar_url"] = avatar_url
        await self._owner.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/m.room.member/"
            f"{quote(self.user_id, safe='')}",
            body=content,
            as_user=self.user_id,
        )

    async def create_room(
        self,
        alias_localpart: str,
        initial_state: list[dict[str, Any]],
        power_levels: dict[str, Any],
        federate: bool,
        invite: Sequence[str] = (),
    ) -> str:
        """Create a private, direct room owned by this account, inviting `invite`; returns its
        id."""
        response = await self._owner.call_nio(
            self._nio.room_create(
                alias=alias_localpart,
                federate=federate,
                is_direct=True,
                invite=list(invite),
                preset=RoomPreset.private_chat,
                initial_state=initial_state,
                power_level_override=power_levels,
            )
        )
        return str(response.room_id)

    async def create_private_room(
        self,
        name: str,
        topic: str,
        alias_localpart: str | None,
        power_levels: dict[str, Any],
    ) -> str:
        """Create a private, unencrypted group room owned by this account; returns its id."""
        body: dict[str, Any] = {
            "preset": "private_chat",
            "visibility": "private",
            "name": name,
            "topic": topic,
            "power_level_content_override": power_levels,
            "initial_state": [
                {
                    "type": "m.room.guest_access",
                    "state_key": "",
                    "content": {"guest_access": "forbidden"},
                }
            ],
        }
        if alias_localpart is not None:
            body["room_alias_name"] = alias_localpart
        response = await self._owner.request(
            "POST", "/_matrix/client/v3/createRoom", body=body, as_user=self.user_id
        )
        return str(response["room_id"])

    async def invite(self, room_id: str, user_id: str) -> None:
        """Invite someone (already being a member is fine)."""
        try:
            await self._owner.call_nio(self._nio.room_invite(room_id, user_id))
        except HomeserverError as exc:
            if "already in the room" not in exc.message:
                raise

    async def join(self, room_id: str) -> None:
        """Join a room this account is invited to (or already in)."""
        await self._owner.call_nio(self._nio.join(room_id))

    async def send_message(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        """Send an `m.room.message` as this account; returns the event id.

        The homeserver deduplicates `txn_id` (per appservice, for a while, in memory), so a
        retry with the same id after a timeout does not post twice.
        """
        response = await self._owner.call_nio(
            self._nio.room_send(room_id, "m.room.message", content, tx_id=txn_id)
        )
        return self._owner.sent(str(response.event_id))

    async def send_event(
        self, room_id: str, event_type: str, content: dict[str, Any], txn_id: str
    ) -> str:
        """Send any room event as this account (same txn_id rule as `send_message`)."""
        response = await self._owner.call_nio(
            self._nio.room_send(room_id, event_type, content, tx_id=txn_id)
        )
        return self._owner.sent(str(response.event_id))

    async def redact(self, room_id: str, event_id: str, reason: str | None, txn_id: str) -> str:
        """Redact an event as this account; returns the redaction's event id."""
        response = await self._owner.call_nio(
            self._nio.room_redact(room_id, event_id, reason, tx_id=txn_id)
        )
        return self._owner.sent(str(response.event_id))

    async def send_read_receipt(self, room_id: str, event_id: str) -> None:
        """Mark the room read up to `event_id` for this account (an unthreaded read receipt)."""
        await self._owner.request(
            "POST",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/receipt/m.read/"
            f"{quote(event_id, safe='')}",
            body={},
            as_user=self.user_id,
        )

    async def leave(self, room_id: str, reason: str | None = None) -> None:
        """Leave a room (or decline an invite), telling the others why."""
        await self._owner.request(
            "POST",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/leave",
            body={"reason": reason} if reason else {},
            as_user=self.user_id,
        )

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        """The content of a room state event ({} when there is none)."""
        try:
            result: dict[str, Any] = await self._owner.request(
                "GET",
                f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/"
                f"{quote(event_type, safe='')}/{quote(state_key, safe='')}",
                as_user=self.user_id,
            )
        except HomeserverError as exc:
            if exc.status == 404:
                return {}
            raise
        return result

    async def set_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> str:
        """Set a room state event; returns its event id."""
        response = await self._owner.call_nio(
            self._nio.room_put_state(room_id, event_type, content, state_key)
        )
        return str(response.event_id)

    async def upload(self, data: bytes, content_type: str, filename: str) -> str:
        """Upload media as this account; returns its mxc:// URI."""
        response, _keys = await self._owner.call_nio(
            self._nio.upload(io.BytesIO(data), content_type, filename, filesize=len(data))
        )
        return response.content_uri  # type: ignore[no-any-return]


class HomeserverClient:
    """The bridge's one connection to the homeserver."""

    def __init__(
        self,
        base_url: str,
        as_token: str,
        appservice_id: str,
        request_timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._as_token = as_token
        self._appservice_id = appservice_id
        self._timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None
        # Most recently used intents; the bridge may act for many thousands of accounts.
        self._intents: BoundedCache[str, Intent] = BoundedCache(MAX_CACHED_INTENTS)
        # When a request last failed to reach the homeserver (catching up after outages).
        self.last_unreachable: datetime | None = None
        self.calls: Counter[str] = Counter()  # requests made, by `call_name`
        # Events this process sent lately: their echoes need no look in the database.
        self._sent: BoundedCache[str, bool] = BoundedCache(MAX_REMEMBERED_SENDS)

    async def start(self) -> None:
        """Open the shared connection pool."""
        if self._session is None:
            counting = aiohttp.TraceConfig()
            counting.on_request_start.append(self._count_call)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(limit=100),
                trace_configs=[counting],
            )

    def sent(self, event_id: str) -> str:
        """Remember that the bridge sent `event_id` (returns it)."""
        self._sent.put(event_id, True)
        return event_id

    def sent_by_bridge(self, event_id: str | None) -> bool:
        """Whether the homeserver answered one of this process's recent sends with `event_id`
        (False is no proof of the contrary: the send may be older, or another process's)."""
        return event_id is not None and self._sent.get(event_id) is not None

    async def _count_call(self, _session: Any, _context: Any, params: Any) -> None:
        self.calls[call_name(params.method, params.url.raw_path)] += 1

    async def close(self) -> None:
        """Close the pool; intents become unusable."""
        self._intents.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared aiohttp session (started on demand by `start`)."""
        if self._session is None:
            raise RuntimeError("HomeserverClient.start() was not called")
        return self._session

    # --- plain requests ---

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        token: str | None = None,
        as_user: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        """One JSON request; returns the decoded body or raises HomeserverError/Unreachable."""
        query = dict(params or {})
        if as_user is not None:
            query["user_id"] = as_user
        token = self._as_token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = self.base_url + path
        try:
            async with self.session.request(
                method,
                url,
                params=query or None,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout or self._timeout),
            ) as response:
                text = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.last_unreachable = datetime.now(UTC)
            raise HomeserverUnreachable(
                f"{method} {path}: {exc.__class__.__name__}: {exc}"
            ) from exc
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = None
        if status >= 400 or data is None:
            errcode = data.get("errcode", "") if isinstance(data, dict) else ""
            message = data.get("error", "") if isinstance(data, dict) else text[:200]
            raise HomeserverError(status, errcode, message, data)
        return data

    async def versions(self) -> dict[str, Any]:
        """`GET /_matrix/client/versions` (no authentication)."""
        result: dict[str, Any] = await self.request(
            "GET", "/_matrix/client/versions", token="", timeout=10
        )
        return result

    async def whoami(self, as_user: str | None = None) -> str:
        """The user the as_token (optionally masquerading) acts as."""
        result = await self.request("GET", "/_matrix/client/v3/account/whoami", as_user=as_user)
        return str(result["user_id"])

    async def register(self, localpart: str) -> bool:
        """Register a namespaced account; False when it already existed."""
        try:
            await self.request(
                "POST",
                "/_matrix/client/v3/register",
                body={
                    "type": "m.login.application_service",
                    "username": localpart,
                    "inhibit_login": True,
                },
            )
        except HomeserverError as exc:
            if exc.errcode == "M_USER_IN_USE":
                return False
            raise
        return True

    async def profile(self, user_id: str) -> dict[str, Any]:
        """A user's global profile (empty when the homeserver has none)."""
        try:
            result: dict[str, Any] = await self.request(
                "GET", f"/_matrix/client/v3/profile/{quote(user_id, safe='')}"
            )
        except HomeserverError as exc:
            if exc.status == 404 or exc.errcode == "M_NOT_FOUND":
                return {}
            raise
        return result

    async def resolve_alias(self, alias: str) -> str | None:
        """The room an alias points to, or None."""
        try:
            result = await self.request(
                "GET", f"/_matrix/client/v3/directory/room/{quote(alias, safe='')}"
            )
        except HomeserverError as exc:
            if exc.status == 404:
                return None
            raise
        return str(result["room_id"])

    async def account_data(self, user_id: str, data_type: str) -> dict[str, Any]:
        """An account's global account data of one type ({} when unset)."""
        try:
            result: dict[str, Any] = await self.request(
                "GET",
                f"/_matrix/client/v3/user/{quote(user_id, safe='')}/account_data/{data_type}",
                as_user=user_id,
            )
        except HomeserverError as exc:
            if exc.status == 404:
                return {}
            raise
        return result

    async def set_account_data(self, user_id: str, data_type: str, content: dict[str, Any]) -> None:
        """Replace an account's global account data of one type."""
        await self.request(
            "PUT",
            f"/_matrix/client/v3/user/{quote(user_id, safe='')}/account_data/{data_type}",
            body=content,
            as_user=user_id,
        )

    async def joined_members(self, room_id: str, as_user: str) -> list[str]:
        """The joined members of a room, as seen by one of them."""
        result = await self.request(
            "GET",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/joined_members",
            as_user=as_user,
        )
        return list(result.get("joined", {}))

    async def room_messages(
        self, room_id: str, as_user: str, limit: int, before: str | None = None
    ) -> dict[str, Any]:
        """A page of a room's history, newest first (`before`: the `end` of the previous page)."""
        params = {"dir": "b", "limit": str(limit)}
        if before is not None:
            params["from"] = before
        result: dict[str, Any] = await self.request(
            "GET",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages",
            params=params,
            as_user=as_user,
        )
        return result

    @contextlib.asynccontextmanager
    async def media(self, server_name: str, media_id: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """A download from the homeserver's media repository, to be read as a stream (the
        authenticated media API, as the bridge bot)."""
        path = (
            f"/_matrix/client/v1/media/download/{quote(server_name, safe='')}/"
            f"{quote(media_id, safe='')}"
        )
        try:
            response = await self.session.get(
                self.base_url + path,
                headers={"Authorization": f"Bearer {self._as_token}"},
                # Only the wait for the answer is bounded: a large file may take a while.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.last_unreachable = datetime.now(UTC)
            raise HomeserverUnreachable(f"GET {path}: {exc.__class__.__name__}: {exc}") from exc
        try:
            if response.status != 200:
                text = await response.text()
                try:
                    data = json.loads(text)
                except ValueError:
                    data = None
                details = data if isinstance(data, dict) else {}
                raise HomeserverError(
                    response.status,
                    str(details.get("errcode", "")),
                    str(details.get("error", text[:200])),
                    data,
                )
            yield response
        finally:
            response.release()

    async def ping(self, transaction_id: str | None = None) -> dict[str, Any]:
        """Ask the homeserver to ping the bridge (and end any backoff towards it)."""
        body = {"transaction_id": transaction_id} if transaction_id else {}
        result: dict[str, Any] = await self.request(
            "POST",
            f"/_matrix/client/v1/appservice/{quote(self._appservice_id, safe='')}/ping",
            body=body,
            timeout=70,
        )
        return result

    # --- acting as accounts ---

    def intent(self, user_id: str) -> Intent:
        """Act as `user_id` (which must be in the bridge's namespace, or the bot)."""
        intent = self._intents.get(user_id)
        if intent is None:
            nio_client = _ActingClient(
                self.base_url,
                user=user_id,
                config=AsyncClientConfig(
                    encryption_enabled=False,
                    store_sync_tokens=False,
                    max_limit_exceeded=5,
                    max_timeouts=1,
                    request_timeout=self._timeout,
                ),
            )
            nio_client.restore_login(user_id, "LMSBRIDGE", self._as_token)
            nio_client.client_session = self.session
            intent = self._intents.put(user_id, Intent(self, nio_client))
        return intent

    async def call_nio(self, call: Any) -> Any:
        """Await a nio call, turning its error responses and connection failures into ours."""
        try:
            response = await call
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.last_unreachable = datetime.now(UTC)
            raise HomeserverUnreachable(f"{exc.__class__.__name__}: {exc}") from exc
        first = response[0] if isinstance(response, tuple) else response
        if isinstance(first, ErrorResponse):
            transport = getattr(first, "transport_response", None)
            status = transport.status if transport is not None else 0
            raise HomeserverError(status, str(first.status_code or ""), first.message or "", None)
        return response


def new_txn_id(purpose: str, key: str | None = None) -> str:
    """An outgoing transaction id unique across the whole bridge.

    The homeserver deduplicates txn ids per appservice, not per account; ids derived from a
    stored key (e.g. a message id) make retries idempotent, random ones are for one-off sends.
    """
    return f"lmsb.{purpose}.{key if key is not None else uuid.uuid4().hex}"
