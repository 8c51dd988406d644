"""Files, reactions and everything else a Matrix client can send, against a real Synapse:
files reach the LMS with a participant-only download, reactions as their own events, and what
the bridge does not carry is said so to the sender."""

from __future__ import annotations

import io
import json
import secrets
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, RoomSendResponse, UploadResponse
from PIL import Image

from bridge.app import Bridge
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_conversation_life import client_get, room_event
from tests.integration.test_conversations import matrix_client
from tests.integration.test_messages import feed, start_conversation
from tests.integration.test_roster_api import call
from tests.support.contract import check_response
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


def png(size: int = 300) -> bytes:
    """A real PNG of a few hundred KB (noise does not compress)."""
    image = Image.frombytes("RGB", (size, size), secrets.token_bytes(size * size * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def post_file(
    instance: Bridge, conversation_id: str, fields: dict[str, str], data: bytes, name: str
) -> tuple[int, Any]:
    """Send a file as a multipart message; the answer is checked against the document."""
    path = f"/api/v1/conversations/{conversation_id}/messages"
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("file", data, filename=name, content_type="image/png")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{instance.config.appservice.listen_port}{path}",
            data=form,
            headers={"Authorization": f"Bearer {instance.config.lms.api_token}"},
        ) as response,
    ):
        body = await response.json()
        check_response("POST", path, response.status, response.content_type, body)
        return response.status, body


async def download(instance: Bridge, message_id: str, reader: str) -> tuple[int, bytes, Any]:
    """Download a message's file; the answer (a file, or an error) is checked against the
    document."""
    path = f"/api/v1/messages/{message_id}/attachment"
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{instance.config.appservice.listen_port}{path}?as={reader}",
            headers={"Authorization": f"Bearer {instance.config.lms.api_token}"},
        ) as response,
    ):
        data = await response.read()
        json_answer = response.content_type == "application/json"
        body = json.loads(data) if json_answer and data else data
        check_response("GET", path, response.status, response.content_type, body)
        return response.status, data, response.headers


