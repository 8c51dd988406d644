"""The moderators' admin room: made or joined at start-up, moderators invited with power level
50, and a card for every report, edited when the report changes state so the room reads as a
live queue.

Cards are posted by a worker from the bridge's records (a report with no card, or a card that
shows an older state), so a report made while the homeserver is away gets its card later, and
none is posted twice: the transaction id follows the report and the state shown.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bridge.config import ModerationConfig
from bridge.matrix.client import (
    HomeserverClient,
    HomeserverError,
    new_txn_id,
)
from bridge.services.cards import Text, plain, report_card
from bridge.services.reports import ReportService
from bridge.services.workers import PassWorker
from bridge.store.moderation import ModerationRepository

log = logging.getLogger(__name__)
MODERATOR_POWER = 50
ROOM_NAME = "Moderation"
ROOM_TOPIC = (
    "Reports from the learning platform's Messages, one card each. Type !help for the commands."
)


class AdminRoomUnavailable(Exception):
    """The configured admin room can't be used; the message says why."""


def _power_levels() -> dict[str, Any]:
    # No `users`: the creator's own level stays as the room version gives it (unlimited from
    # version 12 on, when it must not be listed; 100 before). Moderators get theirs after.
    return {
        "users_default": 0,
        "events_default": 0,
        "state_default": MODERATOR_POWER,
        "invite": MODERATOR_POWER,
        "redact": MODERATOR_POWER,
        "kick": 100,
        "ban": 100,
    }


