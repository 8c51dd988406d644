"""Starting conversations against a real Synapse: one private room per allowed pair."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, RoomGetStateResponse

from bridge.app import Bridge
from bridge.domain.rooms import CONVERSATION_STATE, conversation_room
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_roster_api import call
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


async def seed(bridge: Bridge) -> dict[str, str]:
    """A fresh small institution (the session's Synapse outlives each test: ids are unique)."""
    tag = secrets.token_hex(3)
    ids = {role: f"{role}-{tag}" for role in ("student", "tutor", "other", "admin")}
    records: list[dict[str, Any]] = [
        {"type": "institution", "id": f"u-{tag}", "name": "Uni"},
        {"type": "course", "id": f"c-{tag}", "institution_id": f"u-{tag}", "title": "Algebra"},
        {"type": "batch", "id": f"b-{tag}", "course_id": f"c-{tag}", "title": "A"},
        {"type": "batch", "id": f"b2-{tag}", "course_id": f"c-{tag}", "title": "B"},
    ]
    names = {
        "student": "Sam Student",
        "tutor": "Alex Kim",
        "other": "Olga Other",
        "admin": "Ada Admin",
    }
    roles = {"student": "student", "tutor": "tutor", "other": "student", "admin": "admin"}
    for key, user in ids.items():
        records.append({"type": "user", "id": user, "display_name": names[key]})
        records.append(
            {"type": "member", "institution_id": f"u-{tag}", "user_id": user, "role": roles[key]}
        )
    records += [
        {"type": "enrollment", "batch_id": f"b-{tag}", "user_id": ids["student"]},
        {"type": "teaching", "batch_id": f"b-{tag}", "user_id": ids["tutor"]},
        {"type": "enrollment", "batch_id": f"b2-{tag}", "user_id": ids["other"]},
    ]
    status, body = await call(bridge, "POST", "/api/v1/roster/bulk", {"records": records})
    assert status == 200, body
    return ids


async def matrix_client(env: SynapseEnv, bridge: Bridge, platform_id: str) -> AsyncClient:
    """The person's own Matrix client, logged in with a password the admin API set."""
    user_id = bridge.ids.user_id(platform_id)
    await asyncio.to_thread(env.synapse.set_password, env.admin_token, user_id, "pw")
    client = AsyncClient(env.synapse.url, user_id)
    await client.login("pw")
    return client


async def direct_rooms(env: SynapseEnv, client: AsyncClient) -> dict[str, list[str]]:
    url = f"{env.synapse.url}/_matrix/client/v3/user/{client.user_id}/account_data/m.direct"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {client.access_token}"}) as response,
    ):
        return dict(await response.json()) if response.status == 200 else {}


async def test_a_conversation_room_is_a_private_dm_the_bot_controls(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    status, conversation = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["student"], "recipient": ids["tutor"]},
    )
    assert status == 201, conversation
    room_id = conversation["room_id"]
    assert conversation["state"] == "active"
    student = await matrix_client(synapse_env, instance, ids["student"])
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        state = await student.room_get_state(room_id)
        assert isinstance(state, RoomGetStateResponse)
        events = {(e["type"], e["state_key"]): e for e in state.events}
        bot = instance.config.bot_user_id
        create = events[("m.room.create", "")]
        assert create["sender"] == bot
        assert create["content"].get("m.federate") is False
        assert events[("m.room.join_rules", "")]["content"]["join_rule"] == "invite"
        assert events[("m.room.guest_access", "")]["content"]["guest_access"] == "forbidden"
        assert events[("m.room.history_visibility", "")]["content"]["history_visibility"] == (
            "shared"
        )
        assert ("m.room.encryption", "") not in events
        for hint in ("io.element.functional_members", "m.room.member_hints"):
            assert events[(hint, "")]["content"] == {"service_members": [bot]}
        pair = events[(CONVERSATION_STATE, "")]["content"]
        assert pair["conversation_id"] == conversation["id"]
        assert {u["platform_id"] for u in pair["users"]} == {ids["student"], ids["tutor"]}
        levels = events[("m.room.power_levels", "")]["content"]
        assert levels["users_default"] == 0
        for action in ("invite", "kick", "ban", "state_default", "redact"):
            assert levels[action] == 100, action
        assert levels.get("users", {}).get(student.user_id, 0) == 0
        members = {
            key: e["content"]["membership"]
            for (kind, key), e in events.items()
            if kind == "m.room.member"
        }
        assert members == {bot: "join", student.user_id: "join", tutor.user_id: "join"}
        # Clients see a DM: m.direct of both people lists the room under the other one (written
        # just after the LMS got its answer).
        for person, other in ((student, tutor), (tutor, student)):

            async def listed(person: AsyncClient = person, other: AsyncClient = other) -> bool:
                direct = await direct_rooms(synapse_env, person)
                return room_id in direct.get(other.user_id, [])

            await eventually(listed, f"m.direct of {person.user_id} naming the room")
        conversations = instance.conversations._conversations

        async def finished() -> bool:
            return not await conversations.setups_due(10)

        await eventually(finished, "the room's finishing touches recorded as done")
        # A person can't change the room, or invite anyone.
        refused = await student.room_put_state(room_id, "m.room.name", {"name": "mine"})
        assert not hasattr(refused, "event_id")
    finally:
        await student.close()
        await tutor.close()

    # Either side calling again gets the same conversation.
    for initiator, recipient in ((ids["student"], ids["tutor"]), (ids["tutor"], ids["student"])):
        status, again = await call(
            instance,
            "POST",
            "/api/v1/conversations",
            {"initiator": initiator, "recipient": recipient},
        )
        assert (status, again["id"], again["room_id"]) == (200, conversation["id"], room_id)


