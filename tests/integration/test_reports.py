"""Reports from the LMS against a real Synapse: stored, published, filed on the homeserver as
the reporter, listed with their context and resolved."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.config import ModerationConfig
from bridge.matrix.checks import check_admin_token
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_conversations import matrix_client
from tests.integration.test_messages import send, start_conversation
from tests.integration.test_roster_api import call
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse
MODERATOR = "@admin:test.local"


async def _reports_on_homeserver(
    env: SynapseEnv, listing: str = "event_reports"
) -> list[dict[str, Any]]:
    url = f"{env.synapse.url}/_synapse/admin/v1/{listing}?limit=100&dir=b"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {env.admin_token}"}) as response,
    ):
        assert response.status == 200, await response.text()
        return list((await response.json())[listing])


async def report_in_client(
    env: SynapseEnv, instance: Bridge, reporter: str, room_id: str, event_id: str, reason: str
) -> None:
    """Element's "Report content", as `reporter`: the client's own report endpoint."""
    client = await matrix_client(env, instance, reporter)
    url = f"{env.synapse.url}/_matrix/client/v3/rooms/{room_id}/report/{event_id}"
    headers = {"Authorization": f"Bearer {client.access_token}"}
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"reason": reason}, headers=headers) as response,
        ):
            assert response.status == 200, await response.text()
    finally:
        await client.close()


async def payloads(instance: Bridge, kind: str) -> list[dict[str, Any]]:
    """The payloads of the events of one type in the feed."""
    status, body = await call(instance, "GET", "/api/v1/events?after=0&limit=1000")
    assert status == 200
    return [e["data"] for e in body["events"] if e["type"] == kind]


async def test_a_report_from_the_lms_is_stored_published_and_filed_on_the_homeserver(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    for text in ("Hello", "When is the exam?", "Friday"):
        status, _ = await send(instance, conversation, sender=ids["student"], body=text)
        assert status == 201
    status, message = await send(instance, conversation, sender=ids["tutor"], body="Call me")
    assert status == 201, message
    path = f"/api/v1/messages/{message['id']}/reports"
    body = {"reporter": ids["student"], "reason": "Asks for my number", "category": "contact_info"}

    status, report = await call(instance, "POST", path, body)
    assert status == 201, report
    assert (report["state"], report["origin"], report["reported_user"]) == (
        "open",
        "lms",
        ids["tutor"],
    )
    status, again = await call(instance, "POST", path, body)
    assert (status, again["id"]) == (200, report["id"])  # one open report per reporter

    created = [
        e for e in await payloads(instance, "report.created") if e["report"]["id"] == report["id"]
    ]
    assert len(created) == 1
    assert created[0]["message"]["body"] == "Call me"
    assert created[0]["reporter"]["display_name"] == "Sam Student"
    assert created[0]["reported"]["role"] == "tutor"

    # The homeserver's own list has it, made by the reporter's account, about that event.
    reporter_mxid = instance.ids.user_id(ids["student"])

    async def on_homeserver() -> list[dict[str, Any]]:
        listed = await _reports_on_homeserver(synapse_env)
        return [r for r in listed if r["event_id"] == message["event_id"]]

    found = await eventually(on_homeserver, "the report on the homeserver")
    assert len(found) == 1
    assert found[0]["user_id"] == reporter_mxid
    assert found[0]["room_id"] == conversation["room_id"]
    assert "Asks for my number" in found[0]["reason"]

    status, detail = await call(instance, "GET", f"/api/v1/reports/{report['id']}")
    assert status == 200
    assert [m["body"] for m in detail["context"]] == ["Hello", "When is the exam?", "Friday"]
    assert detail["message"]["id"] == message["id"]
    assert detail["filed_on_homeserver"] is True

    status, listed = await call(instance, "GET", "/api/v1/reports?state=open&limit=200")
    assert status == 200 and report["id"] in [r["id"] for r in listed["reports"]]

    resolve = {"moderator": MODERATOR, "action": "dismiss", "note": "Office phone, fine"}
    status, resolved = await call(
        instance, "POST", f"/api/v1/reports/{report['id']}/resolve", resolve
    )
    assert status == 200, resolved
    assert resolved["resolution"]["action"] == "dismiss"
    status, error = await call(instance, "POST", f"/api/v1/reports/{report['id']}/resolve", resolve)
    assert (status, error["error"]["code"]) == (409, "already_resolved")
    outcome = [
        e for e in await payloads(instance, "report.resolved") if e["report"]["id"] == report["id"]
    ]
    assert len(outcome) == 1
    assert outcome[0]["report"]["resolution"]["note"] == "Office phone, fine"
    assert outcome[0]["report"]["reporter"] == ids["student"]  # the LMS can tell them
    # Once resolved, the same person may report the message again.
    status, second = await call(instance, "POST", path, body)
    assert status == 201 and second["id"] != report["id"]


async def test_bad_reports_are_refused_and_nothing_is_stored(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, message = await send(instance, conversation, sender=ids["tutor"], body="Hi")
    assert status == 201
    path = f"/api/v1/messages/{message['id']}/reports"
    cases = [
        (path, {"reporter": ids["other"], "reason": "x"}, 403, "not_participant"),
        (path, {"reporter": ids["tutor"], "reason": "x"}, 422, "own_message"),
        (
            path,
            {"reporter": ids["student"], "reason": "x", "category": "rude"},
            400,
            "invalid_field",
        ),
        (path, {"reporter": ids["student"], "reason": "   "}, 400, "invalid_field"),
        (path, {"reporter": ids["student"], "reason": "x" * 1001}, 400, "invalid_field"),
        (path, {"reporter": ids["student"]}, 400, "invalid_field"),
        (
            "/api/v1/messages/nope/reports",
            {"reporter": ids["student"], "reason": "x"},
            404,
            "not_found",
        ),
        ("/api/v1/reports/nope/resolve", {"moderator": "m", "action": "dismiss"}, 404, "not_found"),
    ]
    for where, body, expected, code in cases:
        status, error = await call(instance, "POST", where, body)
        assert (status, error["error"]["code"]) == (expected, code), (body, error)
    status, error = await call(instance, "GET", "/api/v1/reports/nope")
    assert status == 404
    status, listed = await call(instance, "GET", "/api/v1/reports?limit=200")
    assert message["id"] not in [r["message_id"] for r in listed["reports"]]
    status, error = await call(instance, "GET", "/api/v1/reports?state=closed")
    assert (status, error["error"]["code"]) == (400, "invalid_parameter")


async def _until_dismissed(env: SynapseEnv, listing: str, key: str, value: str) -> None:
    """Wait until the homeserver's list has no report whose `key` is `value`."""

    async def dismissed() -> bool:
        listed = await _reports_on_homeserver(env, listing)
        return not [r for r in listed if r[key] == value]

    await eventually(dismissed, "the homeserver's copy dismissed")


