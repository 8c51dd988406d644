"""Reports: filed from the LMS by a participant, shown with their context, resolved by a
moderator; each report from the LMS is also filed on the homeserver as the reporter."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

from bridge.contract.events import ReportCreated, ReportResolved
from bridge.contract.reports import (
    MAX_REASON,
    Category,
    ReportAction,
    ReportDetail,
    ReportedMessage,
    ReportPerson,
    ReportView,
    Resolution,
)
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.admin import HomeserverReport, HomeserverUserReport
from bridge.matrix.client import HomeserverClient, HomeserverError
from bridge.services.content_rules import RuleHit
from bridge.services.reading import shared_role
from bridge.services.refusals import Refused, no_such_message
from bridge.services.workers import PassWorker
from bridge.store.conversations import ConversationRepository
from bridge.store.messages import MessageRecord, MessageRepository
from bridge.store.reports import ReportRecord, ReportRepository
from bridge.store.roster import RosterRepository

log = logging.getLogger(__name__)

CONTEXT_MESSAGES = 3
EARLIER_REPORTS = 20


def report_view(record: ReportRecord) -> ReportView:
    """A stored report as the LMS sees it."""
    resolution = None
    if record.state == "resolved" and record.resolved_at is not None:
        resolution = Resolution(
            record.action,  # type: ignore[arg-type]
            record.resolved_by or "",
            record.note,
            record.resolved_at,
        )
    return ReportView(
        id=record.id,
        state=record.state,  # type: ignore[arg-type]
        origin=record.origin,  # type: ignore[arg-type]
        category=record.category,  # type: ignore[arg-type]
        reason=record.reason,
        reporter=record.reporter,
        reporter_matrix_id=record.reporter_matrix_id or "",
        reported_user=record.reported_user,
        reported_matrix_id=record.reported_matrix_id,
        message_id=record.message_id,
        conversation_id=record.conversation_id,
        room_id=record.room_id,
        event_id=record.event_id,
        created_at=record.created_at,
        resolution=resolution,
    )


def reported_message(record: MessageRecord) -> ReportedMessage:
    """A message as a report shows it (a deleted one keeps no text)."""
    deleted = record.deleted_at is not None
    return ReportedMessage(
        id=record.id,
        conversation_id=record.conversation_id,
        sender=record.sender,
        body=None if deleted else record.body,
        created_at=record.created_at,
        event_id=record.event_id,
        deleted=deleted,
    )


def _received(milliseconds: int) -> datetime:
    """When the homeserver received a report (now, when it doesn't say)."""
    return datetime.fromtimestamp(milliseconds / 1000, UTC) if milliseconds else datetime.now(UTC)


def no_such_report(report_id: str) -> Refused:
    """The refusal for a report id that doesn't exist."""
    return Refused(
        404, "not_found", f"No report with id {report_id!r}", missing={"report_id": report_id}
    )


class ReportService:
    """Filing, showing and resolving reports."""

    def __init__(
        self,
        reports: ReportRepository,
        messages: MessageRepository,
        conversations: ConversationRepository,
        roster: RosterRepository,
        ids: MatrixIdMapper,
        on_change: Callable[[], None],
        bot_user_id: str,
    ) -> None:
        self._bot = bot_user_id
        self._reports = reports
        self._messages = messages
        self._conversations = conversations
        self._roster = roster
        self._ids = ids
        self._on_change = on_change

    async def file(
        self, message_id: str, reporter: str, reason: str, category: Category
    ) -> tuple[ReportView, bool]:
        """A participant reports the other person's message; (report, new). A repeat while the
        first is open answers that one."""
        message = await self._messages.get(message_id)
        if message is None:
            raise no_such_message(message_id)
        conversation = await self._conversations.get(message.conversation_id)
        if conversation is None or not conversation.has(reporter):
            raise Refused(
                403, "not_participant", "Only the people of a conversation can report its messages"
            )
        if message.sender == reporter:
            raise Refused(422, "own_message", "You can't report your own message")
        existing = await self._reports.open_by(reporter, message_id)
        if existing is not None:
            return report_view(existing), False
        now = datetime.now(UTC)
        view = ReportView(
            id=uuid.uuid4().hex,
            state="open",
            origin="lms",
            category=category,
            reason=reason,
            reporter=reporter,
            reporter_matrix_id=self._ids.user_id(reporter),
            reported_user=message.sender,
            reported_matrix_id=self._ids.user_id(message.sender),
            message_id=message.id,
            conversation_id=message.conversation_id,
            room_id=conversation.room_id,
            event_id=message.event_id,
            created_at=now,
            resolution=None,
        )
        created = ReportCreated(
            report=view,
            message=reported_message(message),
            reporter=await self._person(reporter, message.sender),
            reported=await self._person(message.sender, reporter),
        )
        if not await self._reports.add(created, now):  # a racing request stored it first
            raced = await self._reports.open_by(reporter, message_id)
            assert raced is not None
            return report_view(raced), False
        self._on_change()
        return view, True

    async def file_by_rule(self, message: MessageRecord, hit: RuleHit) -> bool:
        """The contact-info rule reports a message (origin `rule`, the matched spans in the
        reason), once while a report of it by the rule is open. True when new."""
        if await self._reports.open_by_rule(message.id) is not None:
            return False
        conversation = await self._conversations.get(message.conversation_id)
        spans = ", ".join(f"«{m.text}»" for m in hit.matches)
        reason = f"Contact information ({hit.what}): {spans}"[:MAX_REASON]
        now = datetime.now(UTC)
        view = ReportView(
            id=uuid.uuid4().hex,
            state="open",
            origin="rule",
            category="contact_info",
            reason=reason,
            reporter=None,
            reporter_matrix_id=self._bot,
            reported_user=message.sender,
            reported_matrix_id=self._ids.user_id(message.sender),
            message_id=message.id,
            conversation_id=message.conversation_id,
            room_id=conversation.room_id if conversation else None,
            event_id=message.event_id,
            created_at=now,
            resolution=None,
        )
        created = ReportCreated(
            report=view,
            message=reported_message(message),
            reporter=None,
            reported=await self._person(message.sender, None),
        )
        if not await self._reports.add(created, now):
            return False
        log.info("the contact-info rule reported message %s (%s)", message.id, hit.what)
        self._on_change()
        return True

    async def take_from_homeserver(self, found: HomeserverReport) -> bool:
        """A report made in a Matrix client, read from the homeserver's list: stored like one
        from the LMS (origin `matrix`), once per homeserver report. True when new."""
        conversation = await self._conversations.by_room(found.room_id)
        message = None
        if conversation is not None:
            candidate = await self._messages.by_event_id(found.event_id)
            # An event id of another room would be a forgery: only the bridge's records count.
            if candidate is not None and candidate.conversation_id == conversation.id:
                message = candidate
        reporter = self._ids.platform_id(found.reporter)
        if message is not None and reporter is not None:
            # The bridge's own filing of an LMS report (whatever its state now), or a repeat
            # of a report still open: the same report, not a new one.
            existing = await self._reports.filed_unlinked(
                reporter, message.id
            ) or await self._reports.open_by(reporter, message.id)
            if existing is not None:
                await self._reports.link_homeserver(existing.id, found.id)
                return False
        reported = message.sender if message else None
        if reported is None and found.sender:
            reported = self._ids.platform_id(found.sender)
        return await self._take(
            found.reporter,
            reported,
            self._ids.user_id(reported) if reported else found.sender,
            found.reason,
            found.received_ms,
            message,
            conversation_id=conversation.id if conversation else None,
            room_id=found.room_id,
            event_id=found.event_id,
            homeserver_report_id=found.id,
        )

    async def take_user_report(self, found: HomeserverUserReport) -> bool:
        """A report of a person made in a Matrix client (not of a message), read from the
        homeserver's list: stored once per homeserver report. True when new."""
        reported = self._ids.platform_id(found.target)
        return await self._take(
            found.reporter,
            reported,
            found.target,
            found.reason,
            found.received_ms,
            None,
            homeserver_user_report_id=found.id,
        )

    async def _take(
        self,
        reporter_matrix_id: str,
        reported: str | None,
        reported_matrix_id: str | None,
        reason: str,
        received_ms: int,
        message: MessageRecord | None,
        conversation_id: str | None = None,
        room_id: str | None = None,
        event_id: str | None = None,
        **homeserver_ids: int,
    ) -> bool:
        """Store a report read from the homeserver, once per homeserver report id."""
        reporter = self._ids.platform_id(reporter_matrix_id)
        view = ReportView(
            id=uuid.uuid4().hex,
            state="open",
            origin="matrix",
            category="other",
            reason=reason.strip()[:MAX_REASON] or "(no reason given)",
            reporter=reporter,
            reporter_matrix_id=reporter_matrix_id,
            reported_user=reported,
            reported_matrix_id=reported_matrix_id,
            message_id=message.id if message else None,
            conversation_id=conversation_id,
            room_id=room_id,
            event_id=event_id,
            created_at=_received(received_ms),
            resolution=None,
        )
        created = ReportCreated(
            report=view,
            message=reported_message(message) if message else None,
            reporter=await self._person(reporter, reported) if reporter else None,
            reported=await self._person(reported, reporter) if reported else None,
        )
        if not await self._reports.add(created, datetime.now(UTC), **homeserver_ids):
            return False
        log.info("took report %s from the homeserver (%s)", view.id, homeserver_ids)
        self._on_change()
        return True

    async def _person(self, user_id: str, other_id: str | None) -> ReportPerson:
        """Someone a report is about or from, with their role where both people belong."""
        user = await self._roster.get_user(user_id)
        other = await self._roster.get_user(other_id) if other_id else None
        role = None
        if user is not None:
            if other is not None:
                role = shared_role(other, user)
            elif user.memberships:
                role = user.memberships[0][1]
        return ReportPerson(
            user_id=user_id,
            display_name=user.display_name if user else user_id,
            role=role,
            matrix_id=self._ids.user_id(user_id),
        )

    async def listed(
        self, state: str | None, after: int, limit: int
    ) -> tuple[list[ReportView], int]:
        """Reports after a cursor, oldest first, and the cursor after them."""
        found = await self._reports.listed(state, after, limit)
        return [report_view(r) for r in found], found[-1].seq if found else after

    async def detail(self, report_id: str) -> ReportDetail:
        """A report with its message, the context before it, the people and earlier reports."""
        record = await self._reports.get(report_id)
        if record is None:
            raise no_such_report(report_id)
        message = await self._messages.get(record.message_id) if record.message_id else None
        context: list[ReportedMessage] = []
        if message is not None:
            before = await self._messages.page(
                message.conversation_id, message.seq, CONTEXT_MESSAGES
            )
            context = [reported_message(m) for m in before]
        earlier: list[ReportView] = []
        if record.reported_user is not None:
            against = await self._reports.against(record.reported_user, EARLIER_REPORTS + 1)
            earlier = [report_view(r) for r in against if r.id != record.id][:EARLIER_REPORTS]
        reporter = reported = None
        if record.reporter is not None:
            reporter = await self._person(record.reporter, record.reported_user)
        if record.reported_user is not None:
            reported = await self._person(record.reported_user, record.reporter)
        return ReportDetail(
            report=report_view(record),
            message=None if message is None else reported_message(message),
            context=context,
            reporter=reporter,
            reported=reported,
            earlier_reports=earlier,
            filed_on_homeserver=record.filed_at is not None,
        )

    async def close(
        self, record: ReportRecord, moderator: str, action: ReportAction, note: str | None
    ) -> ReportView:
        """Close a report read as open; `report.resolved` tells the LMS how. 409 when it was
        handled meanwhile."""
        now = datetime.now(UTC)
        closed = dataclasses.replace(
            report_view(record),
            state="resolved",
            resolution=Resolution(action, moderator, note, now),
        )
        if not await self._reports.resolve(ReportResolved(closed), now):
            raise Refused(409, "already_resolved", "This report was already handled")
        self._on_change()
        return closed


class ReportFiler(PassWorker):
    """The worker that files the LMS's reports on the homeserver, as the reporter, so the
    homeserver's own list has them; a report waits while the homeserver is away."""

    waiting_work = "filing reports on the homeserver"

    def __init__(
        self,
        reports: ReportRepository,
        messages: MessageRepository,
        conversations: ConversationRepository,
        client: HomeserverClient,
        ids: MatrixIdMapper,
    ) -> None:
        super().__init__()
        self._reports = reports
        self._messages = messages
        self._conversations = conversations
        self._client = client
        self._ids = ids

    async def one_pass(self) -> float:
        """File what is waiting; look again soon while a message is still queued."""
        return 5 if await self.file_waiting() else 60

    async def file_waiting(self) -> bool:
        """One pass; True when some report still waits (its message not sent yet)."""
        waiting = False
        for record in await self._reports.to_file(50):
            message = await self._messages.get(record.message_id) if record.message_id else None
            conversation = (
                await self._conversations.get(record.conversation_id)
                if record.conversation_id
                else None
            )
            if message is None or conversation is None or conversation.room_id is None:
                await self._reports.mark_filed(record.id, datetime.now(UTC))  # nothing to file
                continue
            if message.event_id is None:
                if message.status == "queued":
                    waiting = True  # filed once Matrix has the message
                else:  # refused or withdrawn: Matrix never had it, so there is nothing to file
                    await self._reports.mark_filed(record.id, datetime.now(UTC))
                continue
            assert record.reporter is not None
            path = (
                f"/_matrix/client/v3/rooms/{quote(conversation.room_id, safe='')}/report/"
                f"{quote(message.event_id, safe='')}"
            )
            try:
                await self._client.request(
                    "POST",
                    path,
                    body={"reason": f"[{record.category}] {record.reason}"},
                    as_user=self._ids.user_id(record.reporter),
                )
            except HomeserverError as exc:
                # Kept in the bridge either way; the homeserver's copy is what is lost.
                log.warning(
                    "the homeserver refused report %s (%s %s): kept in the bridge only",
                    record.id,
                    exc.status,
                    exc.errcode,
                )
            await self._reports.mark_filed(record.id, datetime.now(UTC))
        return waiting