async def test_a_file_from_the_lms_reaches_matrix_and_only_participants_download_it(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    data = png()
    fields = {"sender": ids["student"], "client_message_id": "f1", "body": "my homework"}
    status, message = await post_file(instance, conversation["id"], fields, data, "hw.png")
    assert status == 201, message
    assert message["attachment"] == {
        "kind": "image",
        "name": "hw.png",
        "size": len(data),
        "mimetype": "image/png",
    }
    # A retry is the same message, not a second upload.
    status, again = await post_file(instance, conversation["id"], fields, data, "hw.png")
    assert (status, again["id"]) == (200, message["id"])

    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        event = await room_event(synapse_env, tutor, conversation["room_id"], message["event_id"])
        content = event["content"]
        assert (content["msgtype"], content["body"], content["filename"]) == (
            "m.image",
            "my homework",
            "hw.png",
        )
        assert content["info"] == {"size": len(data), "mimetype": "image/png"}
        assert content["url"].startswith("mxc://")
    finally:
        await tutor.close()

    status, body, headers = await download(instance, message["id"], ids["tutor"])
    assert (status, body) == (200, data)
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, body, _ = await download(instance, message["id"], ids["other"])
    assert status == 403
    events = await feed(instance, conversation["id"])
    created = [e for e in events if e["type"] == "message.created"]
    assert [e["data"]["attachment"]["name"] for e in created] == ["hw.png"]


async def test_bad_file_requests_are_refused_clearly(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, error = await post_file(
        instance, conversation["id"], {"sender": ids["student"]}, b"x", "a.txt"
    )
    assert (status, error["error"]["field"]) == (400, "client_message_id")
    form_without_file = {"sender": ids["student"], "client_message_id": "c", "extra": "?"}
    status, error = await post_file(instance, conversation["id"], form_without_file, b"x", "a")
    assert (status, error["error"]["code"]) == (400, "invalid_field")
    status, text = await send_text(instance, conversation["id"], ids["student"])
    status, error = await call(
        instance, "GET", f"/api/v1/messages/{text['id']}/attachment?as={ids['student']}"
    )
    assert (status, error["error"]["code"]) == (404, "no_attachment")
    status, error = await call(instance, "GET", "/api/v1/messages/nope/attachment?as=x")
    assert status == 404


async def send_text(instance: Bridge, conversation_id: str, sender: str) -> tuple[int, Any]:
    return await call(
        instance,
        "POST",
        f"/api/v1/conversations/{conversation_id}/messages",
        {"sender": sender, "body": "hello", "client_message_id": secrets.token_hex(4)},
    )


async def _notices(env: SynapseEnv, client: AsyncClient, room_id: str) -> list[dict[str, Any]]:
    status, body = await client_get(
        env, client, f"/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit=50"
    )
    assert status == 200
    return [e for e in body["chunk"] if e["content"].get("msgtype") == "m.notice"]


async def test_files_and_reactions_from_matrix_reach_the_lms(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    room = conversation["room_id"]
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    data = b"%PDF-1.4 " + secrets.token_bytes(200_000)
    try:
        uploaded, _ = await tutor.upload(
            lambda *_: io.BytesIO(data),
            content_type="application/pdf",
            filename="notes.pdf",
            filesize=len(data),
        )
        assert isinstance(uploaded, UploadResponse), uploaded
        sent = await tutor.room_send(
            room,
            "m.room.message",
            {
                "msgtype": "m.file",
                "body": "Week 3 notes",
                "filename": "notes.pdf",
                "url": uploaded.content_uri,
                "info": {"size": len(data), "mimetype": "application/pdf"},
            },
        )
        assert isinstance(sent, RoomSendResponse)

        async def file_message() -> dict[str, Any] | None:
            events = await feed(instance, conversation["id"])
            found = [e for e in events if e["type"] == "message.created"]
            return found[0]["data"] if found else None

        created = await eventually(file_message)
        assert created["body"] == "Week 3 notes"
        assert created["attachment"] == {
            "kind": "file",
            "name": "notes.pdf",
            "size": len(data),
            "mimetype": "application/pdf",
        }
        status, body, headers = await download(instance, created["message_id"], ids["student"])
        assert (status, body) == (200, data)
        # A PDF is offered as bytes to save, never shown from the bridge's origin.
        assert headers["Content-Type"] == "application/octet-stream"

        reaction = await tutor.room_send(
            room,
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": sent.event_id, "key": "👍"}},
        )
        assert isinstance(reaction, RoomSendResponse)
        await tutor.room_redact(room, reaction.event_id)

        async def reactions() -> list[dict[str, Any]] | None:
            events = await feed(instance, conversation["id"])
            found = [e for e in events if e["type"].startswith("reaction.")]
            return found if len(found) == 2 else None

        added, removed = await eventually(reactions)
        assert (added["type"], added["data"]["key"], added["data"]["sender"]) == (
            "reaction.added",
            "👍",
            ids["tutor"],
        )
        assert added["data"]["message_id"] == created["message_id"]
        assert (removed["type"], removed["data"]["event_id"]) == (
            "reaction.removed",
            reaction.event_id,
        )
    finally:
        await tutor.close()


async def test_what_is_not_carried_is_said_so_to_the_sender(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    """A location and a sticker don't reach the LMS; the bot answers each with a notice."""
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    room = conversation["room_id"]
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        location = await tutor.room_send(
            room,
            "m.room.message",
            {"msgtype": "m.location", "body": "Room 4", "geo_uri": "geo:51.5,0.1"},
        )
        sticker = await tutor.room_send(
            room, "m.sticker", {"body": "cat", "url": "mxc://test.local/abc", "info": {}}
        )
        assert isinstance(location, RoomSendResponse) and isinstance(sticker, RoomSendResponse)

        async def both_answered() -> list[dict[str, Any]] | None:
            notices = await _notices(synapse_env, tutor, room)
            replies = {
                n["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id"): n
                for n in notices
            }
            if location.event_id in replies and sticker.event_id in replies:
                return [replies[location.event_id], replies[sticker.event_id]]
            return None

        answers = await eventually(both_answered)
        assert "a location" in answers[0]["content"]["body"]
        assert "a sticker" in answers[1]["content"]["body"]
        assert all(n["sender"] == instance.config.bot_user_id for n in answers)
    finally:
        await tutor.close()
    events = await feed(instance, conversation["id"])
    assert [e for e in events if e["type"] == "message.created"] == []
