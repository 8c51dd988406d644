"""The moderators' admin room: commands, reaction shortcuts, and who may be there.

Only the configured moderators' commands and reactions count; anyone else who tries is answered
"you are not a moderator" and nothing happens. Each command is answered in a reply. A shortcut
reaction on a card (✅ dismiss, 🗑️ delete, ⚠️ warn) makes the bot ask for a confirming ✅ on its
question; only that confirmation acts, once. Bridged accounts that are not moderators don't stay
in the room. Effects are keyed on the event that asked for them, so an event handled twice
(after a crash) acts once and is answered once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import cast

from bridge.contract.reports import ReportAction
from bridge.domain.commands import Command, CommandError, HelpShown, help_text, parse_command
from bridge.domain.formatting import replacement_of
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import HomeserverClient, HomeserverError, new_txn_id
from bridge.services.admin_room import AdminRoom
from bridge.services.cards import SHORTCUTS, Text, plain, report_line, short_id
from bridge.services.moderation import ModerationService
from bridge.services.policy import PolicyService, UnknownUser
from bridge.services.refusals import Refused
from bridge.services.reports import report_view
from bridge.services.suspensions import Suspensions, until_words
from bridge.store.conversations import ConversationRepository
from bridge.store.inbox import StoredEvent
from bridge.store.moderation import ModerationRepository, PromptRecord
from bridge.store.reports import ReportRecord, ReportRepository
from bridge.store.roster import RosterRepository

log = logging.getLogger(__name__)
NOT_A_MODERATOR = "You are not a moderator: only the configured moderators can act here."
CONFIRM = "✅"
LISTED = 20


class AdminRoomEvents:
    """The handlers of what happens in the admin room."""

    def __init__(
        self,
        room: AdminRoom,
        moderation: ModerationService,
        store: ModerationRepository,
        reports: ReportRepository,
        suspensions: Suspensions,
        policy: PolicyService,
        roster: RosterRepository,
        conversations: ConversationRepository,
        client: HomeserverClient,
        ids: MatrixIdMapper,
        bot_user_id: str,
    ) -> None:
        self._room = room
        self._moderation = moderation
        self._store = store
        self._reports = reports
        self._suspensions = suspensions
        self._policy = policy
        self._roster = roster
        self._conversations = conversations
        self._client = client
        self._ids = ids
        self._bot = bot_user_id

    # --- events ---

    async def on_message(self, event: StoredEvent) -> None:
        """A message in the admin room: a command, if it starts with the prefix."""
        sender = event.payload.get("sender")
        content = event.payload.get("content")
        if sender == self._bot or not isinstance(sender, str) or not isinstance(content, dict):
            return
        body = content.get("body")
        if not isinstance(body, str) or replacement_of(content) is not None:
            return  # an edited command is not run again
        if content.get("msgtype") not in ("m.text", "m.notice"):
            return
        text = body.strip()
        if not text.startswith(self._room.prefix):
            return
        assert event.event_id is not None
        if sender not in self._room.moderators:
            log.info("%s, not a moderator, tried %r in the admin room", sender, text[:80])
            await self._answer(event.event_id, plain(NOT_A_MODERATOR))
            return
        try:
            command = parse_command(text, self._room.prefix)
            if command is None:
                return
            answer = await self._run(command, sender)
        except HelpShown as shown:
            answer = plain(str(shown).strip())
        except CommandError as error:
            answer = plain(str(error))
        except Refused as refused:
            answer = plain(f"Not done: {refused.message}")
        await self._answer(event.event_id, answer)

    async def on_reaction(self, event: StoredEvent) -> None:
        """A reaction: a shortcut on a card, or the confirmation of one."""
        sender = event.payload.get("sender")
        content = event.payload.get("content")
        if sender == self._bot or not isinstance(sender, str) or not isinstance(content, dict):
            return
        relates = content.get("m.relates_to")
        if not isinstance(relates, dict) or relates.get("rel_type") != "m.annotation":
            return
        target, key = relates.get("event_id"), relates.get("key")
        if not isinstance(target, str) or not isinstance(key, str):
            return
        assert event.event_id is not None
        key = _plain_emoji(key)
        report_id = await self._store.report_of_card(target)
        if report_id is not None:
            action = next((a for k, a in SHORTCUTS.items() if _plain_emoji(k) == key), None)
            if action is None:
                return  # just a reaction
            if await self._refuse_stranger(sender, event.event_id, target):
                return
            await self._ask(report_id, action, sender, target, event.event_id)
            return
        if key != _plain_emoji(CONFIRM) or not await self._store.prompt_waiting(target):
            return
        if await self._refuse_stranger(sender, event.event_id, target):
            return
        prompt = await self._store.answer_prompt(target, datetime.now(UTC))
        if prompt is not None:  # None: confirmed already
            await self._confirmed(prompt, sender, event.event_id)

    async def _refuse_stranger(self, sender: str, event_id: str, target: str) -> bool:
        if sender in self._room.moderators:
            return False
        log.info("%s, not a moderator, reacted to %s in the admin room", sender, target)
        await self._answer(event_id, plain(NOT_A_MODERATOR), reply_to=target)
        return True

    async def on_member(self, event: StoredEvent) -> None:
        """A bridged account that is not a moderator doesn't stay in the admin room."""
        target = event.payload.get("state_key")
        content = event.payload.get("content")
        if event.room_id is None or not isinstance(target, str) or not isinstance(content, dict):
            return
        if content.get("membership") not in ("invite", "join"):
            return
        if target == self._bot or target in self._room.moderators:
            return
        if not self._ids.is_bridged(target):
            return
        try:
            await self._client.intent(target).leave(
                event.room_id, "Platform accounts don't take part in the moderators' room."
            )
        except HomeserverError as exc:
            log.warning("%s could not leave the admin room: %s", target, exc)

    # --- shortcuts ---

    async def _ask(
        self, report_id: str, action: str, moderator: str, card_event_id: str, reaction_id: str
    ) -> None:
        record = await self._reports.get(report_id)
        if record is None or record.state != "open":
            return
        room_id = await self._room.room_id()
        assert room_id is not None
        question = plain(
            f"{moderator}: {action} report {short_id(report_id)}? React {CONFIRM} to this "
            "message to confirm."
        )
        try:
            question_id = await self._client.intent(self._bot).send_message(
                room_id,
                {**question.content(), **_reply_to(card_event_id)},
                new_txn_id("ask", reaction_id),
            )
        except HomeserverError as exc:
            log.warning("could not ask to confirm %s of report %s: %s", action, report_id, exc)
            return
        prompt = PromptRecord(question_id, report_id, action, moderator)
        await self._store.add_prompt(prompt, datetime.now(UTC))

    async def _confirmed(self, prompt: PromptRecord, moderator: str, reaction_id: str) -> None:
        # Whoever confirms acts (a second moderator agreeing counts as theirs).
        action = cast(ReportAction, prompt.action)
        try:
            view = await self._moderation.act(prompt.report_id, moderator, action, None)
        except Refused as refused:
            answer = plain(f"Not done: {refused.message}")
        else:
            answer = plain(f"Done: report {short_id(view.id)} handled ({prompt.action}).")
        await self._answer(reaction_id, answer, reply_to=prompt.event_id)

    # --- commands ---

    async def _run(self, command: Command, moderator: str) -> Text:
        name = command.name
        if name == "help":
            return plain(help_text(self._room.prefix, command.topic))
        if name == "reports":
            found = await self._reports.latest(command.state, LISTED)
            if not found:
                return plain(f"No {command.state} reports.")
            lines = [report_line(report_view(r)) for r in found]
            return plain(
                f"{len(found)} {command.state} report(s), newest first:\n" + "\n".join(lines)
            )
        if name == "show":
            record = await self._report(command.report)
            return await self._room.card_of(record.id)
        if name in ("dismiss", "delete", "warn", "resolve"):
            record = await self._report(command.report)
            action = cast(ReportAction, name)
            view = await self._moderation.act(record.id, moderator, action, command.note)
            return plain(f"Done: report {short_id(view.id)} handled ({name}).")
        if name == "suspend":
            user = await self._person(command.user)
            suspension = await self._suspensions.suspend(
                user, moderator, command.days, command.note
            )
            return plain(f"{user}'s messaging is suspended {until_words(suspension)}.")
        if name == "unsuspend":
            user = await self._person(command.user)
            if await self._suspensions.lift(user, moderator):
                return plain(f"{user} may message again.")
            return plain(f"{user} was not suspended.")
        if name == "whois":
            return plain(await self._whois(await self._person(command.user)))
        if name == "can":
            return plain(await self._can(command))
        raise CommandError(f"{self._room.prefix}{name} is not handled")  # pragma: no cover

    async def _report(self, given: str | None) -> ReportRecord:
        prefix = (given or "").strip().lower()
        found = await self._reports.by_prefix(prefix)
        if not found:
            raise CommandError(f"No report {given!r}: give its id (8 characters do)")
        if len(found) > 1:
            raise CommandError(f"Several reports start with {given!r}: give more of the id")
        return found[0]

    async def _person(self, given: str | None) -> str:
        """A platform id from a platform id or a Matrix ID."""
        given = (given or "").strip()
        user_id = self._ids.platform_id(given) if given.startswith("@") else given
        if user_id is None or await self._roster.get_user(user_id) is None:
            raise CommandError(f"{given!r} is not anyone on the learning platform")
        return user_id

    async def _whois(self, user_id: str) -> str:
        person = await self._roster.get_user(user_id)
        assert person is not None
        lines = [
            f"{person.display_name} — {user_id} ({self._ids.user_id(user_id)})"
            + ("" if person.active else " · deactivated")
        ]
        for _institution, name, role in await self._roster.memberships_with_names(user_id):
            lines.append(f"{role} at {name}")
        for how, course, batch in await self._roster.batches_of(user_id, datetime.now(UTC)):
            lines.append(f"{how} {course} ({batch})")
        conversations = await self._conversations.involving([user_id])
        read_only = sum(1 for c in conversations if c.state == "read_only")
        lines.append(f"Conversations: {len(conversations)} ({read_only} read-only)")
        against = await self._reports.against(user_id, LISTED)
        lines.append(f"Reports against them: {len(against)}")
        lines.extend(f"  {report_line(report_view(r))}" for r in against[:5])
        suspension = await self._suspensions.in_force(user_id)
        if suspension is not None:
            lines.append(f"Messaging suspended {until_words(suspension)} by {suspension.moderator}")
        return "\n".join(lines)

    async def _can(self, command: Command) -> str:
        a, b = await self._person(command.user), await self._person(command.other)
        try:
            start = await self._policy.can_start(a, b)
            converse = await self._policy.can_converse(a, b)
        except UnknownUser as exc:
            raise CommandError(f"{exc.user_id!r} is not anyone on the learning platform") from None
        verdict = (
            "may start a conversation with"
            if start.allowed
            else "may not start a conversation with"
        )
        lines = [f"{a} {verdict} {b}: {start.reason}"]
        if not start.allowed and converse.allowed:
            lines.append(f"They may still write in an existing conversation: {converse.reason}")
        suspension = await self._suspensions.in_force(a)
        if suspension is not None:
            lines.append(f"But {a}'s messaging is suspended {until_words(suspension)}.")
        return "\n".join(lines)

    # --- answers ---

    async def _answer(self, event_id: str, text: Text, reply_to: str | None = None) -> None:
        """A reply from the bot (once, however often the event is handled)."""
        room_id = await self._room.room_id()
        assert room_id is not None
        try:
            await self._client.intent(self._bot).send_message(
                room_id,
                {**text.content(), **_reply_to(reply_to or event_id)},
                new_txn_id("answer", event_id),
            )
        except HomeserverError as exc:
            log.warning("answer to %s not posted: %s", event_id, exc)


def _plain_emoji(key: str) -> str:
    """A reaction key without variation selectors (clients send both forms)."""
    return key.replace("\ufe0f", "").strip()


def _reply_to(event_id: str) -> dict[str, object]:
    return {"m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}
