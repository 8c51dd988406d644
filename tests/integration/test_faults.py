"""Faults the bridge must survive without losing or doubling a message.

The bridge is SIGKILLed in the middle of a stream of messages (both directions) and while it holds
messages it answered "queued"; the homeserver is stopped for 20 s while the LMS keeps sending; the
LMS's webhook refuses for 10 s. Each test ends where a person would look: the Matrix room, the LMS
event feed, the webhook receiver. Each prints the figures it measured (pytest -s shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest
from nio import AsyncClient, RoomSendResponse

from bridge.app import Bridge
from bridge.config import ENV_PREFIX, Config, load_config, write_back
from bridge.domain.ids import MatrixIdMapper
from tests.conftest import SynapseEnv
from tests.integration.test_conversations import matrix_client
from tests.integration.test_messages import feed, start_conversation
from tests.integration.test_webhooks import hooked
from tests.support.contract import check_response

pytestmark = pytest.mark.synapse

MESSAGES = 500
KILL_AFTER_ANSWERS = 200  # LMS → Matrix: SIGKILL once this many sends were answered
KILL_AFTER_TYPED = 200  # Matrix → LMS: SIGKILL once this many messages were typed
RESTART_AFTER_TYPED = 350  # ... and start again once this many were (the rest arrive live)
SYNAPSE_OUTAGE_SECONDS = 20.0
WEBHOOK_FAILING_SECONDS = 10.0
SIGKILL_TYPED = 150  # messages typed in a Matrix client while Synapse is SIGKILLed …
SIGKILL_AFTER = 60  # … after this many


def report(test: str, **figures: object) -> None:
    """Print what a test measured, one line, easy to grep."""
    print(f"\n[figures] {test}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def late_ones(published: list[str], typed: list[str]) -> set[str]:
    """The ids published after some id typed later than them."""
    position = {event_id: n for n, event_id in enumerate(typed)}
    late: set[str] = set()
    furthest = -1
    for event_id in published:
        if position[event_id] < furthest:
            late.add(event_id)
        furthest = max(furthest, position[event_id])
    return late


def rate(moments: list[float]) -> float:
    """Events per second over a list of monotonic timestamps."""
    return round((len(moments) - 1) / (moments[-1] - moments[0]), 1) if len(moments) > 1 else 0.0


@dataclass
class Moments:
    """When things happened (monotonic seconds), noted by tasks running side by side."""

    killed: float = 0.0
    killed_wall: datetime | None = None
    restarted: float = 0.0


# --- the bridge as a separate process --------------------------------------------------------


class BridgeProcess:
    """`lms-bridge run` as a child process, so a test can SIGKILL it and start it again."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.config = load_config(config_path)
        self.url = f"http://127.0.0.1:{self.config.appservice.listen_port}"
        self._process: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Only the config file may configure the child: no stray LMS_BRIDGE_* variables.
        environ = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "bridge", "run", "-c", str(self.config_path)],
                cwd=self.config_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environ,
                start_new_session=True,
            )

    async def start(self, timeout: float = 60.0) -> float:
        """Start the bridge and wait until `/ready` says yes; returns the seconds it took."""
        began = time.monotonic()
        self._process = process = self._spawn()
        code = await self._wait_ready(process, began + timeout)
        if code is not None:
            self._process = None
            raise AssertionError(f"the bridge exited with {code}:\n{self.log_tail()}")
        return time.monotonic() - began

    async def _wait_ready(self, process: subprocess.Popen[bytes], deadline: float) -> int | None:
        """None once the bridge is ready; its exit code when it exits first."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                code = process.poll()
                if code is not None:
                    return code
                if time.monotonic() > deadline:
                    raise AssertionError(f"the bridge was not ready in time:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(f"{self.url}/ready") as response:
                        if response.status == 200:
                            return None
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs; whatever was not committed is gone."""
        process, self._process = self._process, None
        assert process is not None and process.poll() is None, "the bridge was not running"
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        """A graceful stop (SIGTERM), forced after 20 s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the bridge's log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the bridge's SQLite database directly (for figures and settled-state checks)."""
        path = self.config.database.url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def bridge_process(synapse_env: SynapseEnv, tmp_path: Path) -> Iterator[BridgeProcess]:
    """A bridge subprocess with the session's tokens and listen port, on its own SQLite file."""
    config_path = tmp_path / "config.yaml"
    shutil.copyfile(synapse_env.config_path, config_path)
    write_back(
        config_path,
        {
            "database.url": f"sqlite:///{tmp_path / 'bridge.db'}",
            # 250 messages per person in a few seconds is the point of these tests, not abuse.
            "messages.per_user_per_minute": 100_000,
            "logging.level": "INFO",
        },
    )
    process = BridgeProcess(config_path, tmp_path / "bridge.log")
    try:
        yield process
    finally:
        process.stop()


