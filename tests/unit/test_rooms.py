"""Conversation room layout: freezing and reopening through power levels."""

from __future__ import annotations

from bridge.domain.rooms import BOT_ONLY, conversation_room, power_levels_for_state


def _levels() -> dict[str, object]:
    room = conversation_room(
        "_lms_", "c1", "@bot:x", (("a", "@_lms_a:x"), ("b", "@_lms_b:x")), False
    )
    return room.power_levels


def test_a_new_room_lets_both_people_post_but_only_the_bot_manage() -> None:
    levels = _levels()
    assert levels["events_default"] == 0
    assert levels["state_default"] == levels["invite"] == levels["kick"] == BOT_ONLY
    assert power_levels_for_state(levels, "active") is None  # nothing to change


def test_freezing_stops_messages_reactions_and_redactions_and_reopening_undoes_it() -> None:
    frozen = power_levels_for_state(_levels(), "read_only")
    assert frozen is not None
    assert frozen["events_default"] == BOT_ONLY
    events = frozen["events"]
    assert isinstance(events, dict)
    assert events["m.reaction"] == events["m.room.redaction"] == BOT_ONLY
    assert events["m.room.power_levels"] == BOT_ONLY  # the rest is kept
    assert power_levels_for_state(frozen, "read_only") is None
    reopened = power_levels_for_state(frozen, "active")
    assert reopened == _levels()
