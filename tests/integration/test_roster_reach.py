"""Roster changes made by another process (an `import-oneroster` run, a second writer on the same
database) reach the running bridge: conversations freeze, names follow, and a message typed
before the bridge noticed is not published. Against a real Synapse, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, RoomSendResponse

from bridge.app import Bridge
from bridge.config import driver_database_url, write_back
from bridge.domain.roster import AssignmentDelete, RosterChange, UserPut
from bridge.services.roster import RosterService
from bridge.store.database import Database
from bridge.store.inbox import StoredEvent
from bridge.store.roster import RosterRepository
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_cli import lms_bridge
from tests.integration.test_conversation_life import client_get, events_of
from tests.integration.test_conversations import matrix_client
from tests.integration.test_messages import start_conversation
from tests.integration.test_roster_api import call
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NOTICED_WITHIN = 10.0  # seconds; the watch reads the version every 2 by default


async def apply_elsewhere(database_url: str, changes: list[RosterChange]) -> None:
    """Write roster changes as another process would: its own engine, repository and service,
    which the running bridge knows nothing of."""
    other = Database(driver_database_url(database_url, None))
    try:
        await RosterService(RosterRepository(other)).apply(changes)
    finally:
        await other.close()


def batch_of(ids: dict[str, str]) -> str:
    """The batch the seeded student and tutor share."""
    return "b-" + ids["student"].split("-", 1)[1]


async def conversation_state(instance: Bridge, user: str) -> str:
    status, inbox = await call(instance, "GET", f"/api/v1/users/{user}/conversations")
    assert status == 200, inbox
    return str(inbox["conversations"][0]["state"])


async def events_default(env: SynapseEnv, client: AsyncClient, room: str) -> int:
    status, levels = await client_get(
        env, client, f"/_matrix/client/v3/rooms/{room}/state/m.room.power_levels"
    )
    assert status == 200, levels
    return int(levels.get("events_default", 0))


async def frozen(
    instance: Bridge, env: SynapseEnv, client: AsyncClient, ids: dict[str, str]
) -> bool:
    """Whether the conversation of `ids` is read-only in the API and frozen in Matrix."""
    _, inbox = await call(instance, "GET", f"/api/v1/users/{ids['student']}/conversations")
    room = inbox["conversations"][0]["room_id"]
    return (
        await conversation_state(instance, ids["student"]) == "read_only"
        and await events_default(env, client, room) == 100
    )


async def bot_notices(
    instance: Bridge, env: SynapseEnv, client: AsyncClient, room: str
) -> list[dict[str, Any]]:
    """The bot's notices in the room, newest first."""
    status, body = await client_get(
        env, client, f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50"
    )
    assert status == 200, body
    return [
        e["content"]
        for e in body["chunk"]
        if e["type"] == "m.room.message"
        and e["sender"] == instance.config.bot_user_id
        and e["content"].get("msgtype") == "m.notice"
    ]


def refusals(notices: list[dict[str, Any]], event_id: str) -> list[dict[str, Any]]:
    """The notices saying the event `event_id` was not delivered."""
    return [
        n
        for n in notices
        if n.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id
        and "not delivered" in n["body"]
    ]


def delta_export(folder: Path, batch: str, student: str) -> Path:
    """A OneRoster delta export that only ends one enrollment."""
    folder.mkdir()
    (folder / "manifest.csv").write_text(
        "propertyName,value\n"
        "oneroster.version,1.1\n"
        "file.orgs,absent\nfile.users,absent\nfile.courses,absent\nfile.classes,absent\n"
        "file.enrollments,delta\n"
    )
    (folder / "enrollments.csv").write_text(
        "sourcedId,status,dateLastModified,classSourcedId,userSourcedId,role\n"
        f"enr-{secrets.token_hex(3)},tobedeleted,2026-01-01,{batch},{student},student\n"
    )
    return folder


