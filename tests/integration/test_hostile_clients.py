"""People use their bridged accounts from any Matrix client, and some of them try to get round
the bridge: forged room state, self-renames, strange content. Against a real Synapse."""

from __future__ import annotations

from typing import Any

import pytest
from nio import AsyncClient, RoomCreateResponse, RoomVisibility

from bridge.app import Bridge
from bridge.domain.rooms import CONVERSATION_STATE
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_conversation_life import _left, eventually
from tests.integration.test_conversations import matrix_client
from tests.integration.test_messages import send, start_conversation
from tests.integration.test_roster_api import call

pytestmark = pytest.mark.synapse


def forged_state(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    """Room state claiming to be `conversation`, readable by anyone (so by the bot too)."""
    return [
        {
            "type": CONVERSATION_STATE,
            "state_key": "",
            "content": {"conversation_id": conversation["id"], "users": []},
        },
        {
            "type": "m.room.history_visibility",
            "state_key": "",
            "content": {"history_visibility": "world_readable"},
        },
    ]


async def _seen(recorder: Recorder, room_id: str, event_type: str) -> None:
    """Until the bridge has handled an event of `event_type` in `room_id`."""
    await recorder.wait_for(
        lambda r: any(e.room_id == room_id and e.event_type == event_type for e in r.events),
        timeout=20,
    )


async def test_a_room_with_forged_conversation_state_is_a_foreign_room(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    """Two students with no relationship can't get a shared room by dressing one up as a
    conversation: only the bridge's own records say which rooms are conversations."""
    instance, _ = bridge
    ids, conversation = await start_conversation(instance)
    await instance.accounts.ensure_account(ids["other"])
    student = await matrix_client(synapse_env, instance, ids["student"])
    other = await matrix_client(synapse_env, instance, ids["other"])
    try:
        forged = await student.room_create(
            visibility=RoomVisibility.public, initial_state=forged_state(conversation)
        )
        assert isinstance(forged, RoomCreateResponse)
        # Opened to anyone, the room is no place for a bridged account.
        assert await eventually(lambda: _left(synapse_env, student, forged.room_id))
        # Alone there another student may stay; once an outsider joins, they leave too.
        await other.join(forged.room_id)
        outsider_id, password = synapse_env.new_user()
        outsider = AsyncClient(synapse_env.synapse.url, outsider_id)
        await outsider.login(password)
        try:
            await outsider.join(forged.room_id)
            assert await eventually(lambda: _left(synapse_env, other, forged.room_id))
        finally:
            await outsider.close()
    finally:
        await student.close()
        await other.close()


async def test_forged_state_and_encryption_elsewhere_leave_the_real_conversation_alone(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, recorder = bridge
    ids, conversation = await start_conversation(instance)
    student: AsyncClient = await matrix_client(synapse_env, instance, ids["student"])
    try:
        side = await student.room_create(
            initial_state=[
                *forged_state(conversation),
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                },
            ]
        )
        assert isinstance(side, RoomCreateResponse)
        await _seen(recorder, side.room_id, "m.room.encryption")
    finally:
        await student.close()
    _status, inbox = await call(instance, "GET", f"/api/v1/users/{ids['tutor']}/conversations")
    assert inbox["conversations"][0]["encrypted"] is False
    status, message = await send(instance, conversation, sender=ids["tutor"], body="still here")
    assert status == 201, message