async def test_concurrent_starts_make_exactly_one_room(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    body = {"initiator": ids["student"], "recipient": ids["tutor"]}
    results = await asyncio.gather(
        *(call(instance, "POST", "/api/v1/conversations", body) for _ in range(20))
    )
    assert sorted(status for status, _ in results) == [200] * 19 + [201]
    assert len({answer["room_id"] for _, answer in results}) == 1


async def test_refused_pairs_get_the_reason_and_no_room(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    status, error = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["student"], "recipient": ids["other"]},
    )
    assert status == 403
    assert error["error"]["code"] == "not_allowed"
    assert error["error"]["reason_code"] == "not_same_batch"
    assert "own batch" in error["error"]["message"]
    assert await instance.conversations._conversations.by_pair(ids["student"], ids["other"]) is None
    status, error = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["student"], "recipient": ids["admin"]},
    )
    assert (status, error["error"]["reason_code"]) == (403, "recipient_is_admin")
    status, error = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["student"], "recipient": "ghost"},
    )
    assert (status, error["error"]["missing"]) == (404, {"user_id": "ghost"})
    status, error = await call(instance, "POST", "/api/v1/conversations", {"initiator": 5})
    assert (status, error["error"]["field"]) == (400, "initiator")


async def test_a_room_made_before_a_crash_is_found_not_made_again(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    # The bridge claimed the pair and created the room, then died before recording it.
    repo = instance.conversations._conversations
    record = await repo.claim(ids["admin"], ids["other"], datetime.now(UTC))
    spec = conversation_room(
        instance.config.appservice.account_prefix,
        record.id,
        instance.config.bot_user_id,
        (
            (record.user_a, instance.ids.user_id(record.user_a)),
            (record.user_b, instance.ids.user_id(record.user_b)),
        ),
        False,
    )
    orphan = await instance.client.intent(instance.config.bot_user_id).create_room(
        spec.alias_localpart, spec.initial_state, spec.power_levels, False
    )
    status, conversation = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["admin"], "recipient": ids["other"]},
    )
    assert (status, conversation["room_id"]) == (201, orphan)


async def test_metrics_count_the_work_behind_the_api_token(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    status, _ = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["student"], "recipient": ids["tutor"]},
    )
    assert status == 201
    url = f"http://127.0.0.1:{instance.config.appservice.listen_port}/api/v1/metrics"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as refused:
            assert refused.status == 401
        token = {"Authorization": f"Bearer {instance.config.lms.api_token}"}
        async with session.get(url, headers=token) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await response.text()
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values['lms_bridge_homeserver_requests_total{call="POST createRoom"}'] >= 1
    assert values['lms_bridge_database_units_total{kind="write"}'] > 0
    assert values["lms_bridge_database_statements_total"] > 0
    assert values["process_resident_memory_bytes"] > 10_000_000
    assert 'lms_bridge_inbound_events{state="pending"}' in values
    assert "lms_bridge_catch_up_passes_waiting" in values
