"""The moderators' admin room against a real Synapse: a card for every report, edited as the
report moves on; each command and reaction shortcut doing what it says, in Matrix and for the
LMS; nobody but a moderator acting; restarts neither losing nor repeating a card."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, RoomSendError

from bridge.app import Bridge
from bridge.matrix.checks import check_admin_room
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_conversations import matrix_client
from tests.integration.test_messages import send, start_conversation
from tests.integration.test_reports import payloads, report_in_client
from tests.integration.test_roster_api import call
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse
# Room logic rather than storage: one database is proof enough for these (the tests that store
# something new run on both).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Person:
    """Someone's own Matrix client in one room: what they send, and what they see there."""

    def __init__(self, env: SynapseEnv, client: AsyncClient, room_id: str, bot: str) -> None:
        self.env = env
        self.client = client
        self.room_id = room_id
        self.bot = bot

    async def events(self) -> list[dict[str, Any]]:
        """The room's latest events, newest first."""
        url = (
            f"{self.env.synapse.url}/_matrix/client/v3/rooms/{self.room_id}/messages"
            "?dir=b&limit=300"
        )
        headers = {"Authorization": f"Bearer {self.client.access_token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers) as response,
        ):
            assert response.status == 200, await response.text()
            return list((await response.json())["chunk"])

    async def say(self, text: str) -> str:
        response = await self.client.room_send(
            self.room_id, "m.room.message", {"msgtype": "m.text", "body": text}
        )
        assert not isinstance(response, RoomSendError), response
        return str(response.event_id)

    async def react(self, event_id: str, key: str) -> str:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        response = await self.client.room_send(self.room_id, "m.reaction", content)
        assert not isinstance(response, RoomSendError), response
        return str(response.event_id)

    async def answer_to(self, event_id: str) -> str:
        """The body of the bot's reply to an event."""

        async def found() -> str | None:
            for event in await self.events():
                relates = event.get("content", {}).get("m.relates_to", {})
                reply = relates.get("m.in_reply_to", {}).get("event_id")
                if event["sender"] == self.bot and reply == event_id:
                    return str(event["content"]["body"])
            return None

        return str(await eventually(found, f"the answer to {event_id}"))

    async def command(self, text: str) -> str:
        return await self.answer_to(await self.say(text))

    async def card(self, report_id: str) -> dict[str, Any]:
        """The card of a report (the first one posted for it)."""

        async def found() -> dict[str, Any] | None:
            cards = [
                e
                for e in await self.events()
                if e["sender"] == self.bot
                and e["type"] == "m.room.message"
                and e["content"].get("body", "").startswith("🚩 Report " + report_id[:8])
                and "m.relates_to" not in e["content"]
            ]
            return cards[-1] if cards else None

        return dict(await eventually(found, f"the card of report {report_id}"))

    async def edits_of(self, event_id: str) -> list[dict[str, Any]]:
        return [
            e
            for e in await self.events()
            if e["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"
            and e["content"]["m.relates_to"].get("event_id") == event_id
        ]


async def moderator_in_admin_room(env: SynapseEnv, instance: Bridge) -> Person:
    """The homeserver's admin, a configured moderator, joined to the admin room (close its
    client when done)."""
    room_id = await instance.admin_room.room_id()
    assert room_id is not None
    client = AsyncClient(env.synapse.url, env.moderator)
    await client.login("admin-pw")
    await client.join(room_id)
    return Person(env, client, room_id, instance.config.bot_user_id)


@pytest.fixture
async def moderator(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> AsyncIterator[Person]:
    """The moderator in the admin room."""
    person = await moderator_in_admin_room(synapse_env, bridge[0])
    try:
        yield person
    finally:
        await person.client.close()


async def _report(
    instance: Bridge, body: str = "Nobody cares about your stupid questions"
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A conversation, a message from the tutor, and the student's report of it."""
    ids, conversation = await start_conversation(instance)
    status, message = await send(instance, conversation, sender=ids["tutor"], body=body)
    assert status == 201, message
    status, report = await call(
        instance,
        "POST",
        f"/api/v1/messages/{message['id']}/reports",
        {"reporter": ids["student"], "reason": "Rude to me", "category": "harassment"},
    )
    assert status == 201, report
    return ids, conversation, message, report


async def _report_state(instance: Bridge, report_id: str) -> dict[str, Any]:
    status, detail = await call(instance, "GET", f"/api/v1/reports/{report_id}")
    assert status == 200
    return dict(detail["report"])


async def test_a_report_gets_a_card_that_is_edited_when_a_moderator_dismisses_it(
    bridge: tuple[Bridge, Recorder], moderator: Person
) -> None:
    instance, _ = bridge
    _ids, conversation, _message, report = await _report(instance, "<b>Stupid</b> question, again")
    card = await moderator.card(report["id"])
    body = card["content"]["body"]
    assert "Sam Student" in body and "Alex Kim" in body and "harassment" in body
    assert "Rude to me" in body and "question, again" in body
    assert conversation["id"] in body and f"!dismiss {report['id'][:8]}" in body
    assert "<b>Stupid</b>" not in card["content"]["formatted_body"]  # sanitised: escaped

    answer = await moderator.command(f"!dismiss {report['id'][:8]} blunt, not abusive")
    assert answer.startswith("Done"), answer
    resolution = (await _report_state(instance, report["id"]))["resolution"]
    assert (resolution["action"], resolution["moderator"], resolution["note"]) == (
        "dismiss",
        moderator.client.user_id,
        "blunt, not abusive",
    )

    async def edited() -> list[dict[str, Any]]:
        return await moderator.edits_of(card["event_id"])

    edit = (await eventually(edited, "the card edited"))[0]
    assert edit["content"]["m.new_content"]["body"].startswith("✔️ Report")
    assert "resolved: dismiss" in edit["content"]["m.new_content"]["body"]
    resolved = [
        e for e in await payloads(instance, "report.resolved") if e["report"]["id"] == report["id"]
    ]
    assert resolved[0]["report"]["resolution"]["moderator"] == moderator.client.user_id


async def test_delete_redacts_the_message_in_matrix_and_tells_the_lms(
    bridge: tuple[Bridge, Recorder], moderator: Person, synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation, message, report = await _report(instance)
    await moderator.card(report["id"])
    answer = await moderator.command(f"!delete {report['id']} abusive")
    assert answer.startswith("Done"), answer

    student = await matrix_client(synapse_env, instance, ids["student"])
    try:
        room = Person(synapse_env, student, conversation["room_id"], instance.config.bot_user_id)

        async def redacted() -> bool:
            for event in await room.events():
                if event["event_id"] == message["event_id"]:
                    return "redacted_because" in event.get("unsigned", {})
            return False

        await eventually(redacted, "the message redacted in Matrix")
    finally:
        await student.close()
    deleted = [
        e for e in await payloads(instance, "message.deleted") if e["message_id"] == message["id"]
    ]
    assert len(deleted) == 1 and deleted[0]["moderator"] == moderator.client.user_id
    status, history = await call(
        instance,
        "GET",
        f"/api/v1/conversations/{conversation['id']}/messages?as={ids['student']}",
    )
    assert status == 200
    assert next(m for m in history["messages"] if m["id"] == message["id"])["deleted"] is True


@SQLITE_ONLY
async def test_warn_posts_a_notice_to_the_sender_in_their_room(
    bridge: tuple[Bridge, Recorder], moderator: Person, synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation, _message, report = await _report(instance)
    answer = await moderator.command(f"!warn {report['id'][:8]} be kind please")
    assert answer.startswith("Done"), answer
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        room = Person(synapse_env, tutor, conversation["room_id"], instance.config.bot_user_id)

        async def warning() -> dict[str, Any] | None:
            for event in await room.events():
                if event["sender"] == room.bot and "warned you" in event["content"].get("body", ""):
                    return event
            return None

        notice = await eventually(warning, "the warning in the conversation room")
    finally:
        await tutor.close()
    assert "be kind please" in notice["content"]["body"]
    assert notice["content"]["m.mentions"]["user_ids"] == [instance.ids.user_id(ids["tutor"])]
    warned = [e for e in await payloads(instance, "user.warned") if e["report_id"] == report["id"]]
    assert len(warned) == 1 and warned[0]["user_id"] == ids["tutor"]


async def test_suspend_stops_the_api_and_the_matrix_client_until_unsuspended(
    bridge: tuple[Bridge, Recorder], moderator: Person, synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation, *_ = await _report(instance)
    tutor_mxid = instance.ids.user_id(ids["tutor"])
    answer = await moderator.command(f"!suspend {tutor_mxid} 2 rude to students")
    assert "suspended until" in answer, answer

    status, refused = await send(instance, conversation, sender=ids["tutor"], body="Hello?")
    assert (status, refused["error"]["code"]) == (403, "suspended")
    assert "rude to students" in refused["error"]["message"]
    status, _ = await send(instance, conversation, sender=ids["student"], body="Still here")
    assert status == 201  # the other person may still write to them
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:

        async def refused_on_homeserver() -> bool:
            response = await tutor.room_send(
                conversation["room_id"], "m.room.message", {"msgtype": "m.text", "body": "x"}
            )
            return (
                isinstance(response, RoomSendError) and response.status_code == "M_USER_SUSPENDED"
            )

        await eventually(refused_on_homeserver, "the homeserver refusing the suspended account")
        suspended = [
            e for e in await payloads(instance, "user.suspended") if e["user_id"] == ids["tutor"]
        ]
        assert len(suspended) == 1 and suspended[0]["until"] is not None

        assert (await moderator.command(f"!unsuspend {ids['tutor']}")).endswith(
            "may message again."
        )
        status, _ = await send(instance, conversation, sender=ids["tutor"], body="Sorry")
        assert status == 201

        async def allowed_again() -> bool:
            response = await tutor.room_send(
                conversation["room_id"], "m.room.message", {"msgtype": "m.text", "body": "ok"}
            )
            return not isinstance(response, RoomSendError)

        await eventually(allowed_again, "the account unsuspended on the homeserver")
    finally:
        await tutor.close()
    lifted = [
        e for e in await payloads(instance, "user.unsuspended") if e["user_id"] == ids["tutor"]
    ]
    assert len(lifted) == 1 and lifted[0]["moderator"] == moderator.client.user_id


@SQLITE_ONLY
async def test_reaction_shortcuts_ask_first_and_act_once_confirmed(
    bridge: tuple[Bridge, Recorder], moderator: Person
) -> None:
    instance, _ = bridge
    _ids, _conversation, message, report = await _report(instance)
    card = await moderator.card(report["id"])
    asked = await _ask_shortcut(moderator, card, "🗑️")
    assert "delete report" in asked["content"]["body"]
    assert (await _report_state(instance, report["id"]))["state"] == "open"  # not yet
    await moderator.react(asked["event_id"], "✅")
    assert (await moderator.answer_to(asked["event_id"])).startswith("Done")
    state = await _report_state(instance, report["id"])
    assert state["resolution"]["action"] == "delete"
    _status, detail = await call(instance, "GET", f"/api/v1/reports/{report['id']}")
    assert detail["message"]["deleted"] is True and message["id"] == detail["message"]["id"]


@SQLITE_ONLY
async def test_someone_who_is_not_a_moderator_changes_nothing(
    bridge: tuple[Bridge, Recorder], moderator: Person, synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    _ids, _conversation, _message, report = await _report(instance)
    card = await moderator.card(report["id"])
    stranger_id, password = synapse_env.new_user()
    await moderator.client.room_invite(moderator.room_id, stranger_id)
    stranger_client = AsyncClient(synapse_env.synapse.url, stranger_id)
    await stranger_client.login(password)
    try:
        await stranger_client.join(moderator.room_id)
        stranger = Person(synapse_env, stranger_client, moderator.room_id, moderator.bot)
        answer = await stranger.command(f"!dismiss {report['id'][:8]}")
        assert answer.startswith("You are not a moderator")
        await stranger.react(card["event_id"], "✅")  # answered in reply to the card
        assert (await stranger.answer_to(card["event_id"])).startswith("You are not a moderator")
    finally:
        await stranger_client.close()
    assert (await _report_state(instance, report["id"]))["state"] == "open"


@SQLITE_ONLY
async def test_malformed_commands_are_explained(
    bridge: tuple[Bridge, Recorder], moderator: Person
) -> None:
    instance, _ = bridge
    ids, _conversation, _message, report = await _report(instance)
    assert "!reports" in await moderator.command("!help")
    assert "Remove the reported message" in await moderator.command("!delete --help")
    assert "the following arguments are required: user" in await moderator.command("!suspend")
    assert "There is no command !frobnicate" in await moderator.command("!frobnicate 1")
    assert "No report 'ffffffff'" in await moderator.command("!dismiss ffffffff")
    assert "No closing quotation" in await moderator.command('!resolve "unclosed')
    assert "is not anyone" in await moderator.command("!whois @nobody:test.local")
    assert "expected 1 to 3650" in await moderator.command(f"!suspend {ids['tutor']} 99999 x")
    listed = await moderator.command("!reports")
    assert report["id"][:8] in listed
    whois = await moderator.command(f"!whois {ids['tutor']}")
    assert (
        "Alex Kim" in whois
        and "teaches Algebra (A)" in whois
        and "Reports against them: 1" in whois
    )
    can = await moderator.command(f"!can {ids['student']} {ids['tutor']}")
    assert "may start a conversation with" in can and "Algebra" in can
    cannot = await moderator.command(f"!can {ids['student']} {ids['admin']}")
    assert "may not start" in cannot
    assert (await _report_state(instance, report["id"]))["state"] == "open"


@SQLITE_ONLY
async def test_a_report_made_in_a_matrix_client_gets_a_card_too(
    bridge: tuple[Bridge, Recorder], moderator: Person, synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    status, message = await send(instance, conversation, sender=ids["tutor"], body="Add me")
    assert status == 201
    await report_in_client(
        synapse_env,
        instance,
        ids["student"],
        conversation["room_id"],
        message["event_id"],
        "creepy",
    )

    async def created() -> list[dict[str, Any]]:
        return [
            e
            for e in await payloads(instance, "report.created")
            if e["message"] and e["message"]["id"] == message["id"]
        ]

    report = (await eventually(created, "report.created"))[0]["report"]
    card = await moderator.card(report["id"])
    assert "from a Matrix client" in card["content"]["body"] and "creepy" in card["content"]["body"]


async def test_after_a_restart_no_card_is_lost_or_posted_twice(
    synapse_env: SynapseEnv, database_url: str
) -> None:
    config = synapse_env.bridge_config(database_url)
    first = Bridge(config)
    await first.start()
    try:
        _ids, _conversation, _message, report = await _report(first)
        moderator = await moderator_in_admin_room(synapse_env, first)
        await moderator.card(report["id"])
    finally:
        await first.stop()
    second = Bridge(config)
    await second.start()
    try:
        # A marker: a report made after the restart gets its card, so the worker has run.
        _ids, _conversation, _message, later = await _report(second)
        await moderator.card(later["id"])
        cards = [
            e
            for e in await moderator.events()
            if e["sender"] == moderator.bot
            and e["content"].get("body", "").startswith("🚩 Report " + report["id"][:8])
        ]
        assert len(cards) == 1
    finally:
        await moderator.client.close()
        await second.stop()


async def test_the_api_acts_like_the_admin_room_and_checks_the_moderator(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    ids, conversation, _message, report = await _report(instance)
    path = f"/api/v1/reports/{report['id']}/resolve"
    status, error = await call(
        instance, "POST", path, {"moderator": ids["student"], "action": "dismiss"}
    )
    assert (status, error["error"]["code"]) == (403, "not_a_moderator")
    status, error = await call(
        instance, "POST", path, {"moderator": ids["admin"], "action": "dismiss", "days": 3}
    )
    assert (status, error["error"]["code"]) == (400, "invalid_field")
    assert (await _report_state(instance, report["id"]))["state"] == "open"  # nothing changed
    status, resolved = await call(
        instance,
        "POST",
        path,
        {"moderator": ids["admin"], "action": "suspend", "days": 1, "note": "rude"},
    )
    assert status == 200, resolved
    assert resolved["resolution"]["action"] == "suspend"
    status, refused = await send(instance, conversation, sender=ids["tutor"], body="hi")
    assert (status, refused["error"]["code"]) == (403, "suspended")
    status, refused = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["admin"], "recipient": ids["tutor"]},
    )
    assert status == 403 and refused["error"]["reason_code"] == "suspended"
    suspended = [
        e for e in await payloads(instance, "user.suspended") if e["user_id"] == ids["tutor"]
    ]
    assert suspended and suspended[0]["report_id"] == report["id"]


@SQLITE_ONLY
async def test_the_wiring_check_says_plainly_what_is_wrong_with_the_admin_room(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge

    def with_moderation(**changes: Any) -> Any:
        moderation = dataclasses.replace(instance.config.moderation, **changes)
        return dataclasses.replace(instance.config, moderation=moderation)

    assert (await check_admin_room(instance.client, instance.config)).ok
    missing = await check_admin_room(
        instance.client, with_moderation(moderators=("@nobody-here:test.local",))
    )
    assert not missing.ok and "@nobody-here:test.local has no account" in missing.message
    # A room the bot was never invited to.
    stranger_id, password = synapse_env.new_user()
    client = AsyncClient(synapse_env.synapse.url, stranger_id)
    await client.login(password)
    try:
        created = await client.room_create(name="Somewhere else")
        closed = await check_admin_room(
            instance.client, with_moderation(admin_room=created.room_id)
        )
    finally:
        await client.close()
    assert not closed.ok and f"invite {instance.config.bot_user_id} there" in closed.message
    foreign = await check_admin_room(
        instance.client, with_moderation(admin_room="#mods:elsewhere.org")
    )
    assert not foreign.ok and "can't be looked up" in foreign.message
    fresh = await check_admin_room(
        instance.client, with_moderation(admin_room="#_lms_mods-to-be:test.local")
    )
    assert fresh.ok and "made at start-up" in fresh.message


async def _ask_shortcut(moderator: Person, card: dict[str, Any], key: str) -> dict[str, Any]:
    """React `key` on a card; the bot's question asking to confirm it."""
    await moderator.react(card["event_id"], key)

    async def question() -> dict[str, Any] | None:
        for event in await moderator.events():
            relates = event["content"].get("m.relates_to", {})
            if (
                event["sender"] == moderator.bot
                and relates.get("m.in_reply_to", {}).get("event_id") == card["event_id"]
                and "React ✅" in event["content"]["body"]
            ):
                return event
        return None

    return dict(await eventually(question, "the bot's question"))


async def _confirm_shortcut(moderator: Person, card: dict[str, Any], key: str) -> str:
    """React `key` on a card, confirm the bot's question with ✅; the bot's answer."""
    asked = await _ask_shortcut(moderator, card, key)
    await moderator.react(asked["event_id"], "✅")
    return await moderator.answer_to(asked["event_id"])


@SQLITE_ONLY
async def test_show_resolve_and_the_other_shortcuts(
    bridge: tuple[Bridge, Recorder], moderator: Person
) -> None:
    instance, _ = bridge
    first, second, third = [(await _report(instance))[3] for _ in range(3)]
    shown = await moderator.command(f"!show {first['id'][:8]}")
    assert shown.startswith(f"🚩 Report {first['id'][:8]} · open")
    answer = await moderator.command(f"!resolve {first['id'][:8]} talked to them by phone")
    assert answer.startswith("Done"), answer
    resolution = (await _report_state(instance, first["id"]))["resolution"]
    assert (resolution["action"], resolution["note"]) == ("resolve", "talked to them by phone")

    card = await moderator.card(second["id"])
    assert (await _confirm_shortcut(moderator, card, "✅")).startswith("Done")
    assert (await _report_state(instance, second["id"]))["resolution"]["action"] == "dismiss"

    card = await moderator.card(third["id"])
    assert (await _confirm_shortcut(moderator, card, "⚠️")).startswith("Done")
    assert (await _report_state(instance, third["id"]))["resolution"]["action"] == "warn"
    warned = [e for e in await payloads(instance, "user.warned") if e["report_id"] == third["id"]]
    assert len(warned) == 1


@SQLITE_ONLY
async def test_a_report_about_a_room_the_bridge_does_not_carry_gets_a_card_with_what_is_known(
    bridge: tuple[Bridge, Recorder], moderator: Person, synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    writer_id, writer_password = synapse_env.new_user()
    reader_id, reader_password = synapse_env.new_user()
    writer = AsyncClient(synapse_env.synapse.url, writer_id)
    reader = AsyncClient(synapse_env.synapse.url, reader_id)
    await writer.login(writer_password)
    await reader.login(reader_password)
    try:
        room = await writer.room_create(invite=[reader_id])
        await reader.join(room.room_id)
        sent = await writer.room_send(
            room.room_id, "m.room.message", {"msgtype": "m.text", "body": "spam spam"}
        )
        url = (
            f"{synapse_env.synapse.url}/_matrix/client/v3/rooms/{room.room_id}"
            f"/report/{sent.event_id}"
        )
        headers = {"Authorization": f"Bearer {reader.access_token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"reason": "spam"}, headers=headers) as response,
        ):
            assert response.status == 200
    finally:
        await writer.close()
        await reader.close()

    async def taken() -> list[dict[str, Any]]:
        status, listed = await call(instance, "GET", "/api/v1/reports?limit=200")
        assert status == 200
        return [r for r in listed["reports"] if r["event_id"] == sent.event_id]

    report = (await eventually(taken, "the report taken from the homeserver"))[0]
    assert report["message_id"] is None and report["conversation_id"] is None
    card = await moderator.card(report["id"])
    body = card["content"]["body"]
    assert sent.event_id in body and room.room_id in body
    assert "not a conversation the bridge carries" in body
