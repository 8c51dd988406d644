"""Start-up checks of the wiring between bridge and homeserver, each failure one plain sentence."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from bridge.config import Config
from bridge.matrix.admin import HomeserverAdmin
from bridge.matrix.client import HomeserverClient, HomeserverError, HomeserverUnreachable


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    ok: bool
    message: str


async def check_reachable(client: HomeserverClient, config: Config) -> CheckResult:
    """The homeserver answers `/_matrix/client/versions`."""
    url = config.homeserver.url
    name = "homeserver reachable"
    try:
        versions = await client.versions()
    except HomeserverUnreachable as exc:
        return CheckResult(
            name,
            False,
            f"cannot reach the homeserver at {url} ({exc}): is homeserver.url right, "
            "and is Synapse running?",
        )
    except HomeserverError as exc:
        return CheckResult(
            name,
            False,
            f"{url} answered {exc.status} to /_matrix/client/versions: is homeserver.url the "
            "client-server API of a Matrix homeserver?",
        )
    latest = (versions.get("versions") or ["?"])[-1]
    return CheckResult(name, True, f"{url} speaks Matrix (up to {latest})")


async def check_as_token(client: HomeserverClient, config: Config) -> CheckResult:
    """The homeserver accepts the as_token and maps it to the bridge bot."""
    name = "as_token accepted"
    try:
        user_id = await client.whoami()
    except HomeserverUnreachable as exc:
        return CheckResult(name, False, f"the homeserver stopped answering ({exc})")
    except HomeserverError as exc:
        if exc.errcode == "M_UNKNOWN_TOKEN" or exc.status == 401:
            return CheckResult(
                name,
                False,
                "the homeserver does not know this as_token: is the registration file listed in "
                "app_service_config_files, and was Synapse restarted?",
            )
        return CheckResult(name, False, f"whoami with the as_token failed: {exc}")
    if user_id != config.bot_user_id:
        return CheckResult(
            name,
            False,
            f"the as_token belongs to {user_id}, not to the bot {config.bot_user_id}: is "
            "appservice.bot_localpart the registration's sender_localpart, and "
            "homeserver.server_name right?",
        )
    return CheckResult(name, True, f"the homeserver knows the bridge as {user_id}")


async def check_ping(client: HomeserverClient, config: Config) -> CheckResult:
    """The homeserver can reach the bridge (this also ends any backoff it had towards us)."""
    name = "homeserver reaches the bridge"
    public_url = config.appservice.public_url
    try:
        result = await _ping(client)
    except HomeserverUnreachable as exc:
        return CheckResult(name, False, f"the homeserver stopped answering ({exc})")
    except HomeserverError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        if exc.errcode == "M_BAD_STATUS" and body.get("status") in (401, 403):
            message = (
                "the bridge refused the homeserver's hs_token: appservice.hs_token differs from "
                "the registration file Synapse loaded (regenerate it and restart Synapse)"
            )
        elif exc.errcode in ("M_CONNECTION_FAILED", "M_CONNECTION_TIMEOUT"):
            message = (
                f"the homeserver could not connect to the bridge at {public_url}: is "
                "appservice.public_url reachable from the homeserver, and is the bridge listening?"
            )
        elif exc.errcode == "M_URL_NOT_SET":
            message = "the registration file Synapse loaded has no url: regenerate it"
        elif exc.errcode == "M_BAD_STATUS":
            message = (
                f"the bridge at {public_url} answered the homeserver's ping with HTTP "
                f"{body.get('status')}: is appservice.public_url this bridge?"
            )
        elif exc.errcode == "M_FORBIDDEN":
            message = (
                f"the homeserver refused a ping for appservice id {config.appservice.id!r}: does "
                "appservice.id match the id in the registration file?"
            )
        else:
            message = f"the appservice ping failed: {exc}"
        return CheckResult(name, False, message)
    return CheckResult(name, True, f"round trip in {result.get('duration_ms', '?')} ms")


async def _ping(client: HomeserverClient, attempts: int = 3) -> dict[str, object]:
    """Ping, trying again after a transient failure.

    Synapse 1.163 answers 502 M_CONNECTION_FAILED ("AlreadyCalled: Tried to cancel an
    already-called event") to a ping the bridge did answer, when it lands while Synapse's own
    retry of a transaction towards the bridge is running (typically just after a restart).
    """
    for attempt in range(1, attempts + 1):
        try:
            return await client.ping(f"lmsb.ping.{secrets.token_hex(8)}")
        except HomeserverError as exc:
            if exc.errcode != "M_CONNECTION_FAILED" or attempt == attempts:
                raise
        await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def check_admin_token(client: HomeserverClient, config: Config) -> CheckResult:
    """The moderation admin token, when set, is a server admin's (it reads the report list)."""
    name = "homeserver admin token"
    token = config.moderation.homeserver_admin_token
    if not token:
        return CheckResult(name, True, "not set: reports made in Matrix clients are not picked up")
    try:
        is_admin = await HomeserverAdmin(client, token).whoami_is_admin()
    except HomeserverUnreachable as exc:
        return CheckResult(name, False, f"the homeserver stopped answering ({exc})")
    if not is_admin:
        return CheckResult(
            name,
            False,
            "moderation.homeserver_admin_token is not the access token of a homeserver server "
            "admin (the admin API refused it): log in as an admin and use that token",
        )
    return CheckResult(name, True, "reads the homeserver's report list")


async def check_admin_room(client: HomeserverClient, config: Config) -> CheckResult:
    """The moderators' admin room can be used, and every moderator exists."""
    name = "admin room"
    moderation = config.moderation
    bot = config.bot_user_id
    try:
        for moderator in moderation.moderators:
            if not await _exists(client, moderator):
                return CheckResult(
                    name, False, f"moderation.moderators: {moderator} has no account here"
                )
        configured = moderation.admin_room
        if not configured:
            return CheckResult(name, True, "made by the bot at start-up (and kept)")
        room_id = configured
        if configured.startswith("#"):
            try:
                found = await client.resolve_alias(configured)
            except HomeserverError as exc:
                return CheckResult(
                    name,
                    False,
                    f"moderation.admin_room {configured} can't be looked up ({exc.message}): "
                    f"use an alias or a room on {config.homeserver.server_name}",
                )
            if found is None:
                namespace = f"#{config.appservice.account_prefix}"
                if configured.startswith(namespace) and configured.endswith(
                    f":{config.homeserver.server_name}"
                ):
                    return CheckResult(name, True, f"{configured} is made at start-up")
                return CheckResult(
                    name,
                    False,
                    f"moderation.admin_room {configured} doesn't exist, and the bot can only "
                    f"make aliases starting with {namespace}: make the room and invite {bot}",
                )
            room_id = found
        try:
            if bot not in await client.joined_members(room_id, bot):
                raise HomeserverError(403, "M_FORBIDDEN", "not joined")
        except HomeserverError:
            try:
                await client.intent(bot).join(room_id)
            except HomeserverError as exc:
                return CheckResult(
                    name,
                    False,
                    f"the bot can't join moderation.admin_room {configured} ({exc.message}): "
                    f"invite {bot} there",
                )
    except HomeserverUnreachable as exc:
        return CheckResult(name, False, f"the homeserver stopped answering ({exc})")
    return CheckResult(name, True, f"{configured}: the bot is in it")


async def _exists(client: HomeserverClient, user_id: str) -> bool:
    """Whether an account exists (its profile is found)."""
    try:
        await client.request("GET", f"/_matrix/client/v3/profile/{quote(user_id, safe='')}")
    except HomeserverError as exc:
        return exc.status != 404
    return True


CHECKS = (check_reachable, check_as_token, check_ping, check_admin_token, check_admin_room)


async def run_checks(client: HomeserverClient, config: Config) -> list[CheckResult]:
    """Run the checks in order, stopping at the first failure (the rest depend on it)."""
    results: list[CheckResult] = []
    for check in CHECKS:
        result = await check(client, config)
        results.append(result)
        if not result.ok:
            break
    return results
