"""The inbox page's live streams: the bridge's memory per open stream, and change delays.

One Synapse, and the bridge as a process of its own (`python -m bridge run`), so that its
resident memory can be read from /proc without this process's (the clients') in it. A roster of
500 student–tutor pairs (1,000 people), a conversation room for the first 100 pairs (all 500
cost Synapse over 3 minutes of CPU; `--conversations 500` for them all), one inbox session per
person and 1,000 `GET /embed/api/stream` held open at once by one aiohttp session. The bridge's
RSS is read before the streams open and once every one has received `ready`.

Then, with every stream open, students type messages in their own matrix-nio clients into their
conversation rooms at a steady rate (open loop), and for each message the delay is timed from
just before the client's send until the tutor's stream (the other participant's) reports the
matching `message.created` change; changes are matched to messages by message id (the bridge's
history gives each message's Matrix event id).

    python -m bench.live_streams [--pairs 500] [--conversations 100] [--streams 1000]
        [--messages 400] [--rate 20] [--senders 20] [--database sqlite|postgresql|URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from nio import AsyncClient, AsyncClientConfig, RoomSendResponse

from bench.common import (
    BODY_PADDING,
    Conversation,
    in_pool,
    on_database,
    percentile,
    print_table,
    progress,
    roster,
)
from bench.processes import (
    BridgeProcess,
    cpu_now,
    cpu_used,
    machine_busy_seconds,
    process_cpu_seconds,
    quiet,
    raise_fd_limit,
    rss_kib,
    synapse_and_bridge,
)
from bridge.config import Config
from bridge.demo.synapse import LocalSynapse

SETUP_CONCURRENCY = 10
# Pairs given a conversation room by default. Synapse spends about 0.4 s of CPU on each (the
# room, two accounts with their avatars, invites, joins), so all 500 would take over 3 minutes
# on their own; a stream's cost doesn't depend on whether its person has a conversation.
CONVERSATIONS = 100
SEEN_WITHIN = 10.0  # seconds: a change later than this counts as not seen
TARGET_P99_MS = 1000.0
FD_MARGIN = 512  # descriptors beyond the streams: Synapse and nio clients, databases, files


@dataclass
class LiveStream:
    """One person's open inbox stream, read as the page reads it (server-sent events)."""

    person: str
    conversation_id: str | None  # None: the person has none
    token: str
    requested: float = 0.0
    ready_at: float | None = None
    ended: bool = False
    error: str | None = None
    keepalives: int = 0
    created: dict[str, float] = field(default_factory=dict)  # message id → arrival
    seen: Counter[str] = field(default_factory=Counter)  # conversation id → message.created
    foreign: int = 0  # changes of a conversation that isn't this person's
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, http: aiohttp.ClientSession, base: str) -> None:
        """Hold the stream open and note each change until cancelled or the stream ends."""
        self.requested = time.perf_counter()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        try:
            async with http.get(f"{base}/embed/api/stream", headers=headers) as response:
                if response.status != 200:
                    self.error = f"HTTP {response.status}: {(await response.text())[:200]}"
                    return
                fields: dict[str, str] = {}
                async for raw in response.content:
                    line = raw.decode().rstrip("\r\n")
                    if line.startswith(":"):
                        self.keepalives += 1
                    elif line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                    elif fields:
                        self._event(fields, time.perf_counter())
                        fields = {}
        except aiohttp.ClientError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended = True
            self.ready.set()  # nobody waits for a stream that failed to open

    def _event(self, fields: dict[str, str], now: float) -> None:
        kind = fields.get("event", "message")
        if kind == "ready":
            self.ready_at = now
            self.ready.set()
        elif kind == "change":
            data: dict[str, Any] = json.loads(fields.get("data", "{}"))
            conversation = data.get("conversation_id")
            if conversation is not None and conversation != self.conversation_id:
                self.foreign += 1
            if data.get("type") == "message.created" and conversation:
                self.seen[conversation] += 1
                if data.get("message_id"):
                    self.created.setdefault(data["message_id"], now)

    @property
    def is_open(self) -> bool:
        return self.ready_at is not None and not self.ended


