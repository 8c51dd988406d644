"""What the bridge costs next to Synapse alone: messages and new conversations, in one run.

One Synapse (SQLite) and the bridge, each a process of its own (the bridge runs as
`python -m bridge run`, SQLite unless `--database postgresql` or a URL), a webhook receiver
playing the LMS (signatures checked), and 50 student–tutor pairs whose conversation rooms the
bridge makes. Messages go three ways, 1,000 per round at concurrency 10, consecutive messages in
different rooms, the two participants taking turns:

- **alone**: the bridge is stopped and a stub on its port answers every transaction `{}` at no
  cost; `PUT /_matrix/client/v3/rooms/{room}/send/...` straight to Synapse as the bridged
  accounts (as_token and `user_id`). This is Synapse's own limit.
- **bridged**: `POST /api/v1/conversations/{c}/messages` through the bridge.
- **raw + bridge**: the raw sends of *alone*, with the bridge ingesting them (Matrix → LMS:
  each becomes `message.created` at the webhook).

After a warm-up of each, rounds go alone, bridged, raw + bridge, then the other way round
(`--rounds 2`), so drift weighs on every path alike. A round ends when every message was answered
and everything it caused is done: the stub has every event, or the bridge has processed every
event Synapse pushed and the webhook has every logged event. CPU is read from /proc for Synapse,
the bridge and this process (the load generator, the stub and the webhook receiver) over the
whole round; SQL statements, commits and homeserver requests come from the bridge's
`/api/v1/metrics`. Other processes' CPU over a round is reported, and a round they disturbed
(over 20% of a core) is named.

New conversations: `POST /api/v1/conversations` for fresh pairs beside the minimum raw sequence a
bridge needs for one (with the stub on the bridge's port): register both accounts, `createRoom`
as the bot with the invites, the room's initial state, power levels and alias, and both joins.
Then a few starts one at a time, counting the homeserver requests the LMS waits for (between the
request and its answer) and those made after the answer.

Last, Matrix → LMS: messages typed in the participants' own matrix-nio clients at a steady rate,
timed from the client's send until the webhook receives each, beside the other participant's
`/sync` for the same message.

    python -m bench.conversations [--messages 1000] [--concurrency 10] [--rounds 2]
        [--starts 30] [--typed 300] [--typed-rate 10] [--database sqlite|postgresql|URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from nio import AsyncClient, AsyncClientConfig, RoomSendResponse, SyncResponse

from bench.common import (
    BODY_PADDING,
    Conversation,
    bridge_config,
    in_pool,
    on_database,
    percentile,
    print_table,
    progress,
    roster,
)
from bench.processes import BridgeProcess, machine_busy_seconds, process_cpu_seconds
from bridge.config import Config, write_back
from bridge.demo.synapse import LocalSynapse
from bridge.domain.formatting import message_content
from bridge.domain.ids import MatrixIdMapper
from bridge.domain.rooms import conversation_room
from bridge.domain.signing import verify
from bridge.matrix.registration import write_registration

PAIRS = 50
WAITED_STARTS = 5  # conversations started one at a time, their homeserver requests counted
PROBE = "GET versions"  # the bridge's look at whether the homeserver answers, once a second
ALONE, BRIDGED, RAW_BRIDGE = "alone", "bridged", "raw + bridge"
WEBHOOK_SECRET = "bench-webhook-secret"
DISTURBED = 0.2  # share of a core other processes may use before a round counts as disturbed
# Only what the measurement needs: keeps Synapse's and nio's work per /sync small.
SYNC_FILTER: dict[str, Any] = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {
        "timeline": {"types": ["m.room.message"], "limit": 100},
        "state": {"lazy_load_members": True, "types": []},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
}


@dataclass
class Usage:
    """What a stretch of the run cost each process, and the bridge's counters."""

    seconds: float = 0.0
    bridge_cpu: float | None = None
    synapse_cpu: float | None = None
    own_cpu: float = 0.0
    other_cpu: float | None = None  # every other process on the machine
    counters: Counter[str] = field(default_factory=Counter)  # the bridge's, from its metrics

    def disturbed(self) -> bool:
        """Whether other processes used more than DISTURBED of a core meanwhile."""
        return self.other_cpu is not None and self.other_cpu > DISTURBED * self.seconds


@dataclass
class Round:
    """One load round on one path."""

    label: str
    path: str
    sent: int = 0
    errors: int = 0
    seconds: float = 0.0  # until the last answer
    latencies: list[float] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)  # until settled

    @property
    def rate(self) -> float:
        """Successful messages per second."""
        return self.sent / self.seconds if self.seconds else 0.0