class AdminRoom(PassWorker):
    """Where the admin room is, keeping its moderators, and the card worker."""

    waiting_work = "posting report cards"

    def __init__(
        self,
        config: ModerationConfig,
        store: ModerationRepository,
        reports: ReportService,
        client: HomeserverClient,
        bot_user_id: str,
        server_name: str,
        alias_prefix: str,
    ) -> None:
        super().__init__()
        self._alias_prefix = alias_prefix
        self._config = config
        self._store = store
        self._reports = reports
        self._client = client
        self._bot = bot_user_id
        self._server_name = server_name
        self._room_id: str | None = None
        self._looked = False  # whether the store was asked (the router asks for every event)

    @property
    def moderators(self) -> tuple[str, ...]:
        """The Matrix IDs whose commands count."""
        return self._config.moderators

    @property
    def prefix(self) -> str:
        """What starts a command."""
        return self._config.command_prefix

    async def room_id(self) -> str | None:
        """The admin room (None before it is set up)."""
        if not self._looked:
            self._room_id = self._room_id or await self._store.admin_room()
            self._looked = True
        return self._room_id

    async def set_up(self) -> str:
        """Find, join or make the admin room, and invite the moderators. Raises
        AdminRoomUnavailable or HomeserverUnreachable."""
        configured = self._config.admin_room
        stored = await self._store.admin_room()
        bot = self._client.intent(self._bot)
        if configured.startswith("!"):
            room_id = await self._join(configured)
        elif configured.startswith("#"):
            try:
                found = await self._client.resolve_alias(configured)
            except HomeserverError as exc:
                raise AdminRoomUnavailable(
                    f"moderation.admin_room {configured} can't be looked up: {exc.message}"
                ) from exc
            if found is not None:
                room_id = await self._join(found)
            elif configured.endswith(f":{self._server_name}"):
                localpart = configured[1:].rsplit(":", 1)[0]
                room_id = await self._create(localpart)
            else:
                raise AdminRoomUnavailable(
                    f"moderation.admin_room {configured} doesn't exist, and the bot can only "
                    f"make rooms with aliases on {self._server_name}"
                )
        elif stored is not None and await self._is_member(stored):
            room_id = stored
        else:
            room_id = await self._create(None)
        if room_id != stored:
            await self._store.forget_cards()  # the new room gets every card
            await self._store.set_admin_room(room_id, datetime.now(UTC))
        self._room_id = room_id
        await self._keep_moderators(room_id, bot)
        log.info("admin room %s with moderators %s", room_id, ", ".join(self.moderators) or "-")
        self.wake()
        return room_id

    async def _create(self, alias_localpart: str | None) -> str:
        bot = self._client.intent(self._bot)
        try:
            room_id = await bot.create_private_room(
                ROOM_NAME, ROOM_TOPIC, alias_localpart, _power_levels()
            )
        except HomeserverError as exc:
            if exc.errcode == "M_EXCLUSIVE":
                raise AdminRoomUnavailable(
                    f"the bot can only make moderation.admin_room {self._config.admin_room} "
                    f"with an alias in the bridge's own namespace (#{self._alias_prefix}…), or "
                    "make the room yourself and invite the bot"
                ) from exc
            raise AdminRoomUnavailable(f"the bot could not make the admin room: {exc}") from exc
        log.info("made the admin room %s", room_id)
        return room_id

    async def _join(self, room_id: str) -> str:
        if await self._is_member(room_id):
            return room_id
        try:
            await self._client.intent(self._bot).join(room_id)
        except HomeserverError as exc:
            raise AdminRoomUnavailable(
                f"the bot can't join the admin room {self._config.admin_room}: invite "
                f"{self._bot} there first ({exc.message})"
            ) from exc
        return room_id

    async def _is_member(self, room_id: str) -> bool:
        try:
            return self._bot in await self._client.joined_members(room_id, self._bot)
        except HomeserverError:
            return False

    async def _keep_moderators(self, room_id: str, bot: Any) -> None:
        """Each moderator holds power level 50 and is invited unless already in the room."""
        try:
            levels = await bot.state(room_id, "m.room.power_levels")
            users = dict(levels.get("users", {}))
            missing = [m for m in self.moderators if int(users.get(m, 0)) < MODERATOR_POWER]
            if missing:
                users.update(dict.fromkeys(missing, MODERATOR_POWER))
                await bot.set_state(room_id, "m.room.power_levels", {**levels, "users": users})
        except HomeserverError as exc:
            log.warning("could not give the moderators power in %s: %s", room_id, exc)
        for moderator in self.moderators:
            member = await bot.state(room_id, "m.room.member", moderator)
            if member.get("membership") in ("join", "invite"):
                continue
            try:
                await bot.invite(room_id, moderator)
            except HomeserverError as exc:
                log.warning("could not invite moderator %s: %s", moderator, exc)

    # --- cards ---

    async def one_pass(self) -> float:
        """Post and edit the cards that are due, as reports come and change."""
        return 0 if await self.post_due() else 60

    async def post_due(self, batch: int = 20) -> bool:
        """Post or edit the cards that are due; True when more may be waiting."""
        room_id = await self.room_id()
        if room_id is None:
            return False
        due = await self._store.cards_due(batch)
        bot = self._client.intent(self._bot)
        for report_id, state, card in due:
            text = await self.card_of(report_id)
            if card is None or card.room_id != room_id:
                event_id = await bot.send_message(
                    room_id, text.content("m.text"), new_txn_id("card", report_id)
                )
            else:
                await bot.send_message(
                    room_id,
                    _replacement(card.event_id, text),
                    new_txn_id("card", f"{report_id}.{state}"),
                )
                event_id = card.event_id
            await self._store.card_posted(report_id, room_id, event_id, state, datetime.now(UTC))
        return len(due) == batch

    async def post_alert(self, text: str, key: str) -> None:
        """Post an alert in the admin room (once per `key`); nothing before it is set up."""
        room_id = await self.room_id()
        if room_id is None:
            log.warning("no admin room yet: alert not posted: %s", text)
            return
        await self._client.intent(self._bot).send_message(
            room_id, plain(text).content("m.text"), new_txn_id("alert", key)
        )

    async def card_of(self, report_id: str) -> Text:
        """The card of a report, as it stands."""
        return report_card(await self._reports.detail(report_id), self.prefix)


def _replacement(card_event_id: str, text: Text) -> dict[str, Any]:
    """An edit (`m.replace`) of a card."""
    new = text.content("m.text")
    return {
        **new,
        "body": f"* {text.body}",
        "formatted_body": f"* {text.html}",
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": card_event_id},
    }
