"""LMS → Matrix messages against a real Synapse: stored, sent once, queued through an outage."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, RoomGetEventResponse
from sqlalchemy import select

from bridge.app import Bridge
from bridge.store.schema import inbound_events
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_conversations import matrix_client, seed
from tests.integration.test_roster_api import call
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


async def start_conversation(instance: Bridge) -> tuple[dict[str, str], dict[str, Any]]:
    ids = await seed(instance)
    status, conversation = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["student"], "recipient": ids["tutor"]},
    )
    assert status == 201, conversation
    return ids, conversation


async def send(instance: Bridge, conversation: dict[str, Any], **body: Any) -> tuple[int, Any]:
    body.setdefault("client_message_id", secrets.token_hex(6))
    return await call(
        instance, "POST", f"/api/v1/conversations/{conversation['id']}/messages", body
    )


async def room_bodies(env: SynapseEnv, client: AsyncClient, room_id: str) -> list[str]:
    """Message bodies in the room, oldest first, as the client sees them."""
    url = f"{env.synapse.url}/_matrix/client/v3/rooms/{room_id}/messages?dir=f&limit=200"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {client.access_token}"}) as response,
    ):
        events = (await response.json())["chunk"]
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]


async def test_the_recipient_sees_the_message_from_the_sender(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, message = await send(
        instance,
        conversation,
        sender=ids["student"],
        body="Is **Friday** ok? <script>x</script>",
        format="markdown",
    )
    assert status == 201, message
    assert message["status"] == "sent" and message["event_id"].startswith("$")
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        seen = await tutor.room_get_event(conversation["room_id"], message["event_id"])
        assert isinstance(seen, RoomGetEventResponse)
        assert seen.event.sender == instance.ids.user_id(ids["student"])
        source = seen.event.source["content"]
        assert source["body"] == "Is **Friday** ok? <script>x</script>"
        assert source["formatted_body"] == (
            "<p>Is <strong>Friday</strong> ok? &lt;script&gt;x&lt;/script&gt;</p>"
        )
    finally:
        await tutor.close()


async def test_the_same_client_message_id_never_makes_a_second_event(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    body = {"sender": ids["tutor"], "body": "see you at 10", "client_message_id": "lms-77"}
    results = await asyncio.gather(*(send(instance, conversation, **body) for _ in range(3)))
    assert sorted(status for status, _ in results) == [200, 200, 201]
    assert len({answer["event_id"] for _, answer in results}) == 1
    student = await matrix_client(synapse_env, instance, ids["student"])
    try:
        assert (await room_bodies(synapse_env, student, conversation["room_id"])).count(
            "see you at 10"
        ) == 1
    finally:
        await student.close()


async def test_refusals(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, error = await send(instance, conversation, sender=ids["other"], body="hi")
    assert (status, error["error"]["code"]) == (403, "not_a_participant")
    status, error = await send(instance, {"id": "nope"}, sender=ids["student"], body="hi")
    assert (status, error["error"]["code"]) == (404, "not_found")
    status, error = await send(instance, conversation, sender=ids["student"], body="x" * 10001)
    assert (status, error["error"]["code"]) == (413, "body_too_long")
    status, error = await send(
        instance, conversation, sender=ids["student"], body="hi", format="html"
    )
    assert (status, error["error"]["field"]) == (400, "format")
    # Unenrolled: the pair has no relationship left, so sending is refused with the reason.
    await call(
        instance,
        "DELETE",
        f"/api/v1/batches/b-{ids['student'].split('-')[1]}/students/{ids['student']}",
    )
    status, error = await send(instance, conversation, sender=ids["student"], body="hi")
    assert (status, error["error"]["code"]) == (403, "not_allowed")
    assert "doesn't teach any of your courses" in error["error"]["message"]


async def test_per_user_rate_limit(synapse_env: SynapseEnv, sqlite_url: str) -> None:
    config = synapse_env.bridge_config(sqlite_url)
    config = dataclasses.replace(
        config, messages=dataclasses.replace(config.messages, per_user_per_minute=2)
    )
    instance = Bridge(config)
    await instance.start()
    try:
        ids, conversation = await start_conversation(instance)
        for _ in range(2):
            assert (await send(instance, conversation, sender=ids["student"], body="a"))[0] == 201
        status, error = await send(instance, conversation, sender=ids["student"], body="a")
        assert (status, error["error"]["code"]) == (429, "rate_limited")
        assert error["error"]["retry_after_seconds"] > 0
        assert (await send(instance, conversation, sender=ids["tutor"], body="b"))[0] == 201
    finally:
        await instance.stop()


async def test_messages_sent_while_synapse_is_down_arrive_in_order(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    await asyncio.to_thread(synapse_env.synapse.stop)
    try:
        answers = [
            await send(instance, conversation, sender=ids["student"], body=f"queued {n}")
            for n in range(3)
        ]
    finally:
        await asyncio.to_thread(synapse_env.synapse.start)
    assert [(status, answer["status"]) for status, answer in answers] == [(202, "queued")] * 3
    repo = instance.messages._messages

    async def all_sent() -> bool:
        stored = [await repo.get(answer["id"]) for _, answer in answers]
        return all(m is not None and m.status == "sent" for m in stored)

    async with asyncio.timeout(60):
        while not await all_sent():
            await asyncio.sleep(0.2)
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        bodies = await room_bodies(synapse_env, tutor, conversation["room_id"])
        assert [b for b in bodies if b.startswith("queued")] == ["queued 0", "queued 1", "queued 2"]
    finally:
        await tutor.close()


async def feed(instance: Bridge, conversation_id: str) -> list[dict[str, Any]]:
    status, body = await call(instance, "GET", "/api/v1/events?after=0&limit=1000")
    assert status == 200
    return [e for e in body["events"] if e["data"].get("conversation_id") == conversation_id]


async def test_a_reply_typed_in_a_matrix_client_reaches_the_lms_once(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, recorder = bridge
    ids, conversation = await start_conversation(instance)
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        sent = await tutor.room_send(
            conversation["room_id"],
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "Friday works",
                "format": "org.matrix.custom.html",
                "formatted_body": "<b onclick='steal()'>Friday</b> works<script>x()</script>",
            },
        )
        event_id = sent.event_id  # type: ignore[union-attr]
        await recorder.wait_for(lambda r: event_id in r.ids(), timeout=20)
        async with asyncio.timeout(10):
            while not [
                e
                for e in await feed(instance, conversation["id"])
                if e["data"].get("event_id") == event_id
            ]:
                await asyncio.sleep(0.1)
        events = [
            e
            for e in await feed(instance, conversation["id"])
            if e["data"].get("event_id") == event_id
        ]
        assert len(events) == 1
        data = events[0]["data"]
        assert events[0]["type"] == "message.created"
        assert (data["sender"], data["body"], data["origin"]) == (
            ids["tutor"],
            "Friday works",
            "matrix",
        )
        assert data["html"] == "<b>Friday</b> works"
    finally:
        await tutor.close()


async def test_the_bridges_own_sends_are_not_published_twice(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, message = await send(instance, conversation, sender=ids["student"], body="hello")
    assert status == 201
    echo = select(inbound_events.c.processed_at).where(
        inbound_events.c.event_id == message["event_id"]
    )

    async def echo_done() -> bool:
        # Stored, and processed (or known for the bridge's own as it came: stored as handled).
        return await instance.db.scalar(echo) is not None

    await eventually(echo_done, "the echo stored and done with", timeout=20)
    await asyncio.sleep(0.5)
    created = [
        e for e in await feed(instance, conversation["id"]) if e["type"] == "message.created"
    ]
    assert [(e["data"]["message_id"], e["data"]["origin"]) for e in created] == [
        (message["id"], "lms")
    ]
    status, error = await call(instance, "GET", "/api/v1/events?after=-1")
    assert (status, error["error"]["field"]) == (400, "after")
