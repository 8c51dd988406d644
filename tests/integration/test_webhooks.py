"""Events reach the LMS's webhook signed, in order, through a receiver that fails for a while."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from aiohttp import web

from bridge.app import Bridge
from bridge.config import Config
from bridge.domain.signing import sign, verify
from tests.conftest import SynapseEnv
from tests.integration.test_messages import send, start_conversation
from tests.support.contract import ContractViolation, check_event
from tests.support.http import serve

pytestmark = pytest.mark.synapse


class Receiver:
    """A small LMS webhook endpoint that can refuse for a while. Every event it receives is
    checked against the OpenAPI document."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.failing_until = 0.0
        self._acknowledged: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.refused = 0
        self.bad_signatures = 0

    @property
    def acknowledged(self) -> list[dict[str, Any]]:
        """The events acknowledged, in order; fails the test once one broke the contract."""
        # Raised here, in the test, rather than in the handler, where the bridge would only
        # see a refusal and retry.
        if self.violations:
            raise ContractViolation("\n\n".join(self.violations))
        return self._acknowledged

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(
            self.secret, request.headers.get("X-Bridge-Signature", ""), body, int(time.time())
        ):
            self.bad_signatures += 1
            return web.Response(status=400)
        if time.monotonic() < self.failing_until:
            self.refused += 1
            return web.Response(status=500)
        event = await request.json()
        try:
            check_event(event, "webhook")
        except ContractViolation as violation:
            self.violations.append(str(violation))
        self._acknowledged.append(event)
        return web.Response(status=204)


def test_signature_round_trip() -> None:
    header = sign("s3cret", 1_700_000_000, b'{"a":1}')
    assert header.startswith("t=1700000000,v1=")
    assert verify("s3cret", header, b'{"a":1}', 1_700_000_010)
    assert not verify("other", header, b'{"a":1}', 1_700_000_010)
    assert not verify("s3cret", header, b'{"a":2}', 1_700_000_010)
    assert not verify("s3cret", header, b'{"a":1}', 1_700_001_000)  # too old


async def hooked(config: Config) -> tuple[Receiver, web.AppRunner, Config]:
    """A webhook receiver on loopback, and `config` pointing the bridge's webhook at it."""
    receiver = Receiver("hook-secret")
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner, port = await serve(app)
    lms = dataclasses.replace(
        config.lms, webhook_url=f"http://127.0.0.1:{port}/hook", webhook_secret="hook-secret"
    )
    return receiver, runner, dataclasses.replace(config, lms=lms)


async def test_every_event_arrives_signed_and_in_order_despite_failures(
    synapse_env: SynapseEnv, sqlite_url: str
) -> None:
    receiver, runner, config = await hooked(synapse_env.bridge_config(sqlite_url))
    instance = Bridge(config)
    await instance.start()
    try:
        ids, conversation = await start_conversation(instance)
        receiver.failing_until = time.monotonic() + 3  # the LMS is down for 3 s
        sent = []
        for n in range(5):
            status, message = await send(
                instance, conversation, sender=ids["student"], body=f"m{n}"
            )
            assert status == 201
            sent.append(message["id"])

        def mine() -> list[dict[str, Any]]:
            # The homeserver's older reports (other rooms) reach this new bridge too.
            return [
                e
                for e in receiver.acknowledged
                if e["data"].get("conversation_id") == conversation["id"]
            ]

        async with asyncio.timeout(40):
            while len(mine()) < 6:  # the conversation, then 5 messages
                await asyncio.sleep(0.2)
        assert receiver.refused > 0  # it really was down, and delivery waited
        assert receiver.bad_signatures == 0
        seqs = [e["seq"] for e in receiver.acknowledged]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert mine()[0]["type"] == "conversation.created"
        assert [e["data"]["message_id"] for e in mine()[1:]] == sent
        assert await instance.event_log.delivered_up_to() == seqs[-1]
    finally:
        await instance.stop()
        await runner.cleanup()