@dataclass
class Measured:
    """What one run found."""

    streams_open: int = 0
    stream_errors: list[str] = field(default_factory=list)
    open_ms: list[float] = field(default_factory=list)
    open_seconds: float = 0.0
    rss_before: int = 0
    rss_after: int = 0
    rss_end: int = 0
    accepted: int = 0
    refused: int = 0
    delays: list[float] = field(default_factory=list)
    not_seen: int = 0
    senders_saw: int = 0
    foreign: int = 0
    send_seconds: float = 0.0
    bridge_cpu_open: float | None = None
    bridge_cpu_messages: float | None = None
    synapse_cpu_messages: float | None = None
    other_cpu_messages: float | None = None
    keepalives: int = 0


class LiveBench:
    """The running Synapse and bridge process, the people, their sessions and their streams."""

    def __init__(self, synapse: LocalSynapse, bridge: BridgeProcess, config: Config) -> None:
        self.synapse = synapse
        self.bridge = bridge
        self.base = f"http://127.0.0.1:{config.appservice.listen_port}"
        self.lms_headers = {"Authorization": f"Bearer {config.lms.api_token}"}
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        )
        self.admin_token = ""
        self.conversations: list[Conversation] = []
        self.people: list[str] = []  # platform ids: s0, t0, s1, t1, …
        self.streams: dict[str, LiveStream] = {}  # platform id → stream
        self._tasks: list[asyncio.Task[None]] = []

    async def lms(self, method: str, path: str, **named: Any) -> tuple[int, Any]:
        """One call of the LMS API; its status and JSON answer."""
        async with self.http.request(
            method, self.base + path, headers=self.lms_headers, **named
        ) as response:
            return response.status, await response.json()

    async def set_up(self, pairs: int, conversations: int) -> None:
        """The roster, a conversation for each of the first `conversations` pairs, and one open
        session per person."""
        status, answer = await self.lms(
            "POST", "/api/v1/roster/bulk", json={"records": roster(pairs)}
        )
        assert status == 200, answer
        found: dict[int, Conversation] = {}

        async def start(n: int) -> None:
            body = {"initiator": f"s{n}", "recipient": f"t{n}"}
            status, answer = await self.lms("POST", "/api/v1/conversations", json=body)
            assert status == 201, answer
            people = {p["user_id"]: p["matrix_id"] for p in answer["participants"]}
            found[n] = Conversation(
                answer["id"],
                answer["room_id"],
                (f"s{n}", f"t{n}"),
                (people[f"s{n}"], people[f"t{n}"]),
            )

        started = time.perf_counter()
        pids = (self.bridge.pid, self.synapse.pid)
        cpu = cpu_now(pids)
        await in_pool(conversations, SETUP_CONCURRENCY, start)
        self.conversations = [found[n] for n in range(conversations)]
        bridge_cpu, synapse_cpu = cpu_used(cpu, cpu_now(pids))
        progress(
            f"{conversations} conversations started in {time.perf_counter() - started:.0f} s "
            f"(CPU: bridge {bridge_cpu or 0:.0f} s, Synapse {synapse_cpu or 0:.0f} s)"
        )
        conversation_of = {p: c.id for c in self.conversations for p in c.people}
        self.people = [p for n in range(pairs) for p in (f"s{n}", f"t{n}")]

        async def open_session(n: int) -> None:
            person = self.people[n]
            status, link = await self.lms("POST", "/api/v1/embed/sessions", json={"user": person})
            assert status == 201, link
            code = link["url"].split("#code=", 1)[1]
            async with self.http.post(
                f"{self.base}/embed/api/session", json={"code": code}
            ) as response:
                session = await response.json()
                assert response.status == 201, session
            self.streams[person] = LiveStream(person, conversation_of.get(person), session["token"])

        started = time.perf_counter()
        await in_pool(len(self.people), SETUP_CONCURRENCY, open_session)
        progress(f"{len(self.people)} sessions opened in {time.perf_counter() - started:.0f} s")

    async def open_streams(self, count: int, result: Measured) -> None:
        """Open `count` streams at once and wait until each has received `ready`."""
        chosen = [self.streams[p] for p in self.people[:count]]
        cpu = process_cpu_seconds(self.bridge.pid)
        started = time.perf_counter()
        for stream in chosen:
            self._tasks.append(asyncio.create_task(stream.follow(self.http, self.base)))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(120):
                await asyncio.gather(*(s.ready.wait() for s in chosen))
        result.open_seconds = time.perf_counter() - started
        after = process_cpu_seconds(self.bridge.pid)
        if cpu is not None and after is not None:
            result.bridge_cpu_open = after - cpu
        result.open_ms = [(s.ready_at - s.requested) * 1000 for s in chosen if s.ready_at]
        result.stream_errors = [f"{s.person}: {s.error}" for s in chosen if s.error]
        result.streams_open = sum(s.is_open for s in chosen)
        progress(f"{result.streams_open} streams open in {result.open_seconds:.1f} s")

    async def login(self, mxid: str) -> AsyncClient:
        """The person's own Matrix client, logged in with a password the admin API set."""
        await asyncio.to_thread(self.synapse.set_password, self.admin_token, mxid, "pw")
        client = AsyncClient(
            self.synapse.url,
            mxid,
            config=AsyncClientConfig(encryption_enabled=False, request_timeout=60),
        )
        response = await client.login("pw", device_name="bench")
        assert client.access_token, response
        return client

    async def messages(
        self, clients: list[AsyncClient], count: int, rate: float, result: Measured
    ) -> None:
        """`count` messages typed by the students of the first conversations, in turn, at
        `rate` per second; each is timed until the tutor's stream reports it."""
        rooms = len(clients)
        sent: dict[str, tuple[int, float]] = {}  # event id → (conversation index, send time)
        per_room: Counter[int] = Counter()
        pids = (self.bridge.pid, self.synapse.pid)
        cpu = cpu_now(pids)
        machine, own = machine_busy_seconds(), time.process_time()

        async def type_one(n: int) -> None:
            room = n % rooms
            started = time.perf_counter()
            response = await clients[room].room_send(
                self.conversations[room].room_id,
                "m.room.message",
                {"msgtype": "m.text", "body": f"live {n}" + BODY_PADDING},
            )
            if isinstance(response, RoomSendResponse):
                sent[response.event_id] = (room, started)
                per_room[room] += 1
            else:
                result.refused += 1

        progress(f"typing {count} messages into {rooms} rooms at {rate:g}/s")
        begin = time.perf_counter()
        typing = []
        for n in range(count):  # open loop: each message starts on schedule
            delay = begin + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            typing.append(asyncio.create_task(type_one(n)))
        await asyncio.gather(*typing)
        result.send_seconds = time.perf_counter() - begin
        tutors = [self.streams[c.people[1]] for c in self.conversations[:rooms]]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SEEN_WITHIN):
                while any(
                    t.seen[self.conversations[r].id] < per_room[r] for r, t in enumerate(tutors)
                ):
                    await asyncio.sleep(0.05)
        used = cpu_used(cpu, cpu_now(pids))
        machine_after, own_after = machine_busy_seconds(), time.process_time()
        result.bridge_cpu_messages, result.synapse_cpu_messages = used
        if machine is not None and machine_after is not None and None not in used:
            mine = sum(u for u in used if u is not None) + own_after - own
            result.other_cpu_messages = max(0.0, machine_after - machine - mine)

        message_ids = await self._message_ids(rooms)
        result.accepted = len(sent)
        for event_id, (room, started) in sent.items():
            message_id = message_ids.get(event_id)
            arrival = tutors[room].created.get(message_id or "")
            if arrival is None or arrival - started > SEEN_WITHIN:
                result.not_seen += 1
            else:
                result.delays.append((arrival - started) * 1000)
            student = self.streams[self.conversations[room].people[0]]
            result.senders_saw += (message_id or "") in student.created

    async def _message_ids(self, rooms: int) -> dict[str, str]:
        """Matrix event id → the bridge's message id, from the conversations' history."""
        found: dict[str, str] = {}
        for conversation in self.conversations[:rooms]:
            params = {"as": conversation.people[0], "limit": "200"}
            while True:
                status, page = await self.lms(
                    "GET", f"/api/v1/conversations/{conversation.id}/messages", params=params
                )
                assert status == 200, page
                for message in page["messages"]:
                    if message.get("event_id"):
                        found[message["event_id"]] = message["id"]
                if not page.get("next_before"):
                    break
                params["before"] = page["next_before"]
        return found

    async def close(self) -> None:
        """Close every stream (as pages going away do) and the HTTP session."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.close()


async def measure(bench: LiveBench, args: argparse.Namespace) -> Measured:
    """Set up, open the streams, send the messages; the findings."""
    result = Measured()
    await bench.set_up(args.pairs, args.conversations)
    senders = [await bench.login(c.mxids[0]) for c in bench.conversations[: args.senders]]
    try:
        progress(f"bridge settled after {await quiet(bench.bridge.pid):.1f} s")
        result.rss_before = rss_kib(bench.bridge.pid)
        await bench.open_streams(args.streams, result)
        await asyncio.sleep(2)  # what a stream holds is allocated by now; let the rest settle
        result.rss_after = rss_kib(bench.bridge.pid)
        await bench.messages(senders, args.messages, args.rate, result)
        result.rss_end = rss_kib(bench.bridge.pid)
        streams = list(bench.streams.values())
        result.foreign = sum(s.foreign for s in streams)
        result.keepalives = sum(s.keepalives for s in streams)
        still_open = sum(s.is_open for s in streams)
        if still_open != result.streams_open:
            progress(f"only {still_open} of {result.streams_open} streams were still open")
            result.streams_open = min(result.streams_open, still_open)
    finally:
        for client in senders:
            await client.close()
    return result


async def run(args: argparse.Namespace, database_url: str) -> None:
    """Start Synapse and the bridge's process, measure, stop everything, print the table."""
    limit = raise_fd_limit(args.streams + FD_MARGIN)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        synapse, config, bridge = synapse_and_bridge(folder, database_url)
        bench: LiveBench | None = None
        stopped_in = 0.0
        try:
            await asyncio.to_thread(synapse.start)
            await asyncio.to_thread(bridge.start)
            progress(f"Synapse and the bridge (pid {bridge.pid}) running; open files {limit}")
            await asyncio.to_thread(synapse.register_user, "admin", "admin-pw", admin=True)
            bench = LiveBench(synapse, bridge, config)
            bench.admin_token = await asyncio.to_thread(synapse.login, "admin", "admin-pw")
            result = await measure(bench, args)
        finally:
            if bench is not None:
                await bench.close()
            stopped_in = await asyncio.to_thread(bridge.stop)
            log = bridge.tail() if bridge.log_path.exists() else ""
            await asyncio.to_thread(synapse.stop)
    report(args, result, stopped_in, bridge.returncode, log)