async def test_an_import_run_elsewhere_freezes_the_conversation_within_seconds(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv, database_url: str, tmp_path: Path
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    config = tmp_path / "config.yaml"
    config.write_text(synapse_env.config_path.read_text())
    write_back(config, {"database.url": database_url})  # the running bridge's database
    export = delta_export(tmp_path / "export", batch_of(ids), ids["student"])
    student = await matrix_client(synapse_env, instance, ids["student"])
    try:
        result = await asyncio.to_thread(
            lms_bridge, "import-oneroster", "-c", str(config), str(export)
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "removed: 1 assignments" in result.stdout
        status, decision = await call(
            instance, "GET", f"/api/v1/users/{ids['tutor']}/can-message/{ids['student']}"
        )
        assert (status, decision["allowed"]) == (200, False)

        assert await eventually(
            lambda: frozen(instance, synapse_env, student, ids), timeout=NOTICED_WITHIN
        )
        changed = await events_of(instance, "conversation.state_changed", conversation["id"])
        assert [e["data"]["state"] for e in changed] == ["read_only"]
        refused = await student.room_send(
            conversation["room_id"], "m.room.message", {"msgtype": "m.text", "body": "hello?"}
        )
        assert not isinstance(refused, RoomSendResponse)
    finally:
        await student.close()


async def test_a_rename_made_elsewhere_reaches_matrix_within_seconds(
    bridge: tuple[Bridge, Recorder], database_url: str
) -> None:
    instance, _ = bridge
    ids, _conversation = await start_conversation(instance)
    tutor = instance.ids.user_id(ids["tutor"])
    assert (await instance.client.profile(tutor)).get("displayname") == "Alex Kim"
    await apply_elsewhere(database_url, [UserPut(ids["tutor"], "Alexandra Kim", keep_unset=True)])

    async def renamed() -> bool:
        return (await instance.client.profile(tutor)).get("displayname") == "Alexandra Kim"

    assert await eventually(renamed, timeout=NOTICED_WITHIN)


@pytest.fixture
async def unwatched_bridge(
    synapse_env: SynapseEnv, database_url: str
) -> AsyncIterator[tuple[Bridge, Recorder]]:
    """A started bridge that won't look at the roster version during the test (nor sweep)."""
    config = synapse_env.bridge_config(database_url)
    config = dataclasses.replace(
        config,
        conversations=dataclasses.replace(config.conversations, roster_watch_seconds=3600),
    )
    instance = Bridge(config)
    recorder = Recorder()
    instance.router.observe(None, recorder)
    await instance.start()
    try:
        yield instance, recorder
    finally:
        await instance.stop()


async def test_a_message_typed_before_the_bridge_noticed_is_not_published(
    unwatched_bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv, database_url: str
) -> None:
    instance, recorder = unwatched_bridge
    ids, conversation = await start_conversation(instance)
    room = conversation["room_id"]
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        before = await tutor.room_send(
            room, "m.room.message", {"msgtype": "m.text", "body": "see you Monday"}
        )
        assert isinstance(before, RoomSendResponse)
        await eventually(lambda: events_of(instance, "message.created", conversation["id"]))

        await apply_elsewhere(
            database_url, [AssignmentDelete("student", batch_of(ids), ids["student"])]
        )
        # The room is still open: the bridge hasn't heard of the change.
        after = await tutor.room_send(
            room, "m.room.message", {"msgtype": "m.text", "body": "did you get my notes?"}
        )
        assert isinstance(after, RoomSendResponse)
        await recorder.wait_for(lambda r: after.event_id in r.ids(), timeout=20)

        created = await events_of(instance, "message.created", conversation["id"])
        assert [e["data"]["body"] for e in created] == ["see you Monday"]
        [notice] = refusals(await bot_notices(instance, synapse_env, tutor, room), after.event_id)
        assert notice["body"] == (
            "This message was not delivered to the learning platform: "
            "Sam Student isn't enrolled in any batch you teach."
        )
        assert await eventually(
            lambda: frozen(instance, synapse_env, tutor, ids), timeout=NOTICED_WITHIN
        )

        # An edit is held back the same way (handed over directly: the frozen room refuses it).
        edit_id = f"$edit-{secrets.token_hex(4)}"
        edit = {
            "type": "m.room.message",
            "event_id": edit_id,
            "room_id": room,
            "sender": tutor.user_id,
            "content": {
                "msgtype": "m.text",
                "body": "* see you Tuesday",
                "m.new_content": {"msgtype": "m.text", "body": "see you Tuesday"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": before.event_id},
            },
        }
        stored = StoredEvent(0, edit_id, room, "timeline", "m.room.message", edit, 0)
        for _ in range(2):  # handled again after a crash: still one notice
            await instance.conversation_rooms.on_message(stored)
        assert await events_of(instance, "message.edited", conversation["id"]) == []
        notices = await bot_notices(instance, synapse_env, tutor, room)
        assert [n["body"].split(":")[0] for n in refusals(notices, edit_id)] == [
            "This edit was not delivered to the learning platform"
        ]
    finally:
        await tutor.close()