async def test_a_report_made_in_a_matrix_client_reaches_the_lms_once_and_is_dismissed_when_resolved(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, message = await send(instance, conversation, sender=ids["tutor"], body="Text me")
    assert status == 201
    await report_in_client(
        synapse_env,
        instance,
        ids["student"],
        conversation["room_id"],
        message["event_id"],
        "Wants my number",
    )

    async def created() -> list[dict[str, Any]]:
        return [
            e
            for e in await payloads(instance, "report.created")
            if e["report"]["message_id"] == message["id"]
        ]

    [event] = await eventually(created, "report.created")
    report = event["report"]
    assert (report["origin"], report["reporter"], report["reported_user"]) == (
        "matrix",
        ids["student"],
        ids["tutor"],
    )
    assert report["reason"] == "Wants my number"
    assert event["message"]["body"] == "Text me"

    # Read again from the start (as after a crash before the position was stored): nothing
    # is taken twice.
    assert instance.report_sync is not None
    await instance.report_store.set_homeserver_cursor("event", 0)
    assert await instance.report_sync.sync() == 0
    assert len(await created()) == 1

    resolve = {"moderator": MODERATOR, "action": "resolve", "note": "Talked to the tutor"}
    status, _ = await call(instance, "POST", f"/api/v1/reports/{report['id']}/resolve", resolve)
    assert status == 200

    await _until_dismissed(synapse_env, "event_reports", "event_id", message["event_id"])


async def test_the_lms_report_filed_on_the_homeserver_is_the_same_report_there(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, message = await send(instance, conversation, sender=ids["tutor"], body="Spam spam")
    assert status == 201
    path = f"/api/v1/messages/{message['id']}/reports"
    status, report = await call(
        instance, "POST", path, {"reporter": ids["student"], "reason": "Spam", "category": "spam"}
    )
    assert status == 201

    async def linked() -> bool:
        record = await instance.report_store.get(report["id"])
        return record is not None and record.homeserver_report_id is not None

    await eventually(linked, "the homeserver's copy linked")
    mine = [
        e
        for e in await payloads(instance, "report.created")
        if e["report"]["message_id"] == message["id"]
    ]
    assert len(mine) == 1  # not taken a second time as a Matrix report
    status, _ = await call(
        instance,
        "POST",
        f"/api/v1/reports/{report['id']}/resolve",
        {"moderator": MODERATOR, "action": "dismiss"},
    )
    assert status == 200

    await _until_dismissed(synapse_env, "event_reports", "event_id", message["event_id"])


async def test_the_start_up_checks_say_when_the_admin_token_is_not_an_admins(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    user_id, password = synapse_env.new_user()
    token = await asyncio.to_thread(synapse_env.synapse.login, user_id.split(":")[0][1:], password)
    plain = dataclasses.replace(
        instance.config, moderation=ModerationConfig(homeserver_admin_token=token)
    )
    refused = await check_admin_token(instance.client, plain)
    assert not refused.ok
    assert "moderation.homeserver_admin_token is not the access token" in refused.message
    assert (await check_admin_token(instance.client, instance.config)).ok


async def test_a_person_reported_in_a_matrix_client_is_a_report_too(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, _conversation = await start_conversation(instance)
    tutor = instance.ids.user_id(ids["tutor"])
    client = await matrix_client(synapse_env, instance, ids["student"])
    try:
        url = f"{synapse_env.synapse.url}/_matrix/client/v3/users/{tutor}/report"
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url,
                json={"reason": "Keeps messaging at night"},
                headers={"Authorization": f"Bearer {client.access_token}"},
            ) as response,
        ):
            assert response.status == 200, await response.text()
    finally:
        await client.close()

    async def created() -> list[dict[str, Any]]:
        return [
            e
            for e in await payloads(instance, "report.created")
            if e["report"]["reported_user"] == ids["tutor"] and e["report"]["message_id"] is None
        ]

    [event] = await eventually(created, "report.created")
    report = event["report"]
    assert (report["origin"], report["reporter"], report["reason"]) == (
        "matrix",
        ids["student"],
        "Keeps messaging at night",
    )
    assert event["reported"]["display_name"] == "Alex Kim"
    await instance.report_store.set_homeserver_cursor("user", 0)
    assert instance.report_sync is not None
    assert await instance.report_sync.sync() == 0  # never taken twice
    resolve = {"moderator": MODERATOR, "action": "resolve", "note": "Asked them to stop"}
    status, _ = await call(instance, "POST", f"/api/v1/reports/{report['id']}/resolve", resolve)
    assert status == 200

    await _until_dismissed(synapse_env, "user_reports", "target_user_id", tutor)