class WebhookReceiver:
    """The LMS side: checks each call's signature and notes when each event arrived."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.arrived: dict[str, float] = {}  # Matrix event id → arrival
        self.calls = 0
        self.bad_signatures = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.perf_counter()
        signature = request.headers.get("X-Bridge-Signature", "")
        if not verify(self.secret, signature, body, int(time.time())):
            self.bad_signatures += 1
            return web.Response(status=400)
        self.calls += 1
        event = await request.json()
        event_id = event.get("data", {}).get("event_id")
        if event.get("type") == "message.created" and event_id:
            self.arrived.setdefault(event_id, now)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class StubAppservice:
    """Stands in for the bridge on its port: answers every transaction `{}` at once and notes
    the events, so Synapse alone can be measured with the same registration."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: set[str] = set()
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        if request.method == "PUT" and "/transactions/" in request.path:
            body = await request.json()
            self.seen.update(e["event_id"] for e in body.get("events", []) if "event_id" in e)
        else:
            await request.read()
        return web.json_response({})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def parse_metrics(text: str) -> Counter[str]:
    """The samples of a Prometheus text document, by name and labels."""
    values: Counter[str] = Counter()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)  # type: ignore[assignment]
    return values


def homeserver_calls(counters: Counter[str]) -> Counter[str]:
    """The bridge's homeserver requests by kind, from its metrics."""
    prefix = 'lms_bridge_homeserver_requests_total{call="'
    return Counter(
        {k[len(prefix) : -2]: int(v) for k, v in counters.items() if k.startswith(prefix) and v}
    )


