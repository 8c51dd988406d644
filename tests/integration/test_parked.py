"""The operator's view: what the bridge set aside is listed by `lms-bridge failed list` and put
back in line by `lms-bridge failed retry`, and a running bridge then does it."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.cli import main
from bridge.config import write_back
from bridge.store.inbox import NewEvent, StoredEvent
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_messages import start_conversation
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


async def test_set_aside_work_is_listed_and_put_back_in_line(
    bridge: tuple[Bridge, Recorder],
    synapse_env: SynapseEnv,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    instance, recorder = bridge
    config_path = tmp_path / "config.yaml"
    shutil.copyfile(synapse_env.config_path, config_path)
    write_back(config_path, {"database.url": database_url})
    ids, conversation = await start_conversation(instance)

    # An event whose handling fails (while the cause lasts) is set aside after its attempts.
    broken = {"on": True}

    async def fragile(event: StoredEvent) -> None:
        if event.event_id == "$parked" and broken["on"]:
            raise RuntimeError("the cause of the trouble")

    instance.router.observe("m.room.message", fragile)
    instance.processor._max_attempts = 1  # set aside at the first failure
    payload: dict[str, Any] = {
        "event_id": "$parked",
        "room_id": "!elsewhere:test.local",
        "type": "m.room.message",
        "sender": "@someone:test.local",
        "origin_server_ts": 1,
        "content": {"msgtype": "m.text", "body": "hi"},
    }
    await instance.inbox.store_events(
        [NewEvent("$parked", payload["room_id"], "timeline", "m.room.message", payload)],
        datetime.now(UTC),
    )
    instance.processor.wake()

    async def set_aside() -> bool:
        return bool(await instance.inbox.failed(10))

    assert await eventually(set_aside)
    # A message the homeserver refused for good.
    message, _, _ = await instance.messages._messages.add_outgoing(
        conversation["id"],
        ids["student"],
        "c-refused",
        "refused once",
        "plain",
        None,
        datetime.now(UTC) - timedelta(minutes=1),
    )
    await instance.messages._messages.mark_failed(message.id, "refused", datetime.now(UTC))

    code, out = await asyncio.to_thread(_cli, capsys, "failed", "list", "-c", str(config_path))
    assert code == 0
    assert "events set aside: 1" in out and "$parked" in out and "the cause of the trouble" in out
    assert "messages refused by the homeserver: 1" in out and message.id in out
    code, _ = await asyncio.to_thread(_cli, capsys, "failed", "retry", "-c", str(config_path))
    assert code == 2  # retry what?

    broken["on"] = False
    code, out = await asyncio.to_thread(
        _cli, capsys, "failed", "retry", "--all", "-c", str(config_path)
    )
    assert (code, out.strip()) == (0, "put back in line: 1 event(s), 1 message(s)")
    await recorder.wait_for(lambda r: r.ids().count("$parked") >= 1, timeout=20)

    async def sent() -> bool:
        current = await instance.messages._messages.get(message.id)
        return current is not None and current.status == "sent"

    assert await eventually(sent)
    code, out = await asyncio.to_thread(_cli, capsys, "failed", "list", "-c", str(config_path))
    assert "events set aside: 0" in out and "messages refused by the homeserver: 0" in out
