"""The contact-info rule against a real Synapse, per institution: off, flag, warn and block, for
messages and edits sent through the API and typed in a Matrix client; and the alert card when
someone's messages keep being refused."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import pytest
from nio import RoomSendError

from bridge.app import Bridge
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_admin_room import Person, moderator_in_admin_room
from tests.integration.test_conversation_life import events_of
from tests.integration.test_conversations import matrix_client
from tests.integration.test_messages import send, start_conversation
from tests.integration.test_roster_api import call
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse
PHONE = "call me on 07911 123456 after six"
# Room logic rather than storage: one database is proof enough for these (the tests that store
# something new run on both).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _rule(instance: Bridge, ids: dict[str, str], mode: str) -> None:
    """Set the rule of the seeded institution."""
    institution = "u-" + ids["student"].removeprefix("student-")
    body = {"name": "Uni", "region": "GB", "content_rules": {"contact_info": mode}}
    status, answer = await call(instance, "PUT", f"/api/v1/institutions/{institution}", body)
    assert status == 200, answer


async def _events(instance: Bridge, kind: str, conversation_id: str) -> list[dict[str, Any]]:
    return [e["data"] for e in await events_of(instance, kind, conversation_id)]


async def _history(instance: Bridge, conversation: dict[str, Any], reader: str) -> list[str]:
    status, page = await call(
        instance, "GET", f"/api/v1/conversations/{conversation['id']}/messages?as={reader}"
    )
    assert status == 200
    return [m["body"] for m in page["messages"]]


async def _room(env: SynapseEnv, instance: Bridge, platform_id: str, room_id: str) -> Person:
    client = await matrix_client(env, instance, platform_id)
    return Person(env, client, room_id, instance.config.bot_user_id)


async def test_block_refuses_an_api_send_or_edit_and_stores_nothing(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    await _rule(instance, ids, "block")
    status, refused = await send(instance, conversation, sender=ids["tutor"], body=PHONE)
    assert (status, refused["error"]["code"]) == (422, "contact_info")
    assert refused["error"]["found"] == [
        {"kind": "phone", "text": "07911 123456", "start": 11, "end": 23}
    ]
    assert "phone number" in refused["error"]["message"]
    assert await _history(instance, conversation, ids["student"]) == []
    status, sent = await send(instance, conversation, sender=ids["tutor"], body="Room 2.14 at 3pm")
    assert status == 201 and "contact_info" not in sent
    status, refused = await call(
        instance,
        "PATCH",
        f"/api/v1/messages/{sent['id']}",
        {"user": ids["tutor"], "body": "or mail me: alex.kim@gmail.com"},
    )
    assert (status, refused["error"]["code"]) == (422, "contact_info")
    assert await _history(instance, conversation, ids["student"]) == ["Room 2.14 at 3pm"]
    institution = "u-" + ids["student"].removeprefix("student-")
    status, bad = await call(
        instance,
        "PUT",
        f"/api/v1/institutions/{institution}",
        {"name": "Uni", "content_rules": {"contact_info": "sometimes"}},
    )
    assert (status, bad["error"]["field"]) == (400, "content_rules.contact_info")


@SQLITE_ONLY
async def test_warn_delivers_and_tells_the_sender(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    await _rule(instance, ids, "warn")
    status, sent = await send(instance, conversation, sender=ids["tutor"], body=PHONE)
    assert status == 201, sent
    assert sent["contact_info"]["rule"] == "warn"
    assert "phone number" in sent["contact_info"]["message"]
    tutor = await _room(synapse_env, instance, ids["tutor"], conversation["room_id"])
    try:
        assert "personal contact information" in await tutor.answer_to(sent["event_id"])
    finally:
        await tutor.client.close()
    assert PHONE in await _history(instance, conversation, ids["student"])


async def test_flag_delivers_and_reports_to_the_moderators(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    await _rule(instance, ids, "flag")
    status, sent = await send(
        instance, conversation, sender=ids["tutor"], body="add me on insta: @alex.k_93"
    )
    assert status == 201 and sent["contact_info"]["rule"] == "flag"
    status, listed = await call(instance, "GET", "/api/v1/reports?state=open&limit=200")
    assert status == 200
    mine = [r for r in listed["reports"] if r["message_id"] == sent["id"]]
    assert len(mine) == 1
    report = mine[0]
    assert (report["origin"], report["category"], report["reported_user"]) == (
        "rule",
        "contact_info",
        ids["tutor"],
    )
    assert "@alex.k_93" in report["reason"]
    moderator = await moderator_in_admin_room(synapse_env, instance)
    try:
        card = await moderator.card(report["id"])
        assert "from the contact-info rule" in card["content"]["body"]
    finally:
        await moderator.client.close()


@SQLITE_ONLY
async def test_off_lets_everything_through(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    await _rule(instance, ids, "off")
    status, sent = await send(instance, conversation, sender=ids["tutor"], body=PHONE)
    assert status == 201 and "contact_info" not in sent


async def test_block_removes_what_a_matrix_client_sends_and_tells_the_lms(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    await _rule(instance, ids, "block")
    tutor = await _room(synapse_env, instance, ids["tutor"], conversation["room_id"])
    try:
        blocked = await tutor.say("my whatsapp is 07911 123456")
        kept = await tutor.say("See you in Room 2.14")
        edit = await tutor.client.room_send(
            conversation["room_id"],
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "* mail me at alex dot kim at gmail dot com",
                "m.new_content": {
                    "msgtype": "m.text",
                    "body": "mail me at alex dot kim at gmail dot com",
                },
                "m.relates_to": {"rel_type": "m.replace", "event_id": kept},
            },
        )
        assert not isinstance(edit, RoomSendError)
        marker = await tutor.say(f"marker {secrets.token_hex(3)}")

        async def handled() -> bool:
            created = await _events(instance, "message.created", conversation["id"])
            return any(e["event_id"] == marker for e in created)

        await eventually(handled, "the marker reaching the LMS")

        async def removed() -> set[str]:
            return {
                e["event_id"]
                for e in await tutor.events()
                if "redacted_because" in e.get("unsigned", {})
            }

        wanted = {blocked, edit.event_id}
        gone = await eventually(lambda: _both(removed, wanted), "both removed in Matrix")
        assert wanted <= gone
        notices = [
            e["content"]["body"]
            for e in await tutor.events()
            if e["sender"] == tutor.bot
            and "removed and not delivered" in e["content"].get("body", "")
        ]
        assert len(notices) == 2
    finally:
        await tutor.client.close()
    created = await _events(instance, "message.created", conversation["id"])
    assert blocked not in {e["event_id"] for e in created}
    assert kept in {e["event_id"] for e in created}
    blocked_events = await _events(instance, "message.blocked", conversation["id"])
    assert sorted((e["change"], e["kinds"][0]) for e in blocked_events) == [
        ("edit", "email"),
        ("message", "phone"),
    ]
    assert await _events(instance, "message.edited", conversation["id"]) == []
    history = await _history(instance, conversation, ids["student"])
    assert "See you in Room 2.14" in history and not any("07911" in b for b in history)


async def _both(found: Any, wanted: set[str]) -> set[str] | None:
    have = await found()
    return have if wanted <= have else None


async def test_repeated_refusals_post_an_alert_in_the_admin_room(
    synapse_env: SynapseEnv, sqlite_url: str
) -> None:
    config = synapse_env.bridge_config(sqlite_url)
    config = dataclasses.replace(
        config, moderation=dataclasses.replace(config.moderation, alert_refusals_per_hour=3)
    )
    instance = Bridge(config)
    await instance.start()
    try:
        ids, conversation = await start_conversation(instance)
        await _rule(instance, ids, "block")
        for n in range(3):
            status, _ = await send(instance, conversation, sender=ids["tutor"], body=f"{PHONE} {n}")
            assert status == 422
        moderator = await moderator_in_admin_room(synapse_env, instance)
        try:

            async def alert() -> str | None:
                for event in await moderator.events():
                    body = event["content"].get("body", "")
                    if event["sender"] == moderator.bot and f"messages of {ids['tutor']}" in body:
                        return str(body)
                return None

            text = await eventually(alert, "the alert card")
            assert "3 blocked for contact information" in text
        finally:
            await moderator.client.close()
    finally:
        await instance.stop()
