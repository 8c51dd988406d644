"""The appservice edge: the HTTP API the homeserver calls (`/_matrix/app/v1/...`).

This module alone knows the transaction wire format. It checks the homeserver's token, validates
and stores each transaction durably, acknowledges it, and wakes the processor; it never handles
events itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bridge.store.inbox import InboxRepository, NewEvent

log = logging.getLogger(__name__)

_EPHEMERAL_KEYS = ("ephemeral", "de.sorunome.msc2409.ephemeral")

UserQuery = Callable[[str], Awaitable[bool]]


def matrix_error(status: int, errcode: str, message: str) -> web.Response:
    """An error in the Matrix format."""
    return web.json_response({"errcode": errcode, "error": message}, status=status)


def refuse_unless_homeserver(request: web.Request, hs_token: bytes) -> web.Response | None:
    """None when the request carries the hs_token; otherwise the 401/403 to answer with."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token:
        return matrix_error(401, "M_UNAUTHORIZED", "Missing homeserver token")
    if not hmac.compare_digest(token.strip().encode(), hs_token):
        return matrix_error(403, "M_FORBIDDEN", "Wrong homeserver token")
    return None


def ping_only_application(hs_token: str) -> web.Application:
    """A listener answering only the homeserver's ping (`doctor` while the bridge is down)."""

    async def ping(request: web.Request) -> web.Response:
        refusal = refuse_unless_homeserver(request, hs_token.encode())
        return refusal or web.json_response({})

    app = web.Application()
    app.router.add_post("/_matrix/app/v1/ping", ping)
    return app


class InvalidTransaction(ValueError):
    """A body that isn't an appservice transaction."""


@dataclass(frozen=True)
class ParsedTransaction:
    """A transaction's events, ready to store, and its fingerprint."""

    events: list[NewEvent]
    fingerprint: str
    skipped: int


def parse_transaction(body: Any) -> ParsedTransaction:
    """Validate a transaction body; malformed single events are skipped, not fatal.

    The fingerprint identifies the transaction's content independently of fields the homeserver
    recomputes on a resend (such as ``unsigned.age``): the event ids in order, plus the
    ephemeral events as sent.
    """
    if not isinstance(body, dict):
        raise InvalidTransaction("the body must be a JSON object")
    timeline = body.get("events", [])
    if not isinstance(timeline, list):
        raise InvalidTransaction("'events' must be a list")
    ephemeral: list[Any] = []
    for key in _EPHEMERAL_KEYS:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            raise InvalidTransaction(f"'{key}' must be a list")
        if value and not ephemeral:
            ephemeral = value  # the stable and unstable keys carry the same events
    events: list[NewEvent] = []
    skipped = 0
    for raw in timeline:
        if (
            isinstance(raw, dict)
            and isinstance(raw.get("event_id"), str)
            and isinstance(raw.get("room_id"), str)
            and isinstance(raw.get("type"), str)
        ):
            events.append(NewEvent(raw["event_id"], raw["room_id"], "timeline", raw["type"], raw))
        else:
            skipped += 1
    for raw in ephemeral:
        if isinstance(raw, dict) and isinstance(raw.get("type"), str):
            room_id = raw.get("room_id") if isinstance(raw.get("room_id"), str) else None
            events.append(NewEvent(None, room_id, "ephemeral", raw["type"], raw))
        else:
            skipped += 1
    digest = hashlib.sha256()
    digest.update(json.dumps([e.event_id for e in events if e.event_id]).encode())
    digest.update(json.dumps(ephemeral, sort_keys=True, default=str).encode())
    return ParsedTransaction(events, digest.hexdigest(), skipped)


class AppserviceEndpoint:
    """Owns `/_matrix/app/v1/*`: authentication, parsing, durable storage, acknowledgement."""

    def __init__(
        self,
        hs_token: str,
        inbox: InboxRepository,
        dedupe_window: timedelta,
        on_stored: Callable[[], None],
        user_query: UserQuery,
        handled: Callable[[NewEvent], bool] = lambda _event: False,
    ) -> None:
        self._hs_token = hs_token.encode()
        self._inbox = inbox
        self._window = dedupe_window
        self._on_stored = on_stored
        self._user_query = user_query
        # Which events are stored as processed already (`on_stored` isn't called for them).
        self._handled = handled
        self.last_ping: tuple[str | None, datetime] | None = None

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return [
            web.put("/_matrix/app/v1/transactions/{txn_id}", self.transaction),
            web.get("/_matrix/app/v1/users/{user_id}", self.query_user),
            web.get("/_matrix/app/v1/rooms/{alias}", self.query_alias),
            web.post("/_matrix/app/v1/ping", self.ping),
        ]

    def _authorized(self, request: web.Request) -> web.Response | None:
        return refuse_unless_homeserver(request, self._hs_token)

    async def transaction(self, request: web.Request) -> web.Response:
        """`PUT /transactions/{txnId}`: store durably, then acknowledge with `{}`.

        A transaction is never refused for its id: Synapse draws the ids of every appservice on
        the homeserver from one sequence, so gaps are normal, and a refusal sends the bridge into
        Synapse's backoff (during which typing and receipts are dropped). What Synapse stored but
        never sent is found by the catch-up from room history instead.
        """
        if (refusal := self._authorized(request)) is not None:
            return refusal
        txn_id = request.match_info["txn_id"]
        try:
            body = await request.json(loads=json.loads)
        except (ValueError, RecursionError):
            return matrix_error(400, "M_NOT_JSON", "The body is not valid JSON")
        try:
            parsed = parse_transaction(body)
        except InvalidTransaction as exc:
            return matrix_error(400, "M_BAD_JSON", f"Not an appservice transaction: {exc}")
        if parsed.skipped:
            log.warning("transaction %s: skipped %d malformed event(s)", txn_id, parsed.skipped)
        events = [replace(e, handled=True) if self._handled(e) else e for e in parsed.events]
        outcome = await self._inbox.store_transaction(
            txn_id, parsed.fingerprint, events, datetime.now(UTC), self._window
        )
        if outcome.replay:
            log.info("transaction %s: resend acknowledged without reprocessing", txn_id)
        elif outcome.to_process:
            self._on_stored()
        log.debug(
            "transaction %s: %d event(s), %d new", txn_id, len(parsed.events), outcome.new_events
        )
        return web.json_response({})

    async def query_user(self, request: web.Request) -> web.Response:
        """`GET /users/{userId}`: 200 once the account exists, 404 when it is no bridged user."""
        if (refusal := self._authorized(request)) is not None:
            return refusal
        if await self._user_query(request.match_info["user_id"]):
            return web.json_response({})
        return matrix_error(404, "M_NOT_FOUND", "No such bridged user")

    async def query_alias(self, request: web.Request) -> web.Response:
        """`GET /rooms/{alias}`: the bridge creates no rooms on alias lookups."""
        if (refusal := self._authorized(request)) is not None:
            return refusal
        return matrix_error(404, "M_NOT_FOUND", "The bridge does not provide this alias")

    async def ping(self, request: web.Request) -> web.Response:
        """`POST /ping`: the homeserver checking that it can reach the bridge."""
        if (refusal := self._authorized(request)) is not None:
            return refusal
        try:
            body = await request.json()
        except ValueError:
            body = {}
        txn_id = body.get("transaction_id") if isinstance(body, dict) else None
        self.last_ping = (txn_id if isinstance(txn_id, str) else None, datetime.now(UTC))
        return web.json_response({})