class Bench:
    """A running Synapse, the bridge (or the stub in its place), and the load generators."""

    def __init__(
        self,
        synapse: LocalSynapse,
        bridge: BridgeProcess,
        config: Config,
        receiver: WebhookReceiver,
    ) -> None:
        self.synapse = synapse
        self.bridge = bridge
        self.config = config
        self.receiver = receiver
        self.stub = StubAppservice(config.appservice.listen_port)
        self.ids = MatrixIdMapper(config.appservice.account_prefix, config.homeserver.server_name)
        self.bot = config.bot_user_id
        self.mode = ""
        self.conversations: list[Conversation] = []
        self.rooms = 0  # conversation rooms the bridge has made
        self.raw_rounds = 0
        self.admin_token = ""
        self._api: aiohttp.ClientSession | None = None
        self._matrix: aiohttp.ClientSession | None = None

    @property
    def api(self) -> aiohttp.ClientSession:
        assert self._api is not None
        return self._api

    @property
    def matrix(self) -> aiohttp.ClientSession:
        assert self._matrix is not None
        return self._matrix

    @contextlib.asynccontextmanager
    async def sessions(self, concurrency: int) -> AsyncIterator[None]:
        """One pooled HTTP session to the bridge's API and one to Synapse, like a real client."""
        limit = max(concurrency * 2, 20)
        self._api = aiohttp.ClientSession(
            f"http://127.0.0.1:{self.config.appservice.listen_port}",
            headers={"Authorization": f"Bearer {self.config.lms.api_token}"},
            connector=aiohttp.TCPConnector(limit=limit),
        )
        self._matrix = aiohttp.ClientSession(
            self.synapse.url,
            headers={"Authorization": f"Bearer {self.config.appservice.as_token}"},
            connector=aiohttp.TCPConnector(limit=limit),
        )
        try:
            yield
        finally:
            await self._api.close()
            await self._matrix.close()

    # --- the bridge or the stub ---

    async def use(self, mode: str) -> None:
        """Run the bridge ("bridge") or the stub ("stub") on the bridge's port."""
        if mode == self.mode:
            return
        if self.mode == "bridge":
            await asyncio.to_thread(self.bridge.stop)
        elif self.mode == "stub":
            await self.stub.stop()
        if mode == "bridge":
            await asyncio.to_thread(self.bridge.start)
            await self.bridge_caught_up()
        else:
            await self.stub.start()
            # End any backoff Synapse fell into while nothing answered.
            async with self.matrix.post(
                f"/_matrix/client/v1/appservice/{self.config.appservice.id}/ping", json={}
            ) as response:
                assert response.status == 200, await response.text()
        self.mode = mode

    async def metrics(self) -> Counter[str]:
        """The bridge's counters now (nothing while the stub runs)."""
        if self.mode != "bridge":
            return Counter()
        async with self.api.get("/api/v1/metrics") as response:
            assert response.status == 200, await response.text()
            return parse_metrics(await response.text())

    async def bridge_caught_up(self, within: float = 60.0) -> None:
        """After a start: every pass over room history done (the bridge reads every room's
        history after a gap: what the stub took, it finds and carries), then settled."""
        self.mode = "bridge"
        async with asyncio.timeout(within):
            while (await self.metrics())["lms_bridge_catch_up_passes_waiting"]:
                await asyncio.sleep(0.5)
        await self.settled([])

    async def settled(self, event_ids: list[str], within: float = 300.0) -> None:
        """Wait until everything a round caused is done: the stub has these events, or the
        bridge has processed every event Synapse pushed and the webhook has every logged
        event (unchanged over two looks)."""
        async with asyncio.timeout(within):
            if self.mode == "stub":
                while not self.stub.seen.issuperset(event_ids):
                    await asyncio.sleep(0.05)
                return
            last: tuple[float, ...] | None = None
            while True:
                metrics = await self.metrics()
                now = (
                    metrics['lms_bridge_inbound_events{state="pending"}'],
                    metrics["lms_bridge_events_delivered"],
                    metrics["lms_bridge_events_logged"],
                )
                done = (
                    now[0] == 0
                    and now[1] == now[2]
                    and all(e in self.receiver.arrived for e in event_ids)
                )
                if done and last == now:
                    return
                last = now if done else None
                await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def measured(self, usage: Usage) -> AsyncIterator[None]:
        """Fill `usage` with what the block cost each process."""
        pids = (self.bridge.pid if self.mode == "bridge" else None, self.synapse.pid)
        cpu = [process_cpu_seconds(pid) for pid in pids]
        own, machine = time.process_time(), machine_busy_seconds()
        counters = await self.metrics()
        started = time.perf_counter()
        yield
        usage.seconds = time.perf_counter() - started
        usage.counters = await self.metrics()
        usage.counters.subtract(counters)
        after = [process_cpu_seconds(pid) for pid in pids]
        bridge_cpu, synapse_cpu = (
            b - a if a is not None and b is not None else None
            for a, b in zip(cpu, after, strict=True)
        )
        usage.bridge_cpu, usage.synapse_cpu = bridge_cpu, synapse_cpu
        usage.own_cpu = time.process_time() - own
        machine_after = machine_busy_seconds()
        if machine is not None and machine_after is not None and synapse_cpu is not None:
            usage.other_cpu = max(
                0.0,
                machine_after - machine - synapse_cpu - (bridge_cpu or 0.0) - usage.own_cpu,
            )

    # --- set-up ---

    async def set_up(self, pairs: int, fresh: int, concurrency: int) -> None:
        """Load the roster (and `fresh` pairs more) and start one conversation per pair."""
        more = [r for r in roster(fresh, "new-") if r["type"] not in ("institution", "course")]
        async with self.api.post(
            "/api/v1/roster/bulk", json={"records": roster(pairs) + more}
        ) as response:
            assert response.status == 200, await response.text()
        # The roster naming people makes their accounts; starts are measured once it has.
        async with asyncio.timeout(600):
            while (await self.metrics())["lms_bridge_profile_syncs_queued"]:
                await asyncio.sleep(0.2)
        progress(f"{2 * (pairs + fresh)} accounts made")
        found: dict[int, Conversation] = {}

        async def start(n: int) -> None:
            answer = await self.start_conversation(f"s{n}", f"t{n}")
            people = {p["user_id"]: p["matrix_id"] for p in answer["participants"]}
            found[n] = Conversation(
                answer["id"],
                answer["room_id"],
                (f"s{n}", f"t{n}"),
                (people[f"s{n}"], people[f"t{n}"]),
            )

        await in_pool(pairs, concurrency, start)
        self.conversations = [found[n] for n in range(pairs)]
        await self.settled([])
        progress(f"{pairs} conversations started")

    async def start_conversation(self, initiator: str, recipient: str) -> dict[str, Any]:
        """`POST /api/v1/conversations`; its answer."""
        body = {"initiator": initiator, "recipient": recipient}
        async with self.api.post("/api/v1/conversations", json=body) as response:
            answer: dict[str, Any] = await response.json()
            assert response.status == 201, answer
            self.rooms += 1
            return answer

    # --- messages ---

    def _message(self, n: int) -> tuple[Conversation, int, str]:
        """Message n of a round: its conversation, which participant sends, the text.

        Consecutive messages go to consecutive conversations, so the messages in flight at one
        time are in different rooms; the two participants take turns.
        """
        count = len(self.conversations)
        return self.conversations[n % count], (n // count) % 2, f"message {n}" + BODY_PADDING

    async def raw_round(self, label: str, count: int, concurrency: int) -> Round:
        """`count` sends straight to Synapse as the bridged accounts."""
        result = Round(label, ALONE if self.mode == "stub" else RAW_BRIDGE)
        self.raw_rounds += 1
        txn_prefix = f"bench.{self.raw_rounds}"  # txn ids unique across the appservice

        async def send(n: int) -> None:
            conversation, side, text = self._message(n)
            path = (
                f"/_matrix/client/v3/rooms/{quote(conversation.room_id, safe='')}"
                f"/send/m.room.message/{txn_prefix}.{n}"
            )
            sent = time.perf_counter()
            async with self.matrix.put(
                path, params={"user_id": conversation.mxids[side]}, json=message_content(text, None)
            ) as response:
                answer = await response.json(content_type=None)
                ok = response.status == 200
            self._note(result, sent, answer.get("event_id") if ok else None)

        return await self._timed(result, count, concurrency, send)

    async def bridged_round(self, label: str, count: int, concurrency: int) -> Round:
        """`count` sends through the bridge's message API."""
        result = Round(label, BRIDGED)

        async def send(n: int) -> None:
            conversation, side, text = self._message(n)
            body = {
                "sender": conversation.people[side],
                "body": text,
                "client_message_id": f"{label}-{n}",
            }
            sent = time.perf_counter()
            async with self.api.post(
                f"/api/v1/conversations/{conversation.id}/messages", json=body
            ) as response:
                answer = await response.json()
                # 201 with status "sent" is a message in the room; a 202 (queued) is not yet.
                ok = response.status == 201 and answer.get("status") == "sent"
            self._note(result, sent, answer.get("event_id") if ok else None)

        return await self._timed(result, count, concurrency, send)

    @staticmethod
    def _note(result: Round, sent: float, event_id: str | None) -> None:
        result.latencies.append((time.perf_counter() - sent) * 1000)
        if event_id:
            result.sent += 1
            result.event_ids.append(event_id)
        else:
            result.errors += 1

    async def _timed(
        self, result: Round, count: int, concurrency: int, send: Callable[[int], Awaitable[None]]
    ) -> Round:
        async with self.measured(result.usage):
            started = time.perf_counter()
            await in_pool(count, concurrency, send)
            result.seconds = time.perf_counter() - started
            # Raw sends reach the LMS through the bridge; bridged ones were published already.
            await self.settled(result.event_ids if result.path != BRIDGED else [])
        progress(f"{result.label} {result.path}: {result.sent} sent, {result.rate:.1f} msg/s")
        return result

    # --- new conversations ---

    async def raw_starts(self, first: int, count: int, concurrency: int) -> Round:
        """The minimum a bridge does for a new conversation, straight to Synapse (the stub on
        the bridge's port): register both, create the room as the bot (invites, initial state,
        power levels, alias), both join."""
        result = Round("starts", "minimum raw sequence")
        calls: Counter[str] = Counter()

        async def call(method: str, path: str, body: Any, user: str | None = None) -> Any:
            calls[f"{method} {path.strip('/').split('/')[0]}"] += 1
            params = {"user_id": user} if user else None
            async with self.matrix.request(
                method, f"/_matrix/client/v3{path}", json=body, params=params
            ) as response:
                answer = await response.json(content_type=None)
                assert response.status == 200, answer
                return answer

        async def start(n: int) -> None:
            people = (f"raw-s{first + n}", f"raw-t{first + n}")
            mxids = tuple(self.ids.user_id(p) for p in people)
            sent = time.perf_counter()
            for mxid in mxids:
                body = {"type": "m.login.application_service", "inhibit_login": True}
                await call("POST", "/register", {**body, "username": mxid[1:].split(":")[0]})
            spec = conversation_room(
                self.config.appservice.account_prefix,
                f"raw{first + n}",
                self.bot,
                ((people[0], mxids[0]), (people[1], mxids[1])),
                False,
            )
            room = await call(
                "POST",
                "/createRoom",
                {
                    "preset": "private_chat",
                    "is_direct": True,
                    "invite": list(mxids),
                    "room_alias_name": spec.alias_localpart,
                    "initial_state": spec.initial_state,
                    "power_level_content_override": spec.power_levels,
                    "creation_content": {"m.federate": False},
                },
            )
            for mxid in mxids:
                await call("POST", f"/join/{quote(room['room_id'], safe='')}", {}, mxid)
            self._note(result, sent, room["room_id"])

        async with self.measured(result.usage):
            started = time.perf_counter()
            await in_pool(count, concurrency, start)
            result.seconds = time.perf_counter() - started
        result.usage.counters = Counter(
            {f'lms_bridge_homeserver_requests_total{{call="{k}"}}': v for k, v in calls.items()}
        )
        progress(f"raw starts: {result.rate:.2f}/s")
        return result

    async def bridged_starts(self, first: int, count: int, concurrency: int) -> Round:
        """`POST /api/v1/conversations` for fresh pairs."""
        result = Round("starts", "bridged POST /conversations")

        async def start(n: int) -> None:
            sent = time.perf_counter()
            answer = await self.start_conversation(f"new-s{first + n}", f"new-t{first + n}")
            self._note(result, sent, answer["room_id"])

        async with self.measured(result.usage):
            started = time.perf_counter()
            await in_pool(count, concurrency, start)
            result.seconds = time.perf_counter() - started
            await self.settled([])
        progress(f"bridged starts: {result.rate:.2f}/s")
        return result

    async def waited_calls(self, first: int, count: int) -> tuple[Counter[str], Counter[str]]:
        """Starts one at a time: the homeserver requests made while the LMS waited for each
        answer, and those made after it (until settled), in all."""
        waited: Counter[str] = Counter()
        after: Counter[str] = Counter()
        for n in range(first, first + count):
            before = await self.quiet_calls()
            await self.start_conversation(f"new-s{n}", f"new-t{n}")
            answered = homeserver_calls(await self.metrics())
            await self.settled([])
            done = await self.quiet_calls()
            waited.update(answered - before)
            after.update(done - answered)
        for counts in (waited, after):
            counts.pop(PROBE, None)  # the bridge's periodic look at the homeserver
        return waited, after

    async def quiet_calls(self, within: float = 30.0) -> Counter[str]:
        """The bridge's homeserver calls once they stop changing for a second (work left from
        an earlier start done), but for its periodic probe."""
        last: Counter[str] | None = None
        async with asyncio.timeout(within):
            while True:
                calls = homeserver_calls(await self.metrics())
                calls.pop(PROBE, None)
                if calls == last:
                    return calls
                last = calls
                await asyncio.sleep(1.0)

    # --- Matrix → LMS ---

    async def typed(
        self, rooms: int, count: int, rate: float
    ) -> tuple[dict[str, list[float]], int, int]:
        """`count` messages typed in the participants' own clients into `rooms` rooms, at
        `rate` per second; returns the latencies (ms) of each stage from the client's send, and
        how many sends Synapse accepted and refused."""
        chosen = self.conversations[:rooms]
        # One person types in each room (the student in one, the tutor in the next) and the
        # other one's client follows /sync: one long poll per room keeps Synapse's load honest.
        typists = [await self._login(c.mxids[n % 2]) for n, c in enumerate(chosen)]
        readers = [await self._login(c.mxids[1 - n % 2]) for n, c in enumerate(chosen)]
        sync_seen: dict[str, float] = {}

        async def follow(client: AsyncClient, since: str) -> None:
            """A long-polling sync loop: notes when each message of the other person shows."""
            while True:
                response = await client.sync(timeout=30000, sync_filter=SYNC_FILTER, since=since)
                now = time.perf_counter()
                if not isinstance(response, SyncResponse):
                    await asyncio.sleep(0.5)
                    continue
                since = response.next_batch
                for room in response.rooms.join.values():
                    for event in room.timeline.events:
                        if event.sender != client.user_id:
                            sync_seen.setdefault(event.event_id, now)

        progress(f"typing {count} messages at {rate:g}/s")
        followers = []
        for client in readers:
            first = await client.sync(timeout=0, sync_filter=SYNC_FILTER)
            assert isinstance(first, SyncResponse), first
            followers.append(asyncio.create_task(follow(client, first.next_batch)))
        sent_at: dict[str, float] = {}
        answered: list[float] = []
        failures = 0

        async def type_one(n: int) -> None:
            nonlocal failures
            conversation = chosen[n % rooms]
            started = time.perf_counter()
            response = await typists[n % rooms].room_send(
                conversation.room_id,
                "m.room.message",
                {"msgtype": "m.text", "body": f"typed {n}" + BODY_PADDING},
            )
            if isinstance(response, RoomSendResponse):
                sent_at[response.event_id] = started
                answered.append((time.perf_counter() - started) * 1000)
            else:
                failures += 1

        try:
            # Open loop: each message starts on schedule, whatever the earlier ones are doing.
            begin = time.perf_counter()
            typing = []
            for n in range(count):
                delay = begin + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                typing.append(asyncio.create_task(type_one(n)))
            await asyncio.gather(*typing)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):
                    while not all(e in self.receiver.arrived and e in sync_seen for e in sent_at):
                        await asyncio.sleep(0.05)
        finally:
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
            for client in (*typists, *readers):
                await client.close()

        def since_send(arrivals: dict[str, float]) -> list[float]:
            return [(arrivals[e] - t) * 1000 for e, t in sent_at.items() if e in arrivals]

        stages = {
            "client's PUT /send answered": answered,
            "LMS webhook received it": since_send(self.receiver.arrived),
            "other participant's /sync": since_send(sync_seen),
        }
        return stages, len(sent_at), failures

    async def _login(self, mxid: str) -> AsyncClient:
        """The person's own client, logged in with a password set through the admin API."""
        await asyncio.to_thread(self.synapse.set_password, self.admin_token, mxid, "pw")
        client = AsyncClient(
            self.synapse.url,
            mxid,
            config=AsyncClientConfig(encryption_enabled=False, request_timeout=90),
        )
        response = await client.login("pw", device_name="bench")
        assert client.access_token, response
        return client


