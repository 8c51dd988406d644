"""Edits, deletions, reading, read-only conversations and Matrix-side attempts, against a real
Synapse with the people's own Matrix clients."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, RoomCreateResponse, RoomSendResponse

from bridge.app import Bridge
from bridge.services.rooms.foreign import GROUP_ROOMS_REFUSED
from bridge.store.inbox import StoredEvent
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_conversations import matrix_client
from tests.integration.test_messages import send, start_conversation
from tests.integration.test_roster_api import call
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


async def events_of(instance: Bridge, kind: str, conversation_id: str) -> list[dict[str, Any]]:
    status, body = await call(instance, "GET", "/api/v1/events?after=0&limit=1000")
    assert status == 200
    return [
        e
        for e in body["events"]
        if e["type"] == kind and e["data"].get("conversation_id") == conversation_id
    ]


async def client_get(env: SynapseEnv, client: AsyncClient, path: str) -> tuple[int, Any]:
    """A GET on the client-server API as the person."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            env.synapse.url + path, headers={"Authorization": f"Bearer {client.access_token}"}
        ) as response,
    ):
        return response.status, await response.json()


async def client_put(
    env: SynapseEnv, client: AsyncClient, path: str, body: dict[str, Any]
) -> tuple[int, Any]:
    """A PUT on the client-server API as the person."""
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            env.synapse.url + path,
            json=body,
            headers={"Authorization": f"Bearer {client.access_token}"},
        ) as response,
    ):
        return response.status, await response.json()


async def room_event(
    env: SynapseEnv, client: AsyncClient, room_id: str, event_id: str
) -> dict[str, Any]:
    status, event = await client_get(
        env, client, f"/_matrix/client/v3/rooms/{room_id}/event/{event_id}"
    )
    assert status == 200, event
    return dict(event)


async def history(instance: Bridge, conversation_id: str, reader: str, **query: Any) -> Any:
    params = "&".join(f"{k}={v}" for k, v in {"as": reader, **query}.items())
    status, body = await call(
        instance, "GET", f"/api/v1/conversations/{conversation_id}/messages?{params}"
    )
    assert status == 200, body
    return body


async def test_edits_and_deletions_from_the_lms_reach_matrix(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, recorder = bridge
    ids, conversation = await start_conversation(instance)
    room = conversation["room_id"]
    status, message = await send(instance, conversation, sender=ids["student"], body="Tuesday?")
    assert status == 201
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        status, edited = await call(
            instance,
            "PATCH",
            f"/api/v1/messages/{message['id']}",
            {"user": ids["student"], "body": "Wednesday?"},
        )
        assert (status, edited["body"], edited["pending"]) == (200, "Wednesday?", None)
        # Only the sender edits; a repeat changes nothing.
        status, error = await call(
            instance,
            "PATCH",
            f"/api/v1/messages/{message['id']}",
            {"user": ids["tutor"], "body": "hijack"},
        )
        assert (status, error["error"]["code"]) == (403, "not_the_sender")
        status, _ = await call(
            instance,
            "PATCH",
            f"/api/v1/messages/{message['id']}",
            {"user": ids["student"], "body": "Wednesday?"},
        )
        assert status == 200

        status, body = await client_get(
            synapse_env,
            tutor,
            f"/_matrix/client/v1/rooms/{room}/relations/{message['event_id']}/m.replace",
        )
        assert status == 200
        assert [e["content"]["m.new_content"]["body"] for e in body["chunk"]] == ["Wednesday?"]
        assert [e["sender"] for e in body["chunk"]] == [instance.ids.user_id(ids["student"])]

        status, deleted = await call(
            instance, "DELETE", f"/api/v1/messages/{message['id']}?as={ids['student']}"
        )
        assert (status, deleted["deleted"], deleted["body"]) == (200, True, None)
        redacted = await room_event(synapse_env, tutor, room, message["event_id"])
        assert redacted["content"] == {}
        assert "redacted_because" in redacted["unsigned"]

        # The LMS hears of each change once, even after the echoes came back.
        await recorder.wait_for(
            lambda r: any(e.event_type == "m.room.redaction" for e in r.events), timeout=20
        )
        await asyncio.sleep(0.5)
        assert len(await events_of(instance, "message.edited", conversation["id"])) == 1
        assert len(await events_of(instance, "message.deleted", conversation["id"])) == 1
        page = await history(instance, conversation["id"], ids["tutor"])
        assert [(m["id"], m["deleted"], m["body"]) for m in page["messages"]] == [
            (message["id"], True, None)
        ]
    finally:
        await tutor.close()


async def test_edits_and_redactions_in_matrix_reach_the_lms(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    room = conversation["room_id"]
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        sent = await tutor.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "3pm"})
        assert isinstance(sent, RoomSendResponse)
        await eventually(lambda: events_of(instance, "message.created", conversation["id"]))
        edit = await tutor.room_send(
            room,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "* 4pm",
                "m.new_content": {
                    "msgtype": "m.text",
                    "body": "4pm",
                    "format": "org.matrix.custom.html",
                    "formatted_body": "<em>4pm</em><img src=x onerror=alert(1)>",
                },
                "m.relates_to": {"rel_type": "m.replace", "event_id": sent.event_id},
            },
        )
        assert isinstance(edit, RoomSendResponse)
        edited = await eventually(lambda: events_of(instance, "message.edited", conversation["id"]))
        assert [(e["data"]["body"], e["data"]["html"], e["data"]["origin"]) for e in edited] == [
            ("4pm", "<em>4pm</em>", "matrix")
        ]
        page = await history(instance, conversation["id"], ids["student"])
        assert [(m["body"], m["edited_at"] is not None) for m in page["messages"]] == [
            ("4pm", True)
        ]
        await tutor.room_redact(room, sent.event_id, reason="typo")
        deleted = await eventually(
            lambda: events_of(instance, "message.deleted", conversation["id"])
        )
        assert [e["data"]["origin"] for e in deleted] == ["matrix"]
        page = await history(instance, conversation["id"], ids["student"])
        assert [(m["deleted"], m["body"]) for m in page["messages"]] == [(True, None)]
    finally:
        await tutor.close()