def report(
    args: argparse.Namespace, result: Measured, stopped_in: float, code: int | None, log: str
) -> None:
    """Print the table and what else the run noticed."""
    per_stream = (result.rss_after - result.rss_before) / max(result.streams_open, 1)
    delays = result.delays
    print(
        f"\nLive streams: {args.pairs * 2} people ({args.conversations} pairs with a "
        f"conversation), {args.streams} streams opened at once by one "
        f"HTTP session; the bridge's own process's RSS before and once every stream had its "
        f"`ready`. Then {args.messages} messages typed in Matrix clients into {args.senders} "
        f"rooms at {args.rate:g}/s (open loop), each timed from the send until the other "
        f"participant's stream reported it (target p99 ≤ {TARGET_P99_MS:.0f} ms; a change later "
        f"than {SEEN_WITHIN:.0f} s counts as not seen).\n"
    )
    print_table(
        [
            "streams open",
            "RSS before MiB",
            "RSS after MiB",
            "KiB/stream",
            "messages",
            "p50 ms",
            "p99 ms",
            "max ms",
            f"not seen in {SEEN_WITHIN:.0f} s",
        ],
        [
            [
                result.streams_open,
                result.rss_before / 1024,
                result.rss_after / 1024,
                per_stream,
                result.accepted,
                percentile(delays, 50) if delays else "-",
                percentile(delays, 99) if delays else "-",
                max(delays) if delays else "-",
                result.not_seen,
            ]
        ],
    )
    p99 = percentile(delays, 99) if delays else float("inf")
    verdict = "met" if p99 <= TARGET_P99_MS and result.not_seen == 0 and delays else "MISSED"
    print(f"\np99 ≤ {TARGET_P99_MS:.0f} ms and every message seen: {verdict}")
    opening = result.open_ms
    if opening:
        print(
            f"opening: all {len(opening)} `ready` within {result.open_seconds:.1f} s; request to "
            f"`ready` p50 {percentile(opening, 50):.0f} ms, p99 {percentile(opening, 99):.0f} ms, "
            f"max {max(opening):.0f} ms; bridge CPU "
            + (f"{result.bridge_cpu_open:.2f} s" if result.bridge_cpu_open is not None else "-")
        )
    for error in result.stream_errors[:5]:
        print(f"  stream failed: {error}")
    if len(result.stream_errors) > 5:
        print(f"  … {len(result.stream_errors) - 5} more streams failed")

    def cpu(seconds: float | None) -> str:
        return "-" if seconds is None else f"{100 * seconds / result.send_seconds:.0f}%"

    print(
        f"messages: {result.accepted} accepted by Synapse, {result.refused} refused, sent over "
        f"{result.send_seconds:.1f} s; the senders' own streams saw {result.senders_saw}; "
        f"changes of someone else's conversation: {result.foreign}; keep-alives "
        f"{result.keepalives}"
    )
    print(
        f"CPU while the messages flowed (share of one core): bridge "
        f"{cpu(result.bridge_cpu_messages)}, Synapse {cpu(result.synapse_cpu_messages)}, other "
        f"processes {cpu(result.other_cpu_messages)}; bridge RSS at the end "
        f"{result.rss_end / 1024:.1f} MiB"
    )
    if result.other_cpu_messages is not None and (
        result.other_cpu_messages > 0.2 * result.send_seconds
    ):
        print("other processes used more than 20% of a core: the delays are disturbed")
    print(
        f"the bridge stopped {stopped_in:.1f} s after SIGTERM with exit code {code}; "
        f"{os.cpu_count()} CPUs, 1-minute load average {os.getloadavg()[0]:.1f}"
    )
    problems = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    if problems or stopped_in > 5:
        print("\nThe bridge's log (warnings and errors), its last lines:\n" + log[-2000:])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500, help="student–tutor pairs (2 people)")
    parser.add_argument(
        "--conversations",
        type=int,
        default=CONVERSATIONS,
        help="pairs given a conversation room (each costs Synapse about 0.4 s of CPU)",
    )
    parser.add_argument("--streams", type=int, default=1000, help="streams held open at once")
    parser.add_argument("--messages", type=int, default=400, help="messages typed in all")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--senders", type=int, default=20, help="rooms (students) typing")
    parser.add_argument(
        "--database",
        default="sqlite",
        help="sqlite (default), postgresql (a fresh database on 127.0.0.1:5432), or a URL",
    )
    args = parser.parse_args()
    args.streams = min(args.streams, args.pairs * 2)
    args.conversations = max(1, min(args.conversations, args.pairs))
    args.senders = max(1, min(args.senders, args.conversations, args.streams // 2))
    await on_database(args.database, lambda url: run(args, url))


if __name__ == "__main__":
    asyncio.run(main())
