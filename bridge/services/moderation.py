"""What a moderator does with a report, the same from the admin room and from the LMS's API:
dismiss it, resolve it with a note, remove the message, warn the sender, or suspend their
messaging. Each outcome is published as `report.resolved` with the action, the moderator and the
note, so the reporter's LMS can tell them their report was handled.

The report is claimed first (resolving it commits once, so two moderators acting at the same
time can't both act); the effect follows, durably: a removal through the outbox, a suspension
through its own record. A warning is posted before the claim, so a homeserver that is away leaves
the report open rather than resolved without its warning (its transaction id follows the
report, so a retry never posts twice).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bridge.contract.events import UserWarned
from bridge.contract.reports import ReportAction, ReportView
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.client import (
    HomeserverClient,
    HomeserverError,
    HomeserverUnreachable,
    new_txn_id,
)
from bridge.services.messages import MessageService
from bridge.services.refusals import Refused
from bridge.services.reports import ReportService, no_such_report
from bridge.services.suspensions import Suspensions
from bridge.store.conversations import ConversationRepository
from bridge.store.moderation import ModerationRepository
from bridge.store.reports import ReportRecord, ReportRepository
from bridge.store.roster import RosterRepository

log = logging.getLogger(__name__)


def warning_text(name: str, note: str | None) -> str:
    """The bot's warning in the conversation room."""
    because = f" {note.rstrip('.')}." if note else ""
    return (
        f"⚠️ {name}, a moderator has warned you about a message in this conversation.{because} "
        "Please keep messages academic and professional, and do not share personal contact "
        "information."
    )


class ModerationService:
    """Acting on reports."""

    def __init__(
        self,
        reports: ReportService,
        report_store: ReportRepository,
        store: ModerationRepository,
        messages: MessageService,
        suspensions: Suspensions,
        conversations: ConversationRepository,
        roster: RosterRepository,
        client: HomeserverClient,
        ids: MatrixIdMapper,
        bot_user_id: str,
        moderators: tuple[str, ...],
    ) -> None:
        self._moderators = moderators
        self._reports = reports
        self._report_store = report_store
        self._store = store
        self._messages = messages
        self._suspensions = suspensions
        self._conversations = conversations
        self._roster = roster
        self._client = client
        self._ids = ids
        self._bot = bot_user_id

    async def act(
        self,
        report_id: str,
        moderator: str,
        action: ReportAction,
        note: str | None,
        days: int | None = None,
        *,
        check_moderator: bool = False,
    ) -> ReportView:
        """Handle an open report as `action` says; `report.resolved` tells the LMS how.
        `check_moderator`: the moderator is named by the LMS, and checked."""
        record = await self._report_store.get(report_id)
        if record is None:
            raise no_such_report(report_id)
        if check_moderator:
            await self._check_moderator(moderator)
        if record.state != "open":
            raise Refused(409, "already_resolved", "This report was already handled")
        if days is not None and action != "suspend":
            raise Refused(400, "invalid_field", "days: only a suspension lasts days", field="days")
        self._check_possible(record, action)
        if action == "warn":
            await self._post_warning(record, note)
        resolved = await self._reports.close(record, moderator, action, note)
        reported = record.reported_user
        if action == "delete":
            assert record.message_id is not None
            await self._messages.remove(record.message_id, moderator, note)
        elif action == "warn":
            assert reported is not None
            now = datetime.now(UTC)
            warned = UserWarned(
                user_id=reported,
                matrix_id=self._ids.user_id(reported),
                moderator=moderator,
                note=note,
                report_id=report_id,
                conversation_id=record.conversation_id,
                warned_at=now,
            )
            await self._store.record_warning(warned, now)
        elif action == "suspend":
            assert reported is not None
            await self._suspensions.suspend(reported, moderator, days, note, report_id)
        log.info("%s handled report %s: %s", moderator, report_id, action)
        return resolved

    async def _check_moderator(self, moderator: str) -> None:
        """Refuse (403) someone the LMS names as moderator who is neither a configured
        moderator (by Matrix ID) nor an admin of an institution."""
        if moderator in self._moderators:
            return
        person = await self._roster.get_user(moderator)
        if person is not None and any(role == "admin" for _i, role in person.memberships):
            return
        raise Refused(
            403,
            "not_a_moderator",
            f"{moderator!r} is not a moderator: name an institution admin, or a Matrix ID "
            "listed in moderation.moderators",
        )

    @staticmethod
    def _check_possible(record: ReportRecord, action: ReportAction) -> None:
        if action == "delete" and record.message_id is None:
            raise Refused(
                422, "no_message", "This report is not about a message the bridge carries"
            )
        if action in ("warn", "suspend") and record.reported_user is None:
            raise Refused(
                422, "not_on_the_platform", "The person reported is not on the learning platform"
            )
        if action == "warn" and record.conversation_id is None:
            raise Refused(
                422,
                "no_conversation",
                "A warning is posted in the conversation the report is about, and this report "
                "is not about one: suspend, or resolve with a note",
            )

    async def _post_warning(self, record: ReportRecord, note: str | None) -> None:
        assert record.conversation_id is not None and record.reported_user is not None
        conversation = await self._conversations.get(record.conversation_id)
        if conversation is None or conversation.room_id is None:
            raise Refused(422, "no_conversation", "The conversation of this report is gone")
        person = await self._roster.get_user(record.reported_user)
        name = person.display_name if person else record.reported_user
        user_id = self._ids.user_id(record.reported_user)
        content = {
            "msgtype": "m.notice",
            "body": warning_text(name, note),
            "m.mentions": {"user_ids": [user_id]},
        }
        try:
            await self._client.intent(self._bot).send_message(
                conversation.room_id, content, new_txn_id("warn", record.id)
            )
        except HomeserverUnreachable:
            raise Refused(
                503,
                "homeserver_unavailable",
                "The homeserver can't be reached, so the warning can't be posted: try again",
            ) from None
        except HomeserverError as exc:
            raise Refused(
                502, "homeserver_error", f"The homeserver refused the warning: {exc.message}"
            ) from None
