"""People use their bridged accounts from any Matrix client, and some of them try to get round
the bridge: forged room state, self-renames, strange content. Against a real Synapse."""

from __future__ import annotations

from typing import Any

import pytest
from nio import AsyncClient, RoomCreateResponse, RoomVisibility

from bridge.app import Bridge
from bridge.domain.rooms import CONVERSATION_STATE
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_conversation_life import (
    _left,
    client_get,
    client_put,
    eventually,
    room_event,
)
from tests.integration.test_conversations import matrix_client
from tests.integration.test_messages import feed, send, start_conversation
from tests.integration.test_roster_api import call

pytestmark = pytest.mark.synapse


def forged_state(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    """Room state claiming to be `conversation`, readable by anyone (so by the bot too)."""
    return [
        {
            "type": CONVERSATION_STATE,
            "state_key": "",
            "content": {"conversation_id": conversation["id"], "users": []},
        },
        {
            "type": "m.room.history_visibility",
            "state_key": "",
            "content": {"history_visibility": "world_readable"},
        },
    ]


async def _seen(recorder: Recorder, room_id: str, event_type: str) -> None:
    """Until the bridge has handled an event of `event_type` in `room_id`."""
    await recorder.wait_for(
        lambda r: any(e.room_id == room_id and e.event_type == event_type for e in r.events),
        timeout=20,
    )


async def test_a_room_with_forged_conversation_state_is_a_foreign_room(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    """Two students with no relationship can't get a shared room by dressing one up as a
    conversation: only the bridge's own records say which rooms are conversations."""
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    await instance.accounts.ensure_account(ids["other"])
    student = await matrix_client(synapse_env, instance, ids["student"])
    other = await matrix_client(synapse_env, instance, ids["other"])
    try:
        forged = await student.room_create(
            visibility=RoomVisibility.public, initial_state=forged_state(conversation)
        )
        assert isinstance(forged, RoomCreateResponse)
        # Opened to anyone, the room is no place for a bridged account.
        assert await eventually(lambda: _left(synapse_env, student, forged.room_id))
        # Alone there another student may stay; once an outsider joins, they leave too.
        await other.join(forged.room_id)
        outsider_id, password = synapse_env.new_user()
        outsider = AsyncClient(synapse_env.synapse.url, outsider_id)
        await outsider.login(password)
        try:
            await outsider.join(forged.room_id)
            assert await eventually(lambda: _left(synapse_env, other, forged.room_id))
        finally:
            await outsider.close()
    finally:
        await student.close()
        await other.close()


async def test_forged_state_and_encryption_elsewhere_leave_the_real_conversation_alone(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, recorder = bridge
    ids, conversation = await start_conversation(instance)
    student: AsyncClient = await matrix_client(synapse_env, instance, ids["student"])
    try:
        side = await student.room_create(
            initial_state=[
                *forged_state(conversation),
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                },
            ]
        )
        assert isinstance(side, RoomCreateResponse)
        await _seen(recorder, side.room_id, "m.room.encryption")
    finally:
        await student.close()
    _status, inbox = await call(instance, "GET", f"/api/v1/users/{ids['tutor']}/conversations")
    assert inbox["conversations"][0]["encrypted"] is False
    status, message = await send(instance, conversation, sender=ids["tutor"], body="still here")
    assert status == 201, message


async def test_nul_characters_from_matrix_are_removed_not_fatal(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    """A NUL in a Matrix message must not make storage fail (PostgreSQL refuses NUL in text)
    and hold the room back: the LMS gets the text without it, and what follows on time."""
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        sent = []
        for body in ("bad\x00news", "next"):
            response = await tutor.room_send(
                conversation["room_id"], "m.room.message", {"msgtype": "m.text", "body": body}
            )
            sent.append(response.event_id)  # type: ignore[union-attr]

        async def published() -> list[str] | None:
            events = await feed(instance, conversation["id"])
            bodies = [e["data"]["body"] for e in events if e["type"] == "message.created"]
            return bodies if len(bodies) == 2 else None

        assert await eventually(published, timeout=10) == ["badnews", "next"]
    finally:
        await tutor.close()


async def test_lone_surrogates_in_any_json_string_are_a_400(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    cases = [
        ("PUT", "/api/v1/users/u-sur", {"display_name": "Sam \ud800"}, "display_name"),
        (
            "POST",
            f"/api/v1/conversations/{conversation['id']}/messages",
            {"sender": ids["student"], "body": "x\udfff", "client_message_id": "c1"},
            "body",
        ),
        (
            "POST",
            "/api/v1/roster/bulk",
            {"records": [{"type": "user", "id": "\ud800", "display_name": "X"}]},
            "records[0].id",
        ),
        ("PUT", "/api/v1/institutions/i-sur", {"name": "ok", "\udc00": 1}, "body"),
    ]
    for method, path, body, field in cases:
        status, error = await call(instance, method, path, body)
        assert (status, error["error"]["code"], error["error"]["field"]) == (
            400,
            "invalid_text",
            field,
        ), (path, error)
    # Not UTF-8 once decoded: the id is kept as written, and there is no such person.
    status, error = await call(instance, "GET", "/api/v1/users/%ED%A0%80")
    assert (status, error["error"]["code"]) == (404, "not_found"), error
    status, error = await call(instance, "POST", "/api/v1/roster/bulk", {"records": [{"type": []}]})
    assert (status, error["error"]["problems"][0]["field"]) == (400, "records[0].type")


async def test_invisible_only_bodies_are_refused_like_blank_ones(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    for body in ("\u200b", "\ufeff", " \u200d\n"):
        status, error = await send(instance, conversation, sender=ids["student"], body=body)
        assert (status, error["error"]["code"]) == (400, "invalid_field"), body


async def test_markdown_that_renders_past_the_event_limit_is_a_413_not_a_failed_202(
    bridge: tuple[Bridge, Recorder],
) -> None:
    """10,000 characters of emoji are 40 KB as text and twice that with their HTML."""
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, error = await send(
        instance, conversation, sender=ids["student"], body="😀" * 10_000, format="markdown"
    )
    assert (status, error["error"]["code"]) == (413, "message_too_large"), error
    status, message = await send(instance, conversation, sender=ids["student"], body="😀" * 10_000)
    assert (status, message["status"]) == (201, "sent")
    # An edit carries the text twice (its fallback and the new content).
    status, error = await call(
        instance,
        "PATCH",
        f"/api/v1/messages/{message['id']}",
        {"user": ids["student"], "body": "😀" * 9_000},
    )
    assert (status, error["error"]["code"]) == (413, "message_too_large"), error


async def test_markdown_images_reach_matrix_as_links(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, message = await send(
        instance,
        conversation,
        sender=ids["student"],
        body="![notes](https://example.org/pixel.png)",
        format="markdown",
    )
    assert status == 201, message
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        event = await room_event(synapse_env, tutor, conversation["room_id"], message["event_id"])
    finally:
        await tutor.close()
    assert "<img" not in event["content"]["formatted_body"]
    assert '<a href="https://example.org/pixel.png">notes</a>' in event["content"]["formatted_body"]


async def _member(env: SynapseEnv, client: AsyncClient, room_id: str) -> dict[str, Any]:
    status, member = await client_get(
        env, client, f"/_matrix/client/v3/rooms/{room_id}/state/m.room.member/{client.user_id}"
    )
    assert status == 200, member
    return dict(member)


async def test_self_renames_are_put_back_to_the_roster_name(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    """The roster owns who people are: a name set from a Matrix client, globally or in one
    room, is replaced by the roster's at once."""
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    room = conversation["room_id"]
    student = await matrix_client(synapse_env, instance, ids["student"])
    try:
        assert (await _member(synapse_env, student, room))["displayname"] == "Sam Student"
        await student.set_displayname("Jordan Lee (Admin)")

        async def restored_globally() -> bool:
            profile = await student.get_displayname()
            member = await _member(synapse_env, student, room)
            return (
                getattr(profile, "displayname", None) == "Sam Student"
                and member["displayname"] == "Sam Student"
            )

        assert await eventually(restored_globally)

        # A name for this room only.
        member = await _member(synapse_env, student, room)
        status, _ = await client_put(
            synapse_env,
            student,
            f"/_matrix/client/v3/rooms/{room}/state/m.room.member/{student.user_id}",
            {**member, "displayname": "Moderator"},
        )
        assert status == 200

        async def restored_in_room() -> bool:
            return (await _member(synapse_env, student, room))["displayname"] == "Sam Student"

        assert await eventually(restored_in_room)
    finally:
        await student.close()