# --- the tables ---


def per_message(value: float | None, count: int, scale: float = 1000.0) -> object:
    """A total per message (ms for CPU seconds), or "-"."""
    return "-" if value is None or not count else value * scale / count


def usage_columns(rounds: list[Round]) -> list[object]:
    """CPU and bridge work per message over rounds."""
    sent = sum(r.sent for r in rounds)
    usages = [r.usage for r in rounds]

    def total(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else sum(v or 0.0 for v in values)

    counters: Counter[str] = Counter()
    for usage in usages:
        counters.update(usage.counters)
    bridge_running = rounds[0].path != ALONE
    return [
        per_message(total([u.bridge_cpu for u in usages]), sent) if bridge_running else "-",
        per_message(total([u.synapse_cpu for u in usages]), sent),
        per_message(sum(u.own_cpu for u in usages), sent),
        per_message(counters["lms_bridge_database_statements_total"], sent, 1)
        if bridge_running
        else "-",
        per_message(counters['lms_bridge_database_units_total{kind="write"}'], sent, 1)
        if bridge_running
        else "-",
        per_message(counters['lms_bridge_database_units_total{kind="read"}'], sent, 1)
        if bridge_running
        else "-",
        per_message(sum(homeserver_calls(counters).values()), sent, 1) if bridge_running else "-",
        f"{100 * sum(u.other_cpu or 0 for u in usages) / sum(u.seconds for u in usages):.0f}%",
    ]


USAGE_HEADERS = [
    "bridge CPU ms/msg",
    "Synapse CPU ms/msg",
    "here CPU ms/msg",
    "SQL/msg",
    "commits/msg",
    "reads/msg",
    "HS calls/msg",
    "others' CPU",
]


def overall_rate(rounds: list[Round]) -> float:
    """Messages per second over several rounds together."""
    return sum(r.sent for r in rounds) / sum(r.seconds for r in rounds)


def table_row(label: str, rounds: list[Round]) -> list[object]:
    """One line of a table, for one round or several together."""
    latencies = [x for r in rounds for x in r.latencies]
    return [
        label,
        rounds[0].path,
        sum(r.sent for r in rounds),
        sum(r.errors for r in rounds),
        overall_rate(rounds),
        percentile(latencies, 50),
        percentile(latencies, 99),
        *usage_columns(rounds),
    ]


def verdict(value: float, target: float, higher: bool = True) -> str:
    """ "met" or "MISSED"."""
    return "met" if (value >= target if higher else value <= target) else "MISSED"


async def measure(bench: Bench, args: argparse.Namespace) -> None:
    """Every measurement, printed as tables."""
    started = time.perf_counter()
    await bench.set_up(PAIRS, args.starts + WAITED_STARTS, args.concurrency)
    warm = max(1, args.messages // 5)
    await bench.bridged_round("warm-up", warm, args.concurrency)
    await bench.raw_round("warm-up", warm, args.concurrency)
    bridged_starts = await bench.bridged_starts(0, args.starts, args.start_concurrency)
    waited, after = await bench.waited_calls(args.starts, WAITED_STARTS)
    await bench.use("stub")
    await bench.raw_round("warm-up", warm, args.concurrency)
    raw_starts = await bench.raw_starts(0, args.starts, args.start_concurrency)
    rounds: list[Round] = []
    for number in range(1, args.rounds + 1):
        # alone, bridged, raw + bridge; then the other way round: each path goes first, in the
        # middle and last equally often, and the stub and the bridge swap places only twice.
        order = (ALONE, BRIDGED, RAW_BRIDGE) if number % 2 else (RAW_BRIDGE, BRIDGED, ALONE)
        for path in order:
            await bench.use("stub" if path == ALONE else "bridge")
            label = f"r{number}"
            if path == BRIDGED:
                rounds.append(await bench.bridged_round(label, args.messages, args.concurrency))
            else:
                rounds.append(await bench.raw_round(label, args.messages, args.concurrency))
    await bench.use("bridge")
    typed, accepted, failures = await bench.typed(args.typed_rooms, args.typed, args.typed_rate)
    report(bench, args, rounds, (raw_starts, bridged_starts), (waited, after), typed)
    print(
        f"\nMatrix → LMS: {accepted} typed messages accepted, {failures} refused; webhook calls "
        f"{bench.receiver.calls}, bad signatures {bench.receiver.bad_signatures}; the run took "
        f"{time.perf_counter() - started:.0f} s ({os.cpu_count()} CPUs, database "
        f"{bench.config.database.url.split(':', 1)[0]})"
    )


def report(
    bench: Bench,
    args: argparse.Namespace,
    rounds: list[Round],
    starts: tuple[Round, Round],
    calls: tuple[Counter[str], Counter[str]],
    typed: dict[str, list[float]],
) -> None:
    """The tables."""
    print(
        f"\nLMS → Matrix: {args.messages} messages per round and path over {PAIRS} rooms, "
        f"concurrency {args.concurrency}. CPU per message of each process over the round and "
        "until everything it caused was done; here = the load generator, stub and webhook "
        "receiver. SQL, commits, reads and homeserver calls are the bridge's, from its metrics.\n"
    )
    by_path = {path: [r for r in rounds if r.path == path] for path in (ALONE, BRIDGED, RAW_BRIDGE)}
    rows = [table_row(r.label, [r]) for r in rounds]
    rows += [table_row("all", by_path[path]) for path in by_path]
    print_table(
        ["round", "path", "sent", "errors", "msg/s", "p50 ms", "p99 ms", *USAGE_HEADERS], rows
    )
    alone = overall_rate(by_path[ALONE])
    ratios = {path: overall_rate(by_path[path]) / alone for path in (BRIDGED, RAW_BRIDGE)}
    per_round = ", ".join(
        f"r{n}: {b.rate / a.rate:.2f}"
        for n, (a, b) in enumerate(zip(by_path[ALONE], by_path[BRIDGED], strict=True), start=1)
    )
    bridged_cpu = usage_columns(by_path[BRIDGED])[0]
    raw_cpu = usage_columns(by_path[RAW_BRIDGE])[0]
    print(
        f"\nbridged / alone: {ratios[BRIDGED]:.2f} ({per_round}); target ≥ 0.90: "
        f"{verdict(ratios[BRIDGED], 0.9)}. raw + bridge / alone: {ratios[RAW_BRIDGE]:.2f}."
    )
    if isinstance(bridged_cpu, float) and isinstance(raw_cpu, float):
        print(
            f"bridge CPU per bridged message {bridged_cpu:.1f} ms (target ≤ 4: "
            f"{verdict(bridged_cpu, 4, higher=False)}); per ingested event {raw_cpu:.1f} ms "
            f"(target ≤ 2: {verdict(raw_cpu, 2, higher=False)})"
        )
    # Bridge CPU over Synapse's in the same rounds: the machine's speed cancels out of it, so
    # runs on a slower day still compare.
    shares = [
        cpu / synapse_cpu
        for cpu, synapse_cpu in (usage_columns(by_path[p])[:2] for p in (BRIDGED, RAW_BRIDGE))
        if isinstance(cpu, float) and isinstance(synapse_cpu, float)
    ]
    if len(shares) == 2:
        print(
            f"bridge CPU / Synapse CPU in the same rounds: bridged {shares[0]:.2f}, "
            f"raw + bridge {shares[1]:.2f}"
        )
    for path in (BRIDGED, RAW_BRIDGE):
        made: Counter[str] = Counter()
        for r in by_path[path]:
            made.update(homeserver_calls(r.usage.counters))
        sent = sum(r.sent for r in by_path[path])
        print(
            f"the bridge's homeserver calls per message, {path}: "
            + (", ".join(f"{k} {v / sent:.2f}" for k, v in made.most_common()) or "none")
        )
    disturbed = [f"{r.label} {r.path}" for r in rounds if r.usage.disturbed()]
    if disturbed:
        print(
            f"other processes used more than {DISTURBED:.0%} of a core during "
            f"{', '.join(disturbed)}: those rates (and the ratios) are disturbed; run again on "
            "an idle machine"
        )

    raw, bridged = starts
    print(
        f"\nNew conversations: {args.starts} each at concurrency {args.start_concurrency}; "
        "the raw sequence is register × 2, createRoom, join × 2 (with the stub on the bridge's "
        "port); the bridge's CPU and calls include what it does after answering.\n"
    )
    print_table(
        ["path", "made", "errors", "starts/s", "p50 ms", "p99 ms", "bridge CPU ms", "HS calls"],
        [
            [
                r.path,
                r.sent,
                r.errors,
                overall_rate([r]),
                percentile(r.latencies, 50),
                percentile(r.latencies, 99),
                per_message(r.usage.bridge_cpu, r.sent),
                per_message(sum(homeserver_calls(r.usage.counters).values()), r.sent, 1),
            ]
            for r in (raw, bridged)
        ],
    )
    rate_ratio = overall_rate([bridged]) / overall_rate([raw])
    p50_ratio = percentile(bridged.latencies, 50) / percentile(raw.latencies, 50)
    waited, after = calls
    print(
        f"\nbridged / raw starts per second: {rate_ratio:.2f} (target ≥ 0.80: "
        f"{verdict(rate_ratio, 0.8)}); p50 bridged / raw: {p50_ratio:.2f} (target ≤ 1.5: "
        f"{verdict(p50_ratio, 1.5, higher=False)})"
    )
    per_start = sum(waited.values()) / WAITED_STARTS
    print(
        f"homeserver calls the LMS waits for, per start: {per_start:.1f} (target ≤ 6: "
        f"{verdict(per_start, 6, higher=False)}); after the answer: "
        f"{sum(after.values()) / WAITED_STARTS:.1f}"
    )
    print_table(
        ["call", f"waited for ({WAITED_STARTS} starts)", "after the answer"],
        [[name, waited[name], after[name]] for name in sorted(set(waited) | set(after))],
    )

    print(
        f"\nMatrix → LMS: {args.typed} messages typed in matrix-nio clients into "
        f"{args.typed_rooms} rooms at {args.typed_rate:g}/s (open loop); latency from the "
        "client's send\n"
    )
    print_table(
        ["stage", "seen", "p50 ms", "p99 ms", "max ms"],
        [
            [stage, len(v), percentile(v, 50), percentile(v, 99), max(v)]
            if v
            else [stage, 0, "-", "-", "-"]
            for stage, v in typed.items()
        ],
    )
    hook, sync = typed["LMS webhook received it"], typed["other participant's /sync"]
    if hook and sync:
        ratio = percentile(hook, 99) / percentile(sync, 99)
        print(
            f"webhook p99 / /sync p99: {ratio:.2f} (target ≤ 1.5: "
            f"{verdict(ratio, 1.5, higher=False)})"
        )


def bench_config(folder: Path, database_url: str, synapse: LocalSynapse, webhook: str) -> Config:
    """The bridge's config: the webhook set, the per-person send limit out of the way."""
    config = bridge_config(folder, database_url, synapse.url)
    assert config.source is not None
    write_back(
        config.source,
        {
            "lms.webhook_url": webhook,
            "lms.webhook_secret": WEBHOOK_SECRET,
            "messages.per_user_per_minute": 1_000_000,
        },
    )
    return dataclasses.replace(
        config,
        lms=dataclasses.replace(config.lms, webhook_url=webhook, webhook_secret=WEBHOOK_SECRET),
    )


async def run(args: argparse.Namespace, database_url: str) -> None:
    """Start everything, measure, print the tables."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        receiver = WebhookReceiver(WEBHOOK_SECRET)
        await receiver.start()
        synapse = LocalSynapse(folder / "synapse", server_name="bench.local")
        config = bench_config(folder, database_url, synapse, receiver.url)
        write_registration(config, folder / "registration.yaml")
        synapse.registration_files = [folder / "registration.yaml"]
        await asyncio.to_thread(synapse.start)
        bridge = BridgeProcess(config, folder / "bridge.log")
        bench = Bench(synapse, bridge, config, receiver)
        try:
            await asyncio.to_thread(bridge.start)
            bench.mode = "bridge"
            await asyncio.to_thread(synapse.register_user, "admin", "admin-pw", admin=True)
            bench.admin_token = await asyncio.to_thread(synapse.login, "admin", "admin-pw")
            async with bench.sessions(args.concurrency):
                await measure(bench, args)
        finally:
            await bench.stub.stop()
            await asyncio.to_thread(bridge.stop)
            await asyncio.to_thread(synapse.stop)
            await receiver.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages per round and path")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each path (after warm-up)")
    parser.add_argument("--starts", type=int, default=30, help="new conversations per path")
    parser.add_argument("--start-concurrency", type=int, default=5)
    parser.add_argument("--typed", type=int, default=300, help="messages typed in Matrix clients")
    parser.add_argument("--typed-rate", type=float, default=10.0, help="typed messages per second")
    parser.add_argument("--typed-rooms", type=int, default=10, help="rooms the typing goes to")
    parser.add_argument(
        "--database",
        default="sqlite",
        help="sqlite (default), postgresql (a fresh database on 127.0.0.1:5432), or a URL",
    )
    args = parser.parse_args()
    args.typed_rooms = min(args.typed_rooms, PAIRS)
    await on_database(args.database, lambda url: run(args, url))


if __name__ == "__main__":
    asyncio.run(main())
