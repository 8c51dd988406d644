"""Parsing appservice transactions (the wire format), without a server."""

from __future__ import annotations

import copy

import pytest

from bridge.matrix.appservice import InvalidTransaction, parse_transaction


def _event(n: int, room: str = "!r:hs") -> dict[str, object]:
    return {
        "event_id": f"$e{n}",
        "room_id": room,
        "type": "m.room.message",
        "sender": "@a:hs",
        "content": {"body": str(n)},
        "unsigned": {"age": 10},
    }


def test_events_and_ephemeral_are_parsed() -> None:
    receipt = {"type": "m.receipt", "room_id": "!r:hs", "content": {}}
    parsed = parse_transaction(
        {
            "events": [_event(1), _event(2)],
            "ephemeral": [receipt],
            "de.sorunome.msc2409.ephemeral": [receipt],
        }
    )
    assert [e.event_id for e in parsed.events] == ["$e1", "$e2", None]
    assert [e.kind for e in parsed.events] == ["timeline", "timeline", "ephemeral"]
    assert parsed.skipped == 0


@pytest.mark.parametrize("body", [[], "x", None, {"events": {}}, {"ephemeral": "x"}])
def test_bodies_that_are_not_transactions_are_refused(body: object) -> None:
    with pytest.raises(InvalidTransaction):
        parse_transaction(body)


def test_malformed_single_events_are_skipped_not_fatal() -> None:
    parsed = parse_transaction(
        {"events": [_event(1), "junk", {"type": "m.room.message"}, {"event_id": 5}, _event(2)]}
    )
    assert [e.event_id for e in parsed.events] == ["$e1", "$e2"]
    assert parsed.skipped == 3


def test_fingerprint_ignores_fields_recomputed_on_resend() -> None:
    body = {"events": [_event(1), _event(2)]}
    resent = copy.deepcopy(body)
    resent["events"][0]["unsigned"]["age"] = 99999  # type: ignore[index]
    assert parse_transaction(body).fingerprint == parse_transaction(resent).fingerprint
    other = {"events": [_event(1), _event(3)]}
    assert parse_transaction(body).fingerprint != parse_transaction(other).fingerprint
    empty = parse_transaction({})
    assert empty.events == []