def as_bridge(config: Config) -> Bridge:
    """What the shared helpers read from a Bridge (`config` and `ids`), for a bridge running in
    another process."""
    ids = MatrixIdMapper(config.appservice.account_prefix, config.homeserver.server_name)
    return cast(Bridge, SimpleNamespace(config=config, ids=ids))


# --- the LMS and Matrix sides ----------------------------------------------------------------


class LmsApi:
    """The LMS calling the bridge's REST API over one connection pool."""

    def __init__(self, config: Config, session: aiohttp.ClientSession) -> None:
        self._base = f"http://127.0.0.1:{config.appservice.listen_port}"
        self._headers = {"Authorization": f"Bearer {config.lms.api_token}"}
        self._session = session

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One call; connection failures propagate (the caller decides whether to retry). The
        answer is checked against the OpenAPI document."""
        async with self._session.request(
            method, self._base + path, json=body, headers=self._headers
        ) as response:
            answer = await response.json(content_type=None)
            check_response(method, path, response.status, response.content_type, answer)
            return response.status, answer

    async def send(self, conversation_id: str, **body: str) -> tuple[int, Any]:
        """`POST /api/v1/conversations/{c}/messages`."""
        return await self.request("POST", f"/api/v1/conversations/{conversation_id}/messages", body)

    async def events(self) -> list[dict[str, Any]]:
        """The whole event feed, oldest first, read page by page as an LMS catching up would."""
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            status, page = await self.request("GET", f"/api/v1/events?after={after}&limit=1000")
            assert status == 200, page
            if not page["events"]:
                return found
            found += page["events"]
            after = page["next_after"]


@contextlib.asynccontextmanager
async def lms_api(config: Config) -> AsyncIterator[LmsApi]:
    """An LmsApi with its own session, closed afterwards."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield LmsApi(config, session)


async def room_messages(env: SynapseEnv, client: AsyncClient, room_id: str) -> list[dict[str, Any]]:
    """Every `m.room.message` of a room, oldest first, paged through the client-server API."""
    url = f"{env.synapse.url}/_matrix/client/v3/rooms/{room_id}/messages"
    headers = {"Authorization": f"Bearer {client.access_token}"}
    found: list[dict[str, Any]] = []
    params = {"dir": "f", "limit": "500"}
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            async with session.get(url, params=params) as response:
                assert response.status == 200, await response.text()
                page = await response.json()
            found += [e for e in page["chunk"] if e["type"] == "m.room.message"]
            if not page["chunk"] or "end" not in page:
                return found
            params["from"] = page["end"]


# --- 1. LMS → Matrix through a SIGKILL -------------------------------------------------------


