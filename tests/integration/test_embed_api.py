"""The embedded inbox's sessions and routes against a real Synapse: a link opens once, a session
acts for its one person only, the LMS ends it, and the live stream carries each change."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from bridge.app import Bridge
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_admin_room import SQLITE_ONLY
from tests.integration.test_conversations import matrix_client, seed
from tests.integration.test_roster_api import call
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


async def open_session(instance: Bridge, user: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    """A session token for `user`, as the page gets it from its link."""
    status, link = await call(instance, "POST", "/api/v1/embed/sessions", {"user": user, **extra})
    assert status == 201, link
    code = urlsplit(link["url"]).fragment.removeprefix("code=")
    status, opened = await call(instance, "POST", "/embed/api/session", {"code": code}, token=None)
    assert status == 201, opened
    return opened["token"], opened


def base(instance: Bridge) -> str:
    return f"http://127.0.0.1:{instance.config.appservice.listen_port}"


async def test_a_link_opens_once_and_only_for_its_person(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    status, link = await call(
        instance, "POST", "/api/v1/embed/sessions", {"user": ids["student"], "ttl_seconds": 600}
    )
    assert status == 201, link
    parts = urlsplit(link["url"])
    assert parts.path == "/embed/" and not parts.query  # the code is only in the fragment
    code = parts.fragment.removeprefix("code=")
    assert len(code) >= 40
    status, opened = await call(instance, "POST", "/embed/api/session", {"code": code}, token=None)
    assert status == 201 and opened["me"]["user_id"] == ids["student"]
    assert opened["me"]["initials"] == "SS" and opened["me"]["role"] == "student"
    # The same link again, or a made-up one: expired, in words.
    for again in (code, "not-a-code"):
        status, error = await call(
            instance, "POST", "/embed/api/session", {"code": again}, token=None
        )
        assert (status, error["error"]["code"]) == (401, "link_expired")
        assert "reopen Messages" in error["error"]["message"]
    # The LMS's own token is not a session, nor is nothing.
    status, error = await call(instance, "GET", "/embed/api/conversations")
    assert (status, error["error"]["code"]) == (401, "session_ended")
    status, error = await call(instance, "GET", "/embed/api/conversations", token=None)
    assert status == 401
    # Links for nobody, or a conversation of someone else, are refused.
    status, error = await call(instance, "POST", "/api/v1/embed/sessions", {"user": "nobody"})
    assert status == 404
    status, error = await call(
        instance, "POST", "/api/v1/embed/sessions", {"user": ids["student"], "ttl_seconds": 5}
    )
    assert (status, error["error"]["field"]) == (400, "ttl_seconds")
    # Only hashes are stored.
    from sqlalchemy import text

    rows = await instance.db.rows(text("SELECT code_hash, token_hash FROM embed_sessions"))
    assert all(code not in row and opened["token"] not in row for row in rows)


@SQLITE_ONLY
async def test_an_expired_link_is_refused(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    status, link = await call(instance, "POST", "/api/v1/embed/sessions", {"user": ids["tutor"]})
    assert status == 201
    from sqlalchemy import text

    await instance.db.execute(text("UPDATE embed_sessions SET code_expires_at = '2000-01-01'"))
    code = urlsplit(link["url"]).fragment.removeprefix("code=")
    status, error = await call(instance, "POST", "/embed/api/session", {"code": code}, token=None)
    assert (status, error["error"]["code"]) == (401, "link_expired")


async def test_a_session_reads_and_writes_only_its_own_conversations(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    student, _ = await open_session(instance, ids["student"])
    other, _ = await open_session(instance, ids["other"])
    status, found = await call(instance, "GET", "/embed/api/contacts?q=alex", token=student)
    assert status == 200 and [c["user_id"] for c in found["contacts"]] == [ids["tutor"]]
    status, conversation = await call(
        instance, "POST", "/embed/api/conversations", {"recipient": ids["tutor"]}, token=student
    )
    assert status == 201, conversation
    path = f"/embed/api/conversations/{conversation['id']}"
    status, sent = await call(
        instance,
        "POST",
        f"{path}/messages",
        {"body": "Is **Friday** ok?", "client_message_id": "page-1"},
        token=student,
    )
    assert status == 201 and sent["html"] == "<p>Is <strong>Friday</strong> ok?</p>"
    # Another student's session: not their conversation, not their message.
    for method, route, body in (
        ("GET", path, None),
        ("GET", f"{path}/messages", None),
        ("POST", f"{path}/messages", {"body": "hi", "client_message_id": "x"}),
        ("POST", f"{path}/read", {"up_to": sent["id"]}),
        ("PATCH", f"/embed/api/messages/{sent['id']}", {"body": "mine now"}),
        ("DELETE", f"/embed/api/messages/{sent['id']}", None),
        ("POST", f"/embed/api/messages/{sent['id']}/reports", {"reason": "x"}),
    ):
        status, error = await call(instance, method, route, body, token=other)
        assert status == 403, (method, route, status, error)
    status, listed = await call(instance, "GET", "/embed/api/conversations", token=other)
    assert listed["conversations"] == []
    # The tutor's page sees it unread; the LMS's badge too; reading it clears both.
    tutor, _ = await open_session(instance, ids["tutor"])
    status, unread = await call(instance, "GET", f"/api/v1/users/{ids['tutor']}/unread")
    assert (status, unread["unread"], unread["conversations"]) == (200, 1, 1)
    status, page = await call(instance, "GET", f"{path}/messages", token=tutor)
    assert [m["body"] for m in page["messages"]] == ["Is **Friday** ok?"]
    assert page["messages"][0]["read"] is False and page["messages"][0]["reported"] is False
    status, _ = await call(instance, "POST", f"{path}/read", {"up_to": sent["id"]}, token=tutor)
    assert status == 200
    status, unread = await call(instance, "GET", "/embed/api/unread", token=tutor)
    assert unread["unread"] == 0
    status, page = await call(instance, "GET", f"{path}/messages", token=student)
    assert page["messages"][0]["seen"] is True  # the student sees the tutor read it
    status, report = await call(
        instance,
        "POST",
        f"/embed/api/messages/{sent['id']}/reports",
        {"reason": "rude", "category": "harassment"},
        token=tutor,
    )
    assert status == 201 and report["reporter"] == ids["tutor"]
    status, page = await call(instance, "GET", f"{path}/messages", token=tutor)
    assert page["messages"][0]["reported"] is True


@SQLITE_ONLY
async def test_the_lms_ends_a_persons_sessions_and_their_open_stream_stops(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    token, _ = await open_session(instance, ids["student"])
    async with aiohttp.ClientSession() as http:
        response = await http.get(
            f"{base(instance)}/embed/api/stream", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.headers["Content-Type"] == "text/event-stream"
        assert "frame-ancestors" in response.headers["Content-Security-Policy"]
        status, ended = await call(
            instance, "DELETE", f"/api/v1/users/{ids['student']}/embed/sessions"
        )
        assert (status, ended["ended"]) == (200, 1)
        async with asyncio.timeout(10):
            text = (await response.read()).decode()
        assert "event: ended" in text
    status, error = await call(instance, "GET", "/embed/api/conversations", token=token)
    assert (status, error["error"]["code"]) == (401, "session_ended")


async def read_events(
    response: aiohttp.ClientResponse, want: int, kind: str = "message.created"
) -> list[dict[str, Any]]:
    """The next `want` changes of type `kind` on a stream, each with its id."""
    found: list[dict[str, Any]] = []
    event: dict[str, Any] = {}
    async with asyncio.timeout(15):
        while len(found) < want:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and event:
                if event.get("event") == "change" and event["data"]["type"] == kind:
                    found.append(event)
                event = {}
    return found


async def test_the_stream_carries_a_matrix_message_and_resumes_where_it_dropped(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    student, _ = await open_session(instance, ids["student"])
    status, conversation = await call(
        instance, "POST", "/embed/api/conversations", {"recipient": ids["tutor"]}, token=student
    )
    assert status == 201
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    headers = {"Authorization": f"Bearer {student}"}
    try:
        async with aiohttp.ClientSession() as http:
            response = await http.get(f"{base(instance)}/embed/api/stream", headers=headers)
            await tutor.room_send(
                conversation["room_id"],
                "m.room.message",
                {"msgtype": "m.text", "body": "Friday works"},
            )
            (first,) = await read_events(response, 1)
            assert first["data"]["type"] == "message.created"
            assert first["data"]["conversation_id"] == conversation["id"]
            response.close()  # the connection drops; two changes happen meanwhile
            await tutor.room_send(
                conversation["room_id"], "m.room.message", {"msgtype": "m.text", "body": "2"}
            )
            await tutor.room_send(
                conversation["room_id"], "m.room.message", {"msgtype": "m.text", "body": "3"}
            )

            async def both_stored() -> bool:
                _, page = await call(
                    instance,
                    "GET",
                    f"/embed/api/conversations/{conversation['id']}/messages",
                    token=student,
                )
                return [m["body"] for m in page["messages"]][-2:] == ["2", "3"]

            # Stored while no stream was open: the resumed stream must replay them.
            await eventually(both_stored, "the two messages stored")
            resumed = await http.get(
                f"{base(instance)}/embed/api/stream",
                headers={**headers, "Last-Event-ID": str(first["id"])},
            )
            missed = await read_events(resumed, 2)
            assert [e["data"]["type"] for e in missed] == ["message.created"] * 2
            assert first["id"] < missed[0]["id"] < missed[1]["id"]
            resumed.close()
    finally:
        await tutor.close()


@SQLITE_ONLY
async def test_hours_without_a_zone_are_read_in_the_institutions(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    tag = ids["student"].split("-")[1]
    status, _ = await call(
        instance,
        "PUT",
        f"/api/v1/institutions/u-{tag}",
        {"name": "Uni", "timezone": "Europe/Berlin"},
    )
    assert status == 200
    hours = {"weekly_hours": [{"day": "fri", "start": "09:00", "end": "12:00"}]}
    status, _ = await call(
        instance,
        "PUT",
        f"/api/v1/users/{ids['tutor']}",
        {"display_name": "Alex Kim", "availability": hours},
    )
    assert status == 200
    status, found = await call(instance, "GET", f"/api/v1/users/{ids['student']}/contacts?q=alex")
    (tutor,) = found["contacts"]
    assert tutor["availability"] == {
        "hours": "Usually available Fri 09:00–12:00, Berlin time",
        "note": None,
    }
    status, _ = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["student"], "recipient": ids["tutor"]},
    )
    status, inbox = await call(instance, "GET", f"/api/v1/users/{ids['student']}/conversations")
    assert inbox["conversations"][0]["other"]["availability"]["hours"].endswith("Berlin time")
