"""What the homeserver stored but never sent reaches the bridge through room history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nio import RoomSendResponse

from bridge.app import Bridge
from bridge.store.inbox import NewEvent
from tests.conftest import SynapseEnv
from tests.integration.test_conversations import matrix_client
from tests.integration.test_messages import feed, start_conversation
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


def _body(event: NewEvent) -> str:
    content = event.payload.get("content")
    return str(content.get("body", "")) if isinstance(content, dict) else ""


async def _published(instance: Bridge, conversation_id: str) -> list[str]:
    events = await feed(instance, conversation_id)
    return [e["data"]["body"] for e in events if e["type"] == "message.created"]


async def test_events_the_homeserver_never_sent_are_caught_up_at_start(
    synapse_env: SynapseEnv, database_url: str
) -> None:
    """As when Synapse is killed between storing an event and sending its transaction: the
    bridge never saw two messages. Started again, it finds them in the room's history."""
    config = synapse_env.bridge_config(database_url)
    instance = Bridge(config)
    await instance.start()
    store = instance.inbox.store_transaction

    async def losing(txn_id: str, fingerprint: str, events: list[NewEvent], *args: Any) -> Any:
        kept = [e for e in events if not _body(e).startswith("lost")]
        return await store(txn_id, fingerprint, kept, *args)

    instance.inbox.store_transaction = losing  # type: ignore[method-assign]
    try:
        ids, conversation = await start_conversation(instance)
        tutor = await matrix_client(synapse_env, instance, ids["tutor"])
        try:
            for body in ("lost one", "lost two", "marker"):
                sent = await tutor.room_send(
                    conversation["room_id"], "m.room.message", {"msgtype": "m.text", "body": body}
                )
                assert isinstance(sent, RoomSendResponse)
        finally:
            await tutor.close()

        async def marker_published() -> list[str] | None:
            bodies = await _published(instance, conversation["id"])
            return bodies if "marker" in bodies else None

        assert await eventually(marker_published) == ["marker"]
    finally:
        await instance.stop()

    again = Bridge(config)
    await again.start()
    try:

        async def all_published() -> list[str] | None:
            bodies = await _published(again, conversation["id"])
            return bodies if len(bodies) >= 3 else None

        assert sorted(await eventually(all_published)) == ["lost one", "lost two", "marker"]
        # The first pass found them; the second, a little later, is still to come.
        assert again.catch_up.passes_waiting == 1
        # Nothing twice, also after the second pass and the homeserver's own resends.
        assert await again.catch_up.catch_up(datetime.now(UTC) - timedelta(minutes=10)) == 0
    finally:
        await again.stop()