async def test_lms_messages_survive_a_sigkill_of_the_bridge(
    synapse_env: SynapseEnv, bridge_process: BridgeProcess
) -> None:
    """500 LMS sends from six senders in three conversations; the bridge is SIGKILLed after 200
    answers and restarted; the LMS retries what it got no answer for (same client message id).
    Every message then appears in its room exactly once, each sender's in the order sent, and the
    LMS's feed has each once, with no echo taken for a message typed in Matrix."""
    await bridge_process.start()
    handle = as_bridge(bridge_process.config)
    conversations = [await start_conversation(handle) for _ in range(3)]
    # Lane k: conversation k // 2, sender student (even k) or tutor (odd k), messages n ≡ k mod 6.
    lanes: list[tuple[str, str, list[int]]] = []
    for k in range(6):
        ids, conversation = conversations[k // 2]
        sender = ids["student"] if k % 2 == 0 else ids["tutor"]
        lanes.append((sender, conversation["id"], list(range(k, MESSAGES, 6))))

    answers: dict[int, tuple[int, dict[str, Any]]] = {}
    attempts: Counter[int] = Counter()
    answered_after_kill: set[int] = set()
    killed = asyncio.Event()
    moments = Moments()
    figures: dict[str, object] = {}

    async def lane(api: LmsApi, sender: str, conversation_id: str, numbers: list[int]) -> None:
        for n in numbers:
            while True:
                attempts[n] += 1
                try:
                    status, answer = await api.send(
                        conversation_id,
                        sender=sender,
                        body=f"m-{n:03d}",
                        client_message_id=f"lms-{n:03d}",
                    )
                    break
                except (aiohttp.ClientError, OSError, TimeoutError):
                    # No answer: the LMS can't know whether the bridge stored it, so it sends
                    # it again with the same client message id until it gets one.
                    await asyncio.sleep(0.1)
            assert status in (200, 201, 202), (n, status, answer)
            answers[n] = (status, answer)
            if killed.is_set():
                answered_after_kill.add(n)
            elif len(answers) == KILL_AFTER_ANSWERS:
                bridge_process.kill()  # at once, with the other senders' requests in flight
                moments.killed = time.monotonic()
                killed.set()
                figures["answered_before_kill"] = len(answers)
                figures["answers_before_kill"] = dict(Counter(s for s, _ in answers.values()))

    async def crash_and_restart() -> None:
        await killed.wait()
        # What the dead bridge left: stored but not yet sent (the outbox's work after restart).
        figures["queued_in_db_at_kill"] = bridge_process.query(
            "SELECT count(*) FROM messages WHERE status = 'queued'"
        )[0][0]
        figures["stored_at_kill"] = bridge_process.query("SELECT count(*) FROM messages")[0][0]
        await asyncio.sleep(1.0)  # the LMS's retries hit a dead port for a while
        figures["restart_seconds"] = round(await bridge_process.start(), 2)
        moments.restarted = time.monotonic()

    began = time.monotonic()
    async with lms_api(bridge_process.config) as api:
        await asyncio.wait_for(
            asyncio.gather(
                *(lane(api, sender, c, numbers) for sender, c, numbers in lanes),
                crash_and_restart(),
            ),
            timeout=120,
        )
        all_answered = time.monotonic()
        assert len(answers) == MESSAGES
        retried = sorted(n for n, count in attempts.items() if count > 1)
        assert retried, "the kill should have cut some requests off"
        # A retry answers with the one stored message: never a second one.
        assert len({answer["id"] for _, answer in answers.values()}) == MESSAGES

        clients = [
            await matrix_client(synapse_env, handle, ids["student"]) for ids, _ in conversations
        ]
        try:
            expected = {f"m-{n:03d}" for n in range(MESSAGES)}
            async with asyncio.timeout(90):
                while True:
                    rooms = [
                        await room_messages(synapse_env, client, conversation["room_id"])
                        for client, (_, conversation) in zip(clients, conversations, strict=True)
                    ]
                    seen = {e["content"]["body"] for room in rooms for e in room}
                    if expected <= seen:
                        break
                    await asyncio.sleep(0.25)
            delivered = time.monotonic()
            bodies = Counter(e["content"]["body"] for room in rooms for e in room)
            assert {b: c for b, c in bodies.items() if c != 1} == {}, "a message appears twice"
            assert set(bodies) == expected
            for k, (sender, _, numbers) in enumerate(lanes):
                room = rooms[k // 2]
                mine = [
                    e["content"]["body"] for e in room if e["sender"] == handle.ids.user_id(sender)
                ]
                assert mine == [f"m-{n:03d}" for n in numbers], f"sender {k} out of order"
            event_ids = {e["event_id"] for room in rooms for e in room}
        finally:
            for client in clients:
                await client.close()

        # The echoes of all 500 sends come back through the transaction stream after the
        # restart too; once they are processed the feed must still hold each message once,
        # all from the LMS: a resent message's echo is never taken for one typed in Matrix.
        async with asyncio.timeout(120):
            while True:
                rows = bridge_process.query(
                    "SELECT event_id, processed_at IS NOT NULL, failed FROM inbound_events "
                    "WHERE event_type = 'm.room.message'"
                )
                settled = {event_id for event_id, processed, failed in rows if processed or failed}
                if event_ids <= settled:
                    break
                await asyncio.sleep(0.25)
        set_aside = [event_id for event_id, _, failed in rows if failed and event_id in event_ids]
        assert set_aside == [], "echoes set aside as failed"
        created = [e for e in await api.events() if e["type"] == "message.created"]
        assert Counter(e["data"]["origin"] for e in created) == {"lms": MESSAGES}
        assert sorted(e["data"]["body"] for e in created) == sorted(expected)
    assert bridge_process.query("SELECT status, count(*) FROM messages GROUP BY status") == [
        ("sent", MESSAGES)
    ]
    report(
        "lms_to_matrix_sigkill",
        **figures,
        answered_after_restart=len(answered_after_kill),
        retried_messages=len(retried),
        retry_attempts=sum(attempts.values()) - MESSAGES,
        answers_total=dict(Counter(s for s, _ in answers.values())),
        answering_before_kill_s=round(moments.killed - began, 2),
        all_answered_after_restart_s=round(all_answered - moments.restarted, 2),
        full_delivery_after_restart_s=round(delivered - moments.restarted, 2),
        total_s=round(delivered - began, 2),
    )


# --- 2. Matrix → LMS through a SIGKILL -------------------------------------------------------


async def test_matrix_messages_survive_a_sigkill_of_the_bridge(
    synapse_env: SynapseEnv, bridge_process: BridgeProcess
) -> None:
    """A tutor types 500 messages in a Matrix client; the bridge is SIGKILLed after 200 and
    started again after 350. The LMS feed then lists exactly 500 `message.created` from Matrix,
    one per event, in the order typed."""
    await bridge_process.start()
    handle = as_bridge(bridge_process.config)
    ids, conversation = await start_conversation(handle)
    room_id = conversation["room_id"]
    tutor = await matrix_client(synapse_env, handle, ids["tutor"])
    typed: list[str] = []
    typed_at: list[float] = []
    moments = Moments()
    figures: dict[str, object] = {}
    try:

        async def type_messages() -> None:
            for n in range(MESSAGES):
                response = await tutor.room_send(
                    room_id, "m.room.message", {"msgtype": "m.text", "body": f"m-{n:03d}"}
                )
                assert isinstance(response, RoomSendResponse), response
                typed.append(response.event_id)
                typed_at.append(time.monotonic())
                if len(typed) == KILL_AFTER_TYPED:
                    bridge_process.kill()
                    moments.killed, moments.killed_wall = time.monotonic(), datetime.now(UTC)

        async def restart() -> None:
            while len(typed) < RESTART_AFTER_TYPED:
                await asyncio.sleep(0.01)
            figures["restart_seconds"] = round(await bridge_process.start(), 2)
            moments.restarted = time.monotonic()

        began = time.monotonic()
        await asyncio.wait_for(asyncio.gather(type_messages(), restart()), timeout=120)
        typing_done = time.monotonic()

        async with lms_api(bridge_process.config) as api:

            async def from_matrix() -> list[dict[str, Any]]:
                return [
                    e
                    for e in await api.events()
                    if e["type"] == "message.created"
                    and e["data"]["conversation_id"] == conversation["id"]
                ]

            async with asyncio.timeout(90):
                while len(created := await from_matrix()) < MESSAGES:
                    await asyncio.sleep(0.25)
            delivered = time.monotonic()
            await asyncio.sleep(1.0)  # anything extra (a duplicate) would show up by now
            created = await from_matrix()
    finally:
        await tutor.close()
    published = [e["data"]["event_id"] for e in created]
    assert sorted(published) == sorted(typed) and len(set(published)) == len(published)
    # In typing order, except what Synapse stored but never sent in a transaction (a race in
    # its recovery as the bridge comes back): the catch-up finds that in the room's history,
    # after later messages were published.
    late = late_ones(published, typed)
    assert len(late) <= 3, late
    assert [i for i in published if i not in late] == [i for i in typed if i not in late]
    if late:
        assert "caught up" in bridge_process.log_path.read_text()
    figures["caught_up_late"] = len(late)
    assert {(e["data"]["origin"], e["data"]["sender"]) for e in created} == {
        ("matrix", ids["tutor"])
    }
    assert moments.killed_wall is not None
    killed_wall = moments.killed_wall
    before_kill = sum(
        1 for e in created if datetime.fromisoformat(e["data"]["created_at"]) < killed_wall
    )
    report(
        "matrix_to_lms_sigkill",
        **figures,
        typed_before_kill=KILL_AFTER_TYPED,
        recorded_before_kill=before_kill,
        typed_while_down=RESTART_AFTER_TYPED - KILL_AFTER_TYPED,
        typing_s=round(typing_done - began, 2),
        typed_per_s_bridge_up=rate(typed_at[:KILL_AFTER_TYPED]),
        typed_per_s_bridge_down=rate(typed_at[KILL_AFTER_TYPED:RESTART_AFTER_TYPED]),
        typed_per_s_after_restart=rate(typed_at[RESTART_AFTER_TYPED:]),
        full_delivery_after_restart_s=round(delivered - moments.restarted, 2),
        after_typing_ended_s=round(delivered - typing_done, 2),
    )


# --- 3. Synapse away for 20 s ----------------------------------------------------------------


async def test_lms_messages_sent_while_synapse_is_down_for_20s_arrive_once_in_order(
    synapse_env: SynapseEnv, sqlite_url: str
) -> None:
    """Synapse stops for 20 s while both people keep sending from the LMS: every send is
    answered 202 queued (a retry 200, the same message), and once Synapse is back every message
    is in the room exactly once, in the order sent."""
    config = synapse_env.bridge_config(sqlite_url)
    config = dataclasses.replace(
        config, messages=dataclasses.replace(config.messages, per_user_per_minute=100_000)
    )
    instance = Bridge(config)
    await instance.start()
    figures: dict[str, object] = {}
    try:
        ids, conversation = await start_conversation(instance)
        people = [ids["student"], ids["tutor"]]
        sent: list[tuple[str, str]] = []  # (sender, body) in the order the LMS sent them
        async with lms_api(config) as api:
            status, answer = await api.send(
                conversation["id"], sender=people[0], body="o-000", client_message_id="o-000"
            )
            assert (status, answer["status"]) == (201, "sent")
            sent.append((people[0], "o-000"))
            answers: list[tuple[int, str]] = []
            synapse = synapse_env.synapse
            await asyncio.to_thread(synapse.stop)
            stopped = time.monotonic()
            try:
                n = 1
                while time.monotonic() - stopped < SYNAPSE_OUTAGE_SECONDS:
                    sender, body = people[n % 2], f"o-{n:03d}"
                    status, answer = await api.send(
                        conversation["id"], sender=sender, body=body, client_message_id=body
                    )
                    answers.append((status, answer["status"]))
                    sent.append((sender, body))
                    if n == 5:
                        # The LMS timed out on this one and sends it again: same message.
                        again = await api.send(
                            conversation["id"], sender=sender, body=body, client_message_id=body
                        )
                        assert (again[0], again[1]["id"], again[1]["status"]) == (
                            200,
                            answer["id"],
                            "queued",
                        )
                    n += 1
                    await asyncio.sleep(0.5)
            finally:
                # Whatever happened above, the rest of the session needs its homeserver.
                await asyncio.to_thread(synapse.start)
            back = time.monotonic()
            figures["outage_s"] = round(back - stopped, 2)
            figures["synapse_start_s"] = round(back - stopped - SYNAPSE_OUTAGE_SECONDS, 2)
            figures["sent_during_outage"] = len(answers)
            assert answers == [(202, "queued")] * len(answers)
            status, answer = await api.send(
                conversation["id"], sender=people[0], body="o-999", client_message_id="o-999"
            )
            assert status in (201, 202), answer
            sent.append((people[0], "o-999"))
            figures["first_send_after_restart"] = f"{status} {answer['status']}"

        tutor = await matrix_client(synapse_env, instance, ids["tutor"])
        try:
            async with asyncio.timeout(60):
                while True:
                    room = await room_messages(synapse_env, tutor, conversation["room_id"])
                    if len(room) >= len(sent):
                        break
                    await asyncio.sleep(0.2)
            figures["full_delivery_after_restart_s"] = round(time.monotonic() - back, 2)
            await asyncio.sleep(1.0)  # a duplicate would show up by now
            room = await room_messages(synapse_env, tutor, conversation["room_id"])
        finally:
            await tutor.close()
        assert [(e["sender"], e["content"]["body"]) for e in room] == [
            (instance.ids.user_id(sender), body) for sender, body in sent
        ]
    finally:
        await instance.stop()
    report("synapse_outage", **figures)


# --- 3b. Synapse SIGKILLed while people type ------------------------------------------------


async def _type(
    env: SynapseEnv, session: aiohttp.ClientSession, token: str, room_id: str, body: str
) -> str:
    """Send one message as a person's client would, retrying through an outage (a retry after a
    lost answer may post it twice: what counts is what the room holds); returns its event id."""
    deadline = time.monotonic() + 60
    while True:
        url = (
            f"{env.synapse.url}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/"
            f"{secrets.token_hex(8)}"
        )
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.put(
                url,
                json={"msgtype": "m.text", "body": body},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                if response.status == 200:
                    return str((await response.json())["event_id"])
        assert time.monotonic() < deadline, f"{body} could not be sent"
        await asyncio.sleep(0.1)


async def test_everything_synapse_stored_reaches_the_lms_after_it_was_sigkilled(
    synapse_env: SynapseEnv, database_url: str
) -> None:
    """A tutor types while Synapse is SIGKILLed and started again. Every message the room holds
    afterwards reaches the LMS exactly once (events Synapse stored but never sent in a
    transaction are found in the room's history), the second appservice notwithstanding."""
    config = synapse_env.bridge_config(database_url)
    instance = Bridge(config)
    await instance.start()
    figures: dict[str, object] = {}
    try:
        ids, conversation = await start_conversation(instance)
        room_id = conversation["room_id"]
        tutor = await matrix_client(synapse_env, instance, ids["tutor"])
        token = str(tutor.access_token)
        await tutor.close()
        synapse = synapse_env.synapse
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for n in range(SIGKILL_TYPED):
                if n == SIGKILL_AFTER:
                    # Mid-stream: the messages just typed may be stored but not yet sent on.
                    await asyncio.to_thread(synapse.kill)
                    killed = time.monotonic()
                    await asyncio.to_thread(synapse.start)
                    figures["synapse_down_s"] = round(time.monotonic() - killed, 2)
                await _type(synapse_env, session, token, room_id, f"k-{n:03d}")
        typing_done = time.monotonic()
        reader = await matrix_client(synapse_env, instance, ids["student"])
        try:
            stored = [e["event_id"] for e in await room_messages(synapse_env, reader, room_id)]
        finally:
            await reader.close()

        async def published() -> list[str]:
            events = await feed(instance, conversation["id"])
            return [e["data"]["event_id"] for e in events if e["type"] == "message.created"]

        async with asyncio.timeout(90):
            while len(set(await published()) & set(stored)) < len(stored):
                await asyncio.sleep(0.25)
        figures["all_published_after_typing_s"] = round(time.monotonic() - typing_done, 2)
        # A marker typed last: once it is published, a duplicate of anything before it would be.
        async with aiohttp.ClientSession(timeout=timeout) as session:
            marker = await _type(synapse_env, session, token, room_id, "k-marker")
        stored.append(marker)
        async with asyncio.timeout(30):
            while marker not in (created := await published()):
                await asyncio.sleep(0.1)
    finally:
        await instance.stop()
    assert sorted(created) == sorted(stored)
    assert len(created) == len(set(created))
    report(
        "synapse_sigkill",
        database=synapse_env.database,
        typed=SIGKILL_TYPED,
        in_room=len(stored),
        **figures,
    )


# --- 4. the LMS webhook down for 10 s --------------------------------------------------------


async def test_webhook_refusing_for_10s_gets_every_event_once_in_order_signed(
    synapse_env: SynapseEnv, sqlite_url: str
) -> None:
    """The LMS's webhook answers 500 for the first 10 s while messages flow both ways; afterwards
    it has received every event of the feed exactly once, in order, each validly signed."""
    receiver, runner, config = await hooked(synapse_env.bridge_config(sqlite_url))
    config = dataclasses.replace(
        config, messages=dataclasses.replace(config.messages, per_user_per_minute=100_000)
    )
    # Failing from the first event on: the conversation's creation waits too.
    receiver.failing_until = time.monotonic() + WEBHOOK_FAILING_SECONDS
    began = time.monotonic()
    instance = Bridge(config)
    await instance.start()
    try:
        ids, conversation = await start_conversation(instance)
        async with lms_api(config) as api:
            for n in range(20):
                sender = ids["student"] if n % 2 == 0 else ids["tutor"]
                status, answer = await api.send(
                    conversation["id"], sender=sender, body=f"w-{n:02d}", client_message_id=f"w{n}"
                )
                assert status in (201, 202), answer
            tutor = await matrix_client(synapse_env, instance, ids["tutor"])
            try:
                for n in range(5):
                    response = await tutor.room_send(
                        conversation["room_id"],
                        "m.room.message",
                        {"msgtype": "m.text", "body": f"x-{n}"},
                    )
                    assert isinstance(response, RoomSendResponse), response
            finally:
                await tutor.close()
            async with asyncio.timeout(30):
                while len([e for e in await api.events() if e["type"] == "message.created"]) < 25:
                    await asyncio.sleep(0.2)
            traffic_done = time.monotonic()
            feed = await api.events()
            async with asyncio.timeout(60):
                while len(receiver.acknowledged) < len(feed):
                    await asyncio.sleep(0.1)
            delivered = time.monotonic()
            await asyncio.sleep(1.0)  # a repeat would show up by now
            feed = await api.events()
        assert receiver.refused > 0, "the receiver really refused for a while"
        assert receiver.bad_signatures == 0
        ids_sent = [e["id"] for e in receiver.acknowledged]
        assert len(set(ids_sent)) == len(ids_sent), "an event was delivered twice"
        assert receiver.acknowledged == feed  # every event, once, in order, as the feed has it
        assert await instance.event_log.delivered_up_to() == feed[-1]["seq"]
        by_type = Counter(e["type"] for e in feed)
        assert by_type["message.created"] == 25 and by_type["conversation.created"] == 1
    finally:
        await instance.stop()
        await runner.cleanup()
    report(
        "webhook_outage",
        events=len(feed),
        refused_posts=receiver.refused,
        traffic_ended_before_recovery_s=round(receiver.failing_until - traffic_done, 2),
        recovered_after_s=round(delivered - receiver.failing_until, 2),
        total_s=round(delivered - began, 2),
    )


# --- 5. answered "queued", then SIGKILLed ----------------------------------------------------


async def test_messages_answered_queued_are_sent_after_a_sigkill(
    synapse_env: SynapseEnv, bridge_process: BridgeProcess
) -> None:
    """With Synapse away the LMS gets 202 queued for ten messages, then the bridge is SIGKILLed
    before it could send any. The LMS has its answers and sends nothing again; once Synapse and
    the bridge are back the outbox sends all ten from the database, once each, in order."""
    await bridge_process.start()
    handle = as_bridge(bridge_process.config)
    ids, conversation = await start_conversation(handle)
    people = [ids["student"], ids["tutor"]]
    sent = [(people[n % 2], f"q-{n:02d}") for n in range(10)]
    synapse = synapse_env.synapse
    figures: dict[str, object] = {}
    async with lms_api(bridge_process.config) as api:
        await asyncio.to_thread(synapse.stop)
        try:
            for sender, body in sent:
                status, answer = await api.send(
                    conversation["id"], sender=sender, body=body, client_message_id=body
                )
                assert (status, answer["status"]) == (202, "queued"), answer
            bridge_process.kill()
            figures["queued_in_db_at_kill"] = bridge_process.query(
                "SELECT count(*) FROM messages WHERE status = 'queued'"
            )[0][0]
        finally:
            await asyncio.to_thread(synapse.start)
    assert figures["queued_in_db_at_kill"] == len(sent)
    figures["restart_seconds"] = round(await bridge_process.start(), 2)
    restarted = time.monotonic()
    tutor = await matrix_client(synapse_env, handle, ids["tutor"])
    try:
        async with asyncio.timeout(60):
            while len(room := await room_messages(synapse_env, tutor, conversation["room_id"])) < (
                len(sent)
            ):
                await asyncio.sleep(0.2)
        figures["full_delivery_after_restart_s"] = round(time.monotonic() - restarted, 2)
        await asyncio.sleep(1.0)  # a duplicate would show up by now
        room = await room_messages(synapse_env, tutor, conversation["room_id"])
    finally:
        await tutor.close()
    assert [(e["sender"], e["content"]["body"]) for e in room] == [
        (handle.ids.user_id(sender), body) for sender, body in sent
    ]
    assert bridge_process.query("SELECT status, count(*) FROM messages GROUP BY status") == [
        ("sent", len(sent))
    ]
    report("queued_then_sigkill", **figures)
