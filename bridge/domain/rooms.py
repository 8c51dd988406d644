"""How a conversation room is laid out on Matrix (PRODUCT §3), as plain data.

The bot creates the room and keeps control of it: only it invites, kicks, changes state or
freezes the room; the two people may write. Clients show it as a DM named after the other
person: `m.direct` (written elsewhere) plus the bot marked as a service member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CONVERSATION_STATE = "org.lmsbridge.conversation"
# The power needed to act: 100 is the bot's alone (as the room's creator).
BOT_ONLY = 100
# Event types the two people may send while a conversation is open (events_default covers
# every other non-state type).
_PEOPLE_EVENTS = ("m.reaction", "m.room.redaction")


@dataclass(frozen=True)
class ConversationRoom:
    """What the bot asks the homeserver for when it creates a conversation room."""

    alias_localpart: str
    initial_state: list[dict[str, Any]]
    power_levels: dict[str, Any]
    federate: bool


def conversation_alias_localpart(prefix: str, conversation_id: str) -> str:
    """The alias reserved for a conversation's room (in the bridge's exclusive namespace).

    Creating the room under it makes creation idempotent: a retry after a crash finds the room
    by its alias instead of making a second one.
    """
    return f"{prefix}conv.{conversation_id}"


def conversation_room(
    prefix: str,
    conversation_id: str,
    bot: str,
    people: tuple[tuple[str, str], tuple[str, str]],
    federate: bool,
) -> ConversationRoom:
    """The room of a conversation between two people ((platform id, Matrix ID) each)."""
    service = {"service_members": [bot]}
    return ConversationRoom(
        alias_localpart=conversation_alias_localpart(prefix, conversation_id),
        initial_state=[
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
            {
                "type": "m.room.guest_access",
                "state_key": "",
                "content": {"guest_access": "forbidden"},
            },
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "shared"},
            },
            {"type": "io.element.functional_members", "state_key": "", "content": service},
            {"type": "m.room.member_hints", "state_key": "", "content": service},
            {
                "type": CONVERSATION_STATE,
                "state_key": "",
                "content": {
                    "conversation_id": conversation_id,
                    "users": [{"platform_id": p, "user_id": m} for p, m in people],
                },
            },
        ],
        power_levels={
            "users_default": 0,
            "events_default": 0,
            "state_default": BOT_ONLY,
            "invite": BOT_ONLY,
            "kick": BOT_ONLY,
            "ban": BOT_ONLY,
            "redact": BOT_ONLY,
            "events": {
                "m.room.encryption": BOT_ONLY,
                "m.room.name": BOT_ONLY,
                "m.room.topic": BOT_ONLY,
                "m.room.avatar": BOT_ONLY,
                "m.room.power_levels": BOT_ONLY,
                "m.room.history_visibility": BOT_ONLY,
                "m.room.tombstone": BOT_ONLY,
                "m.room.server_acl": BOT_ONLY,
                **dict.fromkeys(_PEOPLE_EVENTS, 0),
            },
        },
        federate=federate,
    )


def with_direct_room(direct: dict[str, Any], other: str, room_id: str) -> dict[str, Any] | None:
    """An `m.direct` map that lists `room_id` under `other` (None when it already does)."""
    rooms = direct.get(other)
    rooms = list(rooms) if isinstance(rooms, list) else []
    if room_id in rooms:
        return None
    return {**direct, other: [*rooms, room_id]}


def power_levels_for_state(current: dict[str, Any], state: str) -> dict[str, Any] | None:
    """The room's power levels with the two people allowed to post (`active`) or not
    (`read_only`: the room is frozen); None when `current` already says so."""
    level = 0 if state == "active" else BOT_ONLY
    events = dict(current.get("events") or {})
    wanted_events = {**events, **dict.fromkeys(_PEOPLE_EVENTS, level)}
    if current.get("events_default") == level and events == wanted_events:
        return None
    return {**current, "events_default": level, "events": wanted_events}