async def test_the_inbox_lists_conversations_with_preview_unread_and_receipts(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    sent = []
    for n in range(5):
        status, message = await send(
            instance, conversation, sender=ids["student"], body=f"question {n}\nmore text"
        )
        assert status == 201
        sent.append(message)
    status, inbox = await call(instance, "GET", f"/api/v1/users/{ids['tutor']}/conversations")
    assert status == 200
    [entry] = inbox["conversations"]
    assert entry["id"] == conversation["id"]
    assert entry["state"] == "active"
    assert entry["unread"] == 5
    assert entry["last_message"]["preview"] == "question 4 more text"
    assert entry["other"] == {
        "user_id": ids["student"],
        "display_name": "Sam Student",
        "avatar_url": None,
        "initials": "SS",
        "role": "student",
        "active": True,
        "matrix_id": instance.ids.user_id(ids["student"]),
        "availability": None,  # only a tutor's hours are shown
    }
    # The sender's own messages are never unread for them.
    status, inbox = await call(instance, "GET", f"/api/v1/users/{ids['student']}/conversations")
    assert inbox["conversations"][0]["unread"] == 0

    # History pages backwards.
    page = await history(instance, conversation["id"], ids["tutor"], limit=2)
    assert [m["body"] for m in page["messages"]] == [
        "question 3\nmore text",
        "question 4\nmore text",
    ]
    older = await history(
        instance, conversation["id"], ids["tutor"], limit=2, before=page["next_before"]
    )
    assert [m["id"] for m in older["messages"]] == [sent[1]["id"], sent[2]["id"]]

    # Reading in the LMS sends the Matrix read receipt as that person.
    status, result = await call(
        instance,
        "POST",
        f"/api/v1/conversations/{conversation['id']}/read",
        {"user": ids["tutor"], "up_to": sent[2]["id"]},
    )
    assert (status, result["moved"]) == (200, True)
    status, inbox = await call(instance, "GET", f"/api/v1/users/{ids['tutor']}/conversations")
    assert inbox["conversations"][0]["unread"] == 2
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    student = await matrix_client(synapse_env, instance, ids["student"])
    try:
        synced = await student.sync(timeout=0, full_state=True)
        receipts = synced.rooms.join[conversation["room_id"]].ephemeral  # type: ignore[union-attr]
        read_by_tutor = [
            r.event_id
            for event in receipts
            for r in getattr(event, "receipts", [])
            if r.user_id == tutor.user_id
        ]
        assert read_by_tutor == [sent[2]["event_id"]]

        # A receipt made in the tutor's Matrix client updates the LMS's unread count.
        await tutor.room_read_markers(
            conversation["room_id"], sent[4]["event_id"], sent[4]["event_id"]
        )

        async def caught_up() -> bool:
            _, inbox = await call(instance, "GET", f"/api/v1/users/{ids['tutor']}/conversations")
            return bool(inbox["conversations"][0]["unread"] == 0)

        await eventually(caught_up)
    finally:
        await tutor.close()
        await student.close()


async def test_only_participants_read_or_post(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, message = await send(instance, conversation, sender=ids["student"], body="private")
    assert status == 201
    path = f"/api/v1/conversations/{conversation['id']}"
    outsider = ids["other"]
    for method, url, body in [
        ("GET", f"{path}/messages?as={outsider}", None),
        ("POST", f"{path}/messages", {"sender": outsider, "body": "x", "client_message_id": "1"}),
        ("POST", f"{path}/read", {"user": outsider, "up_to": message["id"]}),
        ("PATCH", f"/api/v1/messages/{message['id']}", {"user": outsider, "body": "x"}),
        ("DELETE", f"/api/v1/messages/{message['id']}?as={outsider}", None),
    ]:
        status, error = await call(instance, method, url, body)
        assert status == 403, (method, url, error)
        assert "private" not in str(error)
    status, inbox = await call(instance, "GET", f"/api/v1/users/{outsider}/conversations")
    assert (status, inbox["conversations"]) == (200, [])
    status, error = await call(instance, "GET", f"{path}/messages?as={outsider}", token="wrong")
    assert status == 403


async def test_a_conversation_turns_read_only_and_reopens_with_the_roster(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    room = conversation["room_id"]
    batch = "b-" + ids["student"].split("-", 1)[1]
    enrollment = f"/api/v1/batches/{batch}/students/{ids['student']}"
    student = await matrix_client(synapse_env, instance, ids["student"])
    try:
        status, _ = await call(instance, "DELETE", enrollment)
        assert status in (200, 204)
        changed = await eventually(
            lambda: events_of(instance, "conversation.state_changed", conversation["id"])
        )
        assert [e["data"]["state"] for e in changed] == ["read_only"]
        status, error = await send(instance, conversation, sender=ids["tutor"], body="still?")
        assert (status, error["error"]["code"]) == (403, "not_allowed")
        assert error["error"]["message"]
        refused = await student.room_send(
            room, "m.room.message", {"msgtype": "m.text", "body": "let me in"}
        )
        assert not isinstance(refused, RoomSendResponse)
        status, levels = await client_get(
            synapse_env, student, f"/_matrix/client/v3/rooms/{room}/state/m.room.power_levels"
        )
        assert levels["events_default"] == 100
        status, inbox = await call(instance, "GET", f"/api/v1/users/{ids['student']}/conversations")
        assert inbox["conversations"][0]["state"] == "read_only"

        status, _ = await call(instance, "PUT", enrollment, {})
        assert status in (200, 201)

        async def reopened() -> bool:
            changes = await events_of(instance, "conversation.state_changed", conversation["id"])
            return [e["data"]["state"] for e in changes] == ["read_only", "active"]

        await eventually(reopened)
        status, levels = await client_get(
            synapse_env, student, f"/_matrix/client/v3/rooms/{room}/state/m.room.power_levels"
        )
        assert levels["events_default"] == 0
        sent = await student.room_send(
            room, "m.room.message", {"msgtype": "m.text", "body": "back again"}
        )
        assert isinstance(sent, RoomSendResponse)
    finally:
        await student.close()


async def leave_reason(
    env: SynapseEnv, client: AsyncClient, room_id: str, user_id: str
) -> str | None:
    """Why `user_id` left (or declined) the room, once they have."""
    status, member = await client_get(
        env, client, f"/_matrix/client/v3/rooms/{room_id}/state/m.room.member/{user_id}"
    )
    if status != 200 or member.get("membership") != "leave":
        return None
    return str(member.get("reason", ""))


async def test_matrix_side_dms_and_group_rooms_are_declined(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    student = await matrix_client(synapse_env, instance, ids["student"])
    await instance.accounts.ensure_account(ids["other"])  # a person without conversations yet
    other = await matrix_client(synapse_env, instance, ids["other"])
    tutor_id = instance.ids.user_id(ids["tutor"])
    try:
        # An allowed pair: pointed to their conversation room.
        dm = await student.room_create(is_direct=True, invite=[tutor_id])
        assert isinstance(dm, RoomCreateResponse)
        reason = await eventually(lambda: leave_reason(synapse_env, student, dm.room_id, tutor_id))
        assert conversation["room_id"] in reason

        # A pair that may not talk: the policy's reason.
        dm = await other.room_create(is_direct=True, invite=[student.user_id])
        assert isinstance(dm, RoomCreateResponse)
        reason = await eventually(
            lambda: leave_reason(synapse_env, other, dm.room_id, student.user_id)
        )
        _status, decision = await call(
            instance, "GET", f"/api/v1/users/{ids['other']}/can-message/{ids['student']}"
        )
        assert (decision["allowed"], reason) == (False, decision["reason"])
        _, inbox = await call(instance, "GET", f"/api/v1/users/{ids['other']}/conversations")
        assert inbox["conversations"] == []

        # A group room: declined whoever asks.
        group = await student.room_create(invite=[tutor_id])
        assert isinstance(group, RoomCreateResponse)
        reason = await eventually(
            lambda: leave_reason(synapse_env, student, group.room_id, tutor_id)
        )
        assert reason == GROUP_ROOMS_REFUSED

        # A bridged account that brings company into a room of its own leaves it.
        outsider, _ = synapse_env.new_user()
        await student.room_invite(group.room_id, outsider)
        assert await eventually(lambda: _left(synapse_env, student, group.room_id))
    finally:
        await student.close()
        await other.close()


async def _left(env: SynapseEnv, client: AsyncClient, room_id: str) -> bool:
    status, joined = await client_get(env, client, "/_matrix/client/v3/joined_rooms")
    return status == 200 and room_id not in joined["joined_rooms"]


async def test_a_room_that_turns_encrypted_is_no_longer_mirrored(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, recorder = bridge
    ids, conversation = await start_conversation(instance)
    room = conversation["room_id"]
    # As a homeserver forcing encryption would: the room gets m.room.encryption.
    await instance.client.intent(instance.config.bot_user_id).set_state(
        room, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}
    )
    await recorder.wait_for(
        lambda r: any(e.event_type == "m.room.encryption" for e in r.events), timeout=20
    )
    status, conv = await call(instance, "GET", f"/api/v1/users/{ids['tutor']}/conversations")
    assert conv["conversations"][0]["encrypted"] is True
    status, error = await send(instance, conversation, sender=ids["tutor"], body="hello?")
    assert (status, error["error"]["code"]) == (409, "conversation_encrypted")
    student = await matrix_client(synapse_env, instance, ids["student"])
    try:
        status, body = await client_get(
            synapse_env, student, f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=5"
        )
        notices = [e for e in body["chunk"] if e["content"].get("msgtype") == "m.notice"]
        assert notices and "encrypted" in notices[0]["content"]["body"]
    finally:
        await student.close()


async def test_a_person_who_left_the_room_in_a_client_is_brought_back_by_the_next_message(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    student = await matrix_client(synapse_env, instance, ids["student"])
    try:
        await student.room_leave(conversation["room_id"])
        status, message = await send(instance, conversation, sender=ids["student"], body="back")
        assert (status, message["status"]) == (201, "sent")
        assert await eventually(lambda: _joined(synapse_env, student, conversation["room_id"]))
    finally:
        await student.close()


async def _joined(env: SynapseEnv, client: AsyncClient, room_id: str) -> bool:
    return not await _left(env, client, room_id)


async def test_retries_are_answered_with_the_stored_message_and_reuse_is_refused(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, first = await send(
        instance, conversation, sender=ids["student"], body="once", client_message_id="k1"
    )
    assert status == 201
    batch = "b-" + ids["student"].split("-", 1)[1]
    status, _ = await call(instance, "DELETE", f"/api/v1/batches/{batch}/students/{ids['student']}")
    # A retry after the conversation froze still gets the message it stored.
    status, again = await send(
        instance, conversation, sender=ids["student"], body="once", client_message_id="k1"
    )
    assert (status, again["id"]) == (200, first["id"])
    status, error = await send(
        instance, conversation, sender=ids["student"], body="other", client_message_id="k1"
    )
    assert (status, error["error"]["code"]) == (409, "client_message_id_reused")
    # Deleting twice answers the deleted message both times.
    for _ in range(2):
        status, deleted = await call(
            instance, "DELETE", f"/api/v1/messages/{first['id']}?as={ids['student']}"
        )
        assert (status, deleted["deleted"]) == (200, True)
    assert len(await events_of(instance, "message.deleted", conversation["id"])) == 1


async def test_an_edit_aimed_at_another_rooms_message_is_ignored(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, first = await start_conversation(instance)
    status, second = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["other"], "recipient": ids["tutor"]},
    )
    assert status == 201, second
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        sent = await tutor.room_send(
            first["room_id"], "m.room.message", {"msgtype": "m.text", "body": "for Sam"}
        )
        assert isinstance(sent, RoomSendResponse)
        await eventually(lambda: events_of(instance, "message.created", first["id"]))
        # Synapse refuses such an edit itself; a homeserver that let it through must not
        # change the LMS's copy either, so the event is handed to the bridge directly.
        stray = {
            "type": "m.room.message",
            "event_id": "$stray-edit",
            "room_id": second["room_id"],
            "sender": tutor.user_id,
            "content": {
                "msgtype": "m.text",
                "body": "* changed",
                "m.new_content": {"msgtype": "m.text", "body": "changed"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": sent.event_id},
            },
        }
        await instance.conversation_rooms.on_message(
            StoredEvent(0, "$stray-edit", second["room_id"], "timeline", "m.room.message", stray, 0)
        )
        assert await events_of(instance, "message.edited", first["id"]) == []
        page = await history(instance, first["id"], ids["student"])
        assert [m["body"] for m in page["messages"]] == ["for Sam"]
    finally:
        await tutor.close()


async def test_redacting_an_edit_in_matrix_gives_the_lms_the_earlier_text(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    """Clients show the text before an edit again once the edit is redacted; so does the LMS."""
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    room = conversation["room_id"]
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        sent = await tutor.room_send(
            room, "m.room.message", {"msgtype": "m.text", "body": "Room 101"}
        )
        assert isinstance(sent, RoomSendResponse)
        edit = await tutor.room_send(
            room,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "* Room 102",
                "m.new_content": {"msgtype": "m.text", "body": "Room 102"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": sent.event_id},
            },
        )
        assert isinstance(edit, RoomSendResponse)
        await eventually(lambda: events_of(instance, "message.edited", conversation["id"]))
        await tutor.room_redact(room, edit.event_id)

        async def undone() -> list[dict[str, Any]] | None:
            edits = await events_of(instance, "message.edited", conversation["id"])
            return edits if len(edits) == 2 else None

        edits = await eventually(undone)
        assert [(e["data"]["body"], e["data"]["edit_event_id"]) for e in edits] == [
            ("Room 102", edit.event_id),
            ("Room 101", None),
        ]
        assert edits[1]["data"]["undone_edit_event_id"] == edit.event_id
        page = await history(instance, conversation["id"], ids["student"])
        assert [m["body"] for m in page["messages"]] == ["Room 101"]
    finally:
        await tutor.close()


async def _events_default(instance: Bridge, room_id: str) -> int:
    levels = await instance.client.intent(instance.config.bot_user_id).state(
        room_id, "m.room.power_levels"
    )
    return int(levels.get("events_default", 0))


async def test_a_room_frozen_while_the_conversation_is_active_is_mended(
    bridge: tuple[Bridge, Recorder],
) -> None:
    """A crash between freezing the room and storing `read_only`, with the relationship back
    before the restart, left the room frozen while the API said active: the sweep compares the
    room's real power levels with the decision."""
    instance, _ = bridge
    _ids, conversation = await start_conversation(instance)
    room = conversation["room_id"]
    bot = instance.client.intent(instance.config.bot_user_id)
    levels = await bot.state(room, "m.room.power_levels")
    await bot.set_state(room, "m.room.power_levels", {**levels, "events_default": 100})
    instance.lifecycle.roster_changed(set(), everyone=True)

    async def open_again() -> bool:
        return await _events_default(instance, room) == 0

    assert await eventually(open_again)


async def test_ended_enrollments_are_caught_on_time_while_the_bridge_is_busy(
    synapse_env: SynapseEnv, sqlite_url: str
) -> None:
    """The sweep keeps its own clock: work waking the bridge all the time must not put it off."""
    config = synapse_env.bridge_config(sqlite_url)
    config = dataclasses.replace(
        config,
        conversations=dataclasses.replace(config.conversations, sweep_interval_seconds=1),
    )
    instance = Bridge(config)
    await instance.start()
    try:
        ids, conversation = await start_conversation(instance)
        tag = ids["student"].split("-", 1)[1]
        ends = datetime.now(UTC) + timedelta(seconds=2)
        status, body = await call(
            instance,
            "PUT",
            f"/api/v1/batches/b-{tag}/students/{ids['student']}",
            {"ends_at": ends.isoformat()},
        )
        assert status == 200, body

        async def read_only() -> bool:
            instance.lifecycle.roster_changed({"someone-else"}, everyone=False)  # busy
            _, inbox = await call(instance, "GET", f"/api/v1/users/{ids['tutor']}/conversations")
            return bool(inbox["conversations"][0]["state"] == "read_only")

        assert await eventually(read_only, timeout=15)
        assert await _events_default(instance, conversation["room_id"]) == 100
    finally:
        await instance.stop()
