"""The bridge against a real Synapse: registration, ping, accounts, profiles, real transactions."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import secrets
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from nio import AsyncClient, ProfileGetResponse, RoomCreateResponse
from PIL import Image

from bridge.app import Bridge, StartupError
from bridge.config import AppserviceConfig
from bridge.matrix.checks import run_checks
from tests.conftest import Recorder, SynapseEnv
from tests.support.http import serve

pytestmark = pytest.mark.synapse


@pytest.fixture
async def person(synapse_env: SynapseEnv) -> AsyncIterator[AsyncClient]:
    """A person's own Matrix client (not bridged), logged in with a password."""
    user_id, password = await asyncio.to_thread(synapse_env.new_user)
    client = AsyncClient(synapse_env.synapse.url, user_id)
    await client.login(password)
    try:
        yield client
    finally:
        await client.close()


async def test_synapse_accepts_the_registration_and_every_check_passes(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    results = await run_checks(instance.client, instance.config)
    assert [(r.name, r.ok) for r in results] == [
        ("homeserver reachable", True),
        ("as_token accepted", True),
        ("homeserver reaches the bridge", True),
        ("homeserver admin token", True),
        ("admin room", True),
    ]
    assert await instance.client.whoami() == "@lmsbot:test.local"


async def test_ping_round_trip_reaches_the_bridge(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    result = await instance.client.ping("lmsb.ping.test-round-trip")
    assert isinstance(result["duration_ms"], int)
    assert instance.appservice.last_ping is not None
    assert instance.appservice.last_ping[0] == "lmsb.ping.test-round-trip"


async def test_accounts_and_display_names_are_visible_to_other_users(
    bridge: tuple[Bridge, Recorder], person: AsyncClient
) -> None:
    instance, _ = bridge
    user_id = await instance.accounts.sync_profile("Student-42", "Ada Lovelace")
    assert user_id == "@_lms__student-42:test.local"
    twin = await instance.accounts.sync_profile("student-42", "Ada's Twin")
    assert twin != user_id  # ids differing only in case are different people

    profile = await person.get_profile(user_id)
    assert isinstance(profile, ProfileGetResponse)
    assert profile.displayname == "Ada Lovelace"
    assert profile.avatar_url and profile.avatar_url.startswith("mxc://")

    # The avatar is a real image: the initials on a colour.
    server, media_id = profile.avatar_url.removeprefix("mxc://").split("/")
    download = await person.download(server_name=server, media_id=media_id)
    image = Image.open(io.BytesIO(download.body))  # type: ignore[union-attr]
    assert image.format == "PNG"


async def test_profile_changes_are_written_and_unchanged_ones_are_not(
    bridge: tuple[Bridge, Recorder], person: AsyncClient
) -> None:
    instance, _ = bridge
    user_id = await instance.accounts.sync_profile("p-rename", "Old Name")
    first = await instance.accounts._accounts.get_by_user_id(user_id)
    await instance.accounts.sync_profile("p-rename", "Old Name")
    same = await instance.accounts._accounts.get_by_user_id(user_id)
    assert same == first  # nothing re-uploaded
    await instance.accounts.sync_profile("p-rename", "New Name")
    profile = await person.get_profile(user_id)
    assert profile.displayname == "New Name"  # type: ignore[union-attr]
    changed = await instance.accounts._accounts.get_by_user_id(user_id)
    assert changed is not None and first is not None
    assert changed.avatar_mxc != first.avatar_mxc  # the initials changed: O N → N N


async def test_a_photo_url_becomes_the_avatar_and_a_broken_one_falls_back(
    bridge: tuple[Bridge, Recorder], person: AsyncClient
) -> None:
    instance, _ = bridge
    photo = io.BytesIO()
    Image.new("RGB", (8, 8), "#00ff00").save(photo, format="PNG")

    async def photo_host(request: web.Request) -> web.Response:
        if request.path == "/photo.png":
            return web.Response(body=photo.getvalue(), content_type="image/png")
        return web.Response(text="<html>not an image</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{name}", photo_host)
    runner, port = await serve(app)
    try:
        user_id = await instance.accounts.sync_profile(
            "p-photo", "Pat Photo", f"http://127.0.0.1:{port}/photo.png"
        )
        record = await instance.accounts._accounts.get_by_user_id(user_id)
        assert record is not None and record.avatar_source == f"http://127.0.0.1:{port}/photo.png"
        server, media_id = record.avatar_mxc.removeprefix("mxc://").split("/")  # type: ignore[union-attr]
        download = await person.download(server_name=server, media_id=media_id)
        assert download.body == photo.getvalue()  # type: ignore[union-attr]

        other = await instance.accounts.sync_profile(
            "p-broken", "Bo Broken", f"http://127.0.0.1:{port}/page.html"
        )
        record = await instance.accounts._accounts.get_by_user_id(other)
        assert record is not None and record.avatar_source is not None
        assert record.avatar_source.startswith("initials:BB:")
    finally:
        await runner.cleanup()


async def test_registration_is_idempotent_and_adopts_existing_accounts(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    platform_id = f"pre-existing-{secrets.token_hex(4)}"
    # Registered on the homeserver before the bridge's database knew about it.
    assert await instance.client.register(instance.ids.localpart(platform_id)) is True
    assert await instance.client.register(instance.ids.localpart(platform_id)) is False
    user_id = await instance.accounts.ensure_account(platform_id)
    assert user_id == instance.ids.user_id(platform_id)
    assert await instance.accounts.ensure_account(platform_id) == user_id


async def test_user_queries_from_synapse(
    bridge: tuple[Bridge, Recorder], person: AsyncClient
) -> None:
    instance, recorder = bridge
    known = await instance.accounts.ensure_account("known-user")
    headers = {"Authorization": f"Bearer {instance.config.appservice.hs_token}"}
    base = f"http://127.0.0.1:{instance.config.appservice.listen_port}/_matrix/app/v1/users/"
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(base + known) as response:
            assert response.status == 200
        async with session.get(base + "@_lms_nobody-known:test.local") as response:
            assert (response.status, (await response.json())["errcode"]) == (404, "M_NOT_FOUND")
        async with session.get(base + "@outsider:test.local") as response:
            assert response.status == 404
    # An invite makes Synapse ask the bridge about an account it hasn't seen; the roster doesn't
    # know this person, so no account is made.
    stranger = "@_lms_never-registered:test.local"
    created = await person.room_create(invite=[stranger])
    assert isinstance(created, RoomCreateResponse)
    await recorder.wait_for(
        lambda r: any(e.payload.get("state_key") == stranger for e in r.events), timeout=20
    )
    assert not isinstance(await person.get_profile(stranger), ProfileGetResponse)
    assert await instance.accounts._accounts.get_by_user_id(stranger) is None


async def test_a_real_invite_arrives_as_a_transaction(
    bridge: tuple[Bridge, Recorder], person: AsyncClient
) -> None:
    instance, recorder = bridge
    bridged = await instance.accounts.ensure_account("invitee")
    created = await person.room_create(invite=[bridged], is_direct=True)
    assert isinstance(created, RoomCreateResponse)

    def invited(r: Recorder) -> bool:
        return any(
            e.event_type == "m.room.member"
            and e.room_id == created.room_id
            and e.payload.get("state_key") == bridged
            and e.payload["content"].get("membership") == "invite"
            for e in r.events
        )

    await recorder.wait_for(invited, timeout=20)
    stored = [e for e in recorder.events if e.room_id == created.room_id]
    assert len({e.event_id for e in stored}) == len(stored)  # each event processed once


async def test_start_fails_with_a_plain_sentence_when_the_as_token_is_wrong(
    synapse_env: SynapseEnv, sqlite_url: str
) -> None:
    config = synapse_env.bridge_config(sqlite_url)
    wrong = dataclasses.replace(
        config,
        appservice=dataclasses.replace(config.appservice, as_token="wrong-token"),
    )
    bridge = Bridge(wrong)
    with pytest.raises(StartupError) as excinfo:
        await bridge.start()
    await bridge.stop()
    assert str(excinfo.value) == (
        "the homeserver does not know this as_token: is the registration file listed in "
        "app_service_config_files, and was Synapse restarted?"
    )


async def test_start_explains_a_wrong_hs_token(synapse_env: SynapseEnv, sqlite_url: str) -> None:
    config = synapse_env.bridge_config(sqlite_url)
    appservice: AppserviceConfig = dataclasses.replace(config.appservice, hs_token="other")
    bridge = Bridge(dataclasses.replace(config, appservice=appservice))
    with pytest.raises(StartupError, match="refused the homeserver's hs_token"):
        await bridge.start()
    await bridge.stop()


async def test_ready_reports_an_unreachable_homeserver(
    synapse_env: SynapseEnv, sqlite_url: str
) -> None:
    bridge = Bridge(synapse_env.bridge_config(sqlite_url))
    await bridge.start()
    try:
        await bridge.client.close()
        bridge.client.base_url = "http://127.0.0.1:9"
        await bridge.client.start()
        assert (await bridge.readiness())["homeserver"] is False
    finally:
        await bridge.stop()


async def test_intents_share_one_pool_and_stay_bounded(bridge: tuple[Bridge, Recorder]) -> None:
    from bridge.matrix.client import MAX_CACHED_INTENTS, new_txn_id

    client = bridge[0].client
    first = client.intent("@_lms_pool:test.local")
    assert client.intent("@_lms_pool:test.local") is first
    assert first._nio.client_session is client.session
    for n in range(MAX_CACHED_INTENTS + 10):
        client.intent(f"@_lms_pool{n}:test.local")
    assert len(client._intents) == MAX_CACHED_INTENTS
    assert new_txn_id("send", "m1") == new_txn_id("send", "m1")
    assert new_txn_id("send") != new_txn_id("send")
