"""The appservice endpoint of a running bridge, wired to a real Synapse."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.services.inbound import EventDispatcher
from tests.conftest import Recorder, SynapseEnv
from tests.support.contract import check_response
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


def _url(bridge: Bridge, path: str) -> str:
    return f"http://127.0.0.1:{bridge.config.appservice.listen_port}{path}"


async def _put(
    bridge: Bridge, txn_id: str, body: Any, token: str | None = "right"
) -> tuple[int, Any]:
    headers = {}
    if token is not None:
        value = bridge.config.appservice.hs_token if token == "right" else token
        headers["Authorization"] = f"Bearer {value}"
    data = body if isinstance(body, str | bytes) else None
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            _url(bridge, f"/_matrix/app/v1/transactions/{txn_id}"),
            json=None if data is not None else body,
            data=data,
            headers=headers,
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


def _message(event_id: str, room: str = "!room:test.local", body: str = "hi") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "room_id": room,
        "type": "m.room.message",
        "sender": "@someone:test.local",
        "origin_server_ts": 1,
        "content": {"msgtype": "m.text", "body": body},
    }


async def test_transaction_auth(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    body = {"events": []}
    assert await _put(instance, "a1", body, token=None) == (
        401,
        {"errcode": "M_UNAUTHORIZED", "error": "Missing homeserver token"},
    )
    status, error = await _put(instance, "a2", body, token="not-the-hs-token")
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    # The as_token is a different secret: it must not open the homeserver's door.
    status, _ = await _put(instance, "a3", body, token=instance.config.appservice.as_token)
    assert status == 403
    assert await _put(instance, "a4", body) == (200, {})


async def test_other_appservice_routes_need_the_token_too(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    async with aiohttp.ClientSession() as session:
        for method, path in (
            ("GET", "/_matrix/app/v1/users/@_lms_x:test.local"),
            ("GET", "/_matrix/app/v1/rooms/%23_lms_x:test.local"),
            ("POST", "/_matrix/app/v1/ping"),
        ):
            async with session.request(method, _url(instance, path)) as response:
                assert response.status == 401, path
            async with session.request(
                method, _url(instance, path), headers={"Authorization": "Bearer nope"}
            ) as response:
                assert response.status == 403, path


async def test_resends_and_repeated_events_are_processed_exactly_once(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, recorder = bridge
    events = [_message("$once-a"), _message("$once-b")]
    assert await _put(instance, "t1", {"events": events}) == (200, {})
    assert await _put(instance, "t1", {"events": events}) == (200, {})  # resend
    assert await _put(instance, "t2", {"events": events}) == (200, {})  # new txn id, same events
    await recorder.wait_for(lambda r: {"$once-a", "$once-b"} <= set(r.ids()))
    await asyncio.sleep(0.3)  # give any duplicate the chance to show up
    assert [i for i in recorder.ids() if i in ("$once-a", "$once-b")] == ["$once-a", "$once-b"]


async def test_the_echo_of_the_bridges_own_message_is_stored_as_handled(
    bridge: tuple[Bridge, Recorder],
) -> None:
    # A message the homeserver answered one of the bridge's sends with needs no processing:
    # it is stored (an event id is kept once) as processed, and no handler sees it.
    instance, recorder = bridge
    instance.client.sent("$own-echo")
    own = {**_message("$own-echo"), "sender": "@_lms_s1:test.local"}
    reaction = {**own, "event_id": "$own-reaction", "type": "m.reaction"}  # only messages
    assert await _put(instance, "e1", {"events": [own, reaction]}) == (200, {})
    assert await _put(instance, "e2", {"events": [own, _message("$after-echo")]}) == (200, {})
    await recorder.wait_for(lambda r: "$after-echo" in r.ids())
    assert "$own-echo" not in recorder.ids()
    assert "$own-reaction" in recorder.ids()

    async def all_processed() -> bool:
        return (await instance.inbox.counts())["pending"] == 0

    await eventually(all_processed, "every stored event processed")


async def test_events_keep_their_order_within_a_room(bridge: tuple[Bridge, Recorder]) -> None:
    instance, recorder = bridge
    rooms = [f"!order{r}:test.local" for r in range(4)]
    sent: dict[str, list[str]] = {room: [] for room in rooms}
    for txn in range(5):
        events = []
        for n in range(20):
            room = rooms[(txn + n) % 4]
            event_id = f"$order-{txn}-{n}"
            sent[room].append(event_id)
            events.append(_message(event_id, room))
        assert (await _put(instance, f"order{txn}", {"events": events}))[0] == 200
    await recorder.wait_for(lambda r: sum(1 for e in r.events if e.room_id in rooms) == 100)
    for room in rooms:
        assert [e.event_id for e in recorder.events if e.room_id == room] == sent[room]


@pytest.mark.parametrize(
    ("body", "status", "errcode"),
    [
        ("{not json", 400, "M_NOT_JSON"),
        ("[" * 100_000 + "]" * 100_000, 400, "M_NOT_JSON"),
        ("[1, 2]", 400, "M_BAD_JSON"),
        ('{"events": {"a": 1}}', 400, "M_BAD_JSON"),
        ('{"events": [], "ephemeral": 7}', 400, "M_BAD_JSON"),
    ],
)
async def test_bad_bodies_are_refused(
    bridge: tuple[Bridge, Recorder], body: str, status: int, errcode: str
) -> None:
    instance, _ = bridge
    got_status, error = await _put(instance, "bad", body)
    assert (got_status, error["errcode"]) == (status, errcode)


async def test_strange_events_do_not_stop_the_bridge(bridge: tuple[Bridge, Recorder]) -> None:
    instance, recorder = bridge
    strange = [
        "a string",
        {"type": "m.room.message"},
        {"event_id": "$no-room", "type": "x"},
        {
            "event_id": "$weird",
            "room_id": "!r:test.local",
            "type": "m.room.message",
            "content": "not an object",
            "sender": 42,
        },
        {
            "event_id": "$huge",
            "room_id": "!r:test.local",
            "type": "x" * 200,
            "content": {"body": "é" * 50_000},
        },
        _message("$fine-after-strange"),
    ]
    assert await _put(instance, "strange", {"events": strange, "ephemeral": [1, {"x": 1}]}) == (
        200,
        {},
    )
    await recorder.wait_for(lambda r: {"$fine-after-strange", "$weird", "$huge"} <= set(r.ids()))
    async with aiohttp.ClientSession() as session, session.get(_url(instance, "/health")) as r:
        assert r.status == 200


async def test_a_handler_crash_is_retried_not_fatal(bridge: tuple[Bridge, Recorder]) -> None:
    instance, recorder = bridge
    calls = {"n": 0}

    async def flaky(event: Any) -> None:
        if event.event_id == "$flaky":
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("first attempt fails")

    instance.router.observe("m.room.message", flaky)
    instance.processor._base_delay = 0.1  # keep the retry quick for the test
    await _put(instance, "flaky", {"events": [_message("$flaky")]})
    await recorder.wait_for(lambda r: "$flaky" in r.ids())
    assert calls["n"] == 2


async def test_nothing_is_acknowledged_that_was_not_stored(
    bridge: tuple[Bridge, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, recorder = bridge

    async def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(instance.inbox, "store_transaction", disk_full)
    status, error = await _put(instance, "unstored", {"events": [_message("$unstored")]})
    assert (status, error["errcode"]) == (500, "M_UNKNOWN")  # the homeserver will resend
    monkeypatch.undo()
    assert await _put(instance, "unstored", {"events": [_message("$unstored")]}) == (200, {})
    await recorder.wait_for(lambda r: "$unstored" in r.ids())


async def test_ready_is_503_when_the_schema_is_not_this_version(
    bridge: tuple[Bridge, Recorder],
) -> None:
    from sqlalchemy import text

    instance, _ = bridge
    await instance.db.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    async with aiohttp.ClientSession() as session, session.get(_url(instance, "/ready")) as r:
        assert r.status == 503
        body = await r.json()
        check_response("GET", "/ready", r.status, r.content_type, body)
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] is False


async def test_unknown_routes_answer_m_unrecognized(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    async with aiohttp.ClientSession() as session:
        async with session.get(_url(instance, "/_matrix/app/v1/thirdparty/protocol/x")) as r:
            assert (r.status, (await r.json())["errcode"]) == (404, "M_UNRECOGNIZED")
        async with session.delete(_url(instance, "/_matrix/app/v1/ping")) as r:
            assert (r.status, (await r.json())["errcode"]) == (405, "M_UNRECOGNIZED")
        async with session.get(_url(instance, "/nothing-here")) as r:
            assert r.status == 404
            body = await r.json()
            check_response("GET", "/nothing-here", r.status, r.content_type, body)
            assert body["error"]["code"] == "not_found"


async def test_health_and_ready(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    async with aiohttp.ClientSession() as session:
        async with session.get(_url(instance, "/health")) as r:
            assert (r.status, await r.json()) == (200, {"status": "ok"})
            check_response("GET", "/health", r.status, r.content_type, await r.json())
        async with session.get(_url(instance, "/ready")) as r:
            assert r.status == 200
            check_response("GET", "/ready", r.status, r.content_type, await r.json())
            assert (await r.json())["checks"] == {
                "started": True,
                "database": True,
                "homeserver": True,
            }


async def test_processing_survives_a_restart(synapse_env: SynapseEnv, sqlite_url: str) -> None:
    config = synapse_env.bridge_config(sqlite_url)
    first = Bridge(config)
    never = asyncio.Event()

    async def stuck(event: Any) -> None:
        await never.wait()

    first.router.observe(None, stuck)
    await first.start()
    await _put(
        first,
        "r1",
        {
            "events": [
                _message("$r1", "!restart:test.local"),
                _message("$r2", "!restart:test.local"),
            ]
        },
    )
    await asyncio.sleep(0.2)
    await first.stop(grace=0.2)  # processing is cut short, as by a crash

    second = Bridge(config)
    recorder = Recorder()
    second.router.observe(None, recorder)
    await second.start()
    try:
        # (The homeserver may push events of its own meanwhile, such as the admin room's.)
        await recorder.wait_for(
            lambda r: (
                [e.event_id for e in r.events if e.room_id == "!restart:test.local"]
                == ["$r1", "$r2"]
            )
        )
        async with asyncio.timeout(5):
            while (await second.inbox.counts())["pending"]:
                await asyncio.sleep(0.05)
        assert (await second.inbox.counts())["failed"] == 0
    finally:
        await second.stop()


def test_dispatcher_calls_specific_then_general_handlers() -> None:
    dispatcher = EventDispatcher()
    calls: list[str] = []

    async def specific(event: Any) -> None:
        calls.append("specific")

    async def general(event: Any) -> None:
        calls.append("general")

    dispatcher.on(None, general)
    dispatcher.on("m.room.message", specific)
    from bridge.store.inbox import StoredEvent

    event = StoredEvent(1, "$e", "!r", "timeline", "m.room.message", {}, 0)
    asyncio.run(dispatcher.dispatch(event))
    assert calls == ["specific", "general"]


async def test_transaction_ids_with_gaps_and_restarts_are_all_accepted(
    bridge: tuple[Bridge, Recorder],
) -> None:
    """Synapse numbers the transactions of every appservice from one sequence, so the ids one
    bridge sees jump; after a restart of a SQLite Synapse they start again at 1."""
    instance, recorder = bridge
    for txn_id in ("41", "43", "57", "1", "²"):
        assert await _put(instance, txn_id, {"events": [_message(f"$n{txn_id}")]}) == (200, {})
    await recorder.wait_for(lambda r: {"$n41", "$n43", "$n57", "$n1", "$n²"} <= set(r.ids()))
