"""Wiring and lifecycle: builds every part of the bridge from a Config and runs them together."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bridge.api.conversations import ConversationRoutes
from bridge.api.embed import PAGE_FILE_OPERATIONS, EmbedRoutes, embed_auth_middleware
from bridge.api.errors import api_error
from bridge.api.events import EventRoutes
from bridge.api.health import HealthRoutes
from bridge.api.http import lms_auth_middleware
from bridge.api.metrics import MetricsRoute
from bridge.api.openapi import OpenApiRoute
from bridge.api.operations import bind
from bridge.api.people import PeopleRoutes
from bridge.api.reports import ReportRoutes
from bridge.api.roster import RosterRoutes
from bridge.config import Config, missing_secrets, redact_database_url
from bridge.domain.ids import MatrixIdMapper
from bridge.matrix.admin import HomeserverAdmin
from bridge.matrix.appservice import AppserviceEndpoint, matrix_error
from bridge.matrix.checks import CheckResult, run_checks
from bridge.matrix.client import HomeserverClient, HomeserverError, HomeserverUnreachable
from bridge.services.accounts import AccountService
from bridge.services.admin_room import AdminRoom, AdminRoomUnavailable
from bridge.services.alerts import RefusalAlerts
from bridge.services.attachments import AttachmentDownloads
from bridge.services.availability import AvailabilityNotices
from bridge.services.catch_up import HistoryCatchUp
from bridge.services.content_rules import ContactInfoRule
from bridge.services.conversations import ConversationService, RoomFinisher
from bridge.services.embed_sessions import EmbedSessions
from bridge.services.homeserver_reports import HomeserverReportSync
from bridge.services.inbound import InboundProcessor, own_message_echo
from bridge.services.lifecycle import ConversationLifecycle
from bridge.services.live import LiveFeed
from bridge.services.messages import MessageService
from bridge.services.metrics import BridgeMetrics
from bridge.services.moderation import ModerationService
from bridge.services.photos import PhotoFetcher
from bridge.services.policy import PolicyService
from bridge.services.profile_sync import ProfileSyncWorker
from bridge.services.pruning import InboxPruner
from bridge.services.reading import ReadingService
from bridge.services.reports import ReportFiler, ReportService
from bridge.services.rooms.admin import AdminRoomEvents
from bridge.services.rooms.conversation import ConversationRoomEvents
from bridge.services.rooms.foreign import ForeignRooms
from bridge.services.rooms.router import RoomKind, RoomRouter
from bridge.services.roster import RosterService
from bridge.services.roster_watch import RosterWatch
from bridge.services.suspensions import Suspensions
from bridge.services.webhooks import WebhookDelivery
from bridge.services.workers import Supervisor
from bridge.store import migrate
from bridge.store.accounts import AccountRepository
from bridge.store.availability import AvailabilityNoticeRepository
from bridge.store.conversations import ConversationRecord, ConversationRepository
from bridge.store.database import Database
from bridge.store.embed import EmbedSessionRepository
from bridge.store.events import EventLogRepository
from bridge.store.inbox import InboxRepository
from bridge.store.messages import MessageRepository
from bridge.store.moderation import ModerationRepository
from bridge.store.reports import ReportRepository
from bridge.store.roster import RosterRepository
from bridge.store.standing import StandingRepository
from bridge.web.page import InboxPage, security_headers

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The bridge cannot start; the message says why in one sentence."""


class Bridge:
    """One running bridge: storage, homeserver client, services and the HTTP listener."""

    def __init__(self, config: Config) -> None:
        missing = missing_secrets(config)
        if missing:
            raise StartupError(
                f"{', '.join(missing)} not set: run `lms-bridge generate-registration` to create "
                "the tokens (or set them in the environment)"
            )
        self.config = config
        self.db = Database(config.database_url())
        self._schema_head = migrate.head_revision()
        self.client = HomeserverClient(
            config.homeserver.url,
            config.appservice.as_token,
            config.appservice.id,
            config.homeserver.request_timeout_seconds,
        )
        self.ids = MatrixIdMapper(config.appservice.account_prefix, config.homeserver.server_name)
        self.inbox = InboxRepository(self.db)
        accounts = AccountRepository(self.db)
        conversations = ConversationRepository(self.db)
        messages = MessageRepository(self.db)
        self.event_log = EventLogRepository(self.db)
        self.photos = PhotoFetcher(allowed_networks=config.lms.photo_allowed_networks)
        self.roster = RosterRepository(self.db)
        self.accounts = AccountService(
            self.client, accounts, self.ids, self.photos, self._profile_of
        )
        self.profile_sync = ProfileSyncWorker(self.roster, self.accounts)
        moderation = config.moderation
        self.homeserver_admin = (
            HomeserverAdmin(self.client, moderation.homeserver_admin_token)
            if moderation.homeserver_admin_token
            else None
        )
        self.moderation_store = ModerationRepository(self.db)
        self.policy = PolicyService(self.roster)
        self.webhooks = WebhookDelivery(
            self.event_log, config.lms.webhook_url, config.lms.webhook_secret
        )
        self.live = LiveFeed(self.event_log, conversations)
        self.suspensions = Suspensions(
            self.moderation_store, self.ids, self.homeserver_admin, self._events_logged
        )
        self.lifecycle = ConversationLifecycle(
            conversations,
            self.policy,
            self.client,
            config.bot_user_id,
            self._events_logged,
            sweep_interval=config.conversations.sweep_interval_seconds,
        )
        self.roster_service = RosterService(
            self.roster, self.profile_sync.wake, self.lifecycle.roster_changed
        )
        self.roster_watch = RosterWatch(
            self.roster,
            config.conversations.roster_watch_seconds,
            self.lifecycle.roster_changed,
            self.profile_sync.wake,
        )
        self.report_store = report_store = ReportRepository(self.db)
        self.report_filer = ReportFiler(
            report_store, messages, conversations, self.client, self.ids
        )
        self.reports = ReportService(
            report_store,
            messages,
            conversations,
            self.roster,
            self.ids,
            self._reports_changed,
            config.bot_user_id,
        )
        self.report_sync = (
            HomeserverReportSync(
                self.homeserver_admin, report_store, self.reports, moderation.report_poll_seconds
            )
            if self.homeserver_admin is not None
            else None
        )
        self.admin_room = AdminRoom(
            moderation,
            self.moderation_store,
            self.reports,
            self.client,
            config.bot_user_id,
            config.homeserver.server_name,
            config.appservice.account_prefix,
        )
        self.alerts = RefusalAlerts(moderation.alert_refusals_per_hour, self.admin_room.post_alert)
        self.contact_rule = ContactInfoRule(
            moderation.contact_info,
            moderation.contact_info_allowed_domains,
            moderation.contact_info_platforms,
        )
        self.conversations = ConversationService(
            conversations,
            self.policy,
            self.roster,
            self.accounts,
            self.client,
            bot_user_id=config.bot_user_id,
            account_prefix=config.appservice.account_prefix,
            server_name=config.homeserver.server_name,
            federate=config.appservice.federate_rooms,
            suspensions=self.suspensions,
            on_made=self._conversation_made,
            on_refused=self.alerts.refused,
        )
        self.room_finisher = RoomFinisher(self.conversations)
        standing = StandingRepository(self.db)
        self.messages = MessageService(
            messages,
            conversations,
            self.policy,
            self.client,
            self.ids,
            config.messages,
            config.bot_user_id,
            standing,
            self.contact_rule,
            on_rule_flag=self.reports.file_by_rule,
            on_refused=self.alerts.refused,
            on_events=self._events_logged,
        )
        self.downloads = AttachmentDownloads(
            messages, conversations, self.client, config.messages.max_attachment_bytes
        )
        self.reading = ReadingService(
            conversations, messages, self.roster, self.client, self.ids, self._events_logged
        )
        self.moderation = ModerationService(
            self.reports,
            report_store,
            self.moderation_store,
            self.messages,
            self.suspensions,
            conversations,
            self.roster,
            self.client,
            self.ids,
            config.bot_user_id,
            moderation.moderators,
        )
        self.router = RoomRouter(conversations, self.admin_room.room_id)
        self.processor = InboundProcessor(self.inbox, self.router)
        self.appservice = AppserviceEndpoint(
            config.appservice.hs_token,
            self.inbox,
            timedelta(seconds=config.appservice.txn_dedupe_window_seconds),
            on_stored=self.processor.wake,
            user_query=self.accounts.handle_user_query,
            handled=own_message_echo(self.client),
        )
        self.conversation_rooms = conversation_rooms = ConversationRoomEvents(
            conversations,
            messages,
            accounts,
            self.policy,
            self.client,
            self.ids,
            config.bot_user_id,
            on_events=self._events_logged,
            on_stale=self.lifecycle.check_soon,
            max_attachment_bytes=config.messages.max_attachment_bytes,
            restore_profile=self.accounts.restore_profile,
            set_aside_encrypted=self.conversations.set_aside_encrypted,
            suspended=self.suspensions.in_force,
            standing=standing,
            rule=self.contact_rule,
            on_rule_flag=self.reports.file_by_rule,
            on_refused=self.alerts.refused,
        )
        for event_type, handler in (
            ("m.room.message", conversation_rooms.on_message),
            ("m.room.redaction", conversation_rooms.on_redaction),
            ("m.receipt", conversation_rooms.on_receipt),
            ("m.reaction", conversation_rooms.on_reaction),
            ("m.room.member", conversation_rooms.on_member),
            ("m.room.encryption", conversation_rooms.on_encryption),
            (None, conversation_rooms.on_other),
        ):
            self.router.on(RoomKind.CONVERSATION, event_type, handler)
        foreign_rooms = ForeignRooms(
            self.conversations, accounts, self.client, config.bot_user_id, self.ids
        )
        self.router.on(RoomKind.FOREIGN, "m.room.member", foreign_rooms.on_member)
        self.router.on(RoomKind.FOREIGN, "m.room.join_rules", foreign_rooms.on_join_rules)
        admin_events = AdminRoomEvents(
            self.admin_room,
            self.moderation,
            self.moderation_store,
            report_store,
            self.suspensions,
            self.policy,
            self.roster,
            conversations,
            self.client,
            self.ids,
            config.bot_user_id,
        )
        self.router.on(RoomKind.ADMIN, "m.room.message", admin_events.on_message)
        self.router.on(RoomKind.ADMIN, "m.reaction", admin_events.on_reaction)
        self.router.on(RoomKind.ADMIN, "m.room.member", admin_events.on_member)
        self.catch_up = HistoryCatchUp(
            conversations,
            self.inbox,
            self.client,
            config.bot_user_id,
            self.processor.wake,
            retention=timedelta(days=config.appservice.inbox_retention_days),
        )
        self.notices = AvailabilityNoticeRepository(self.db)
        self.availability_notices = AvailabilityNotices(
            self.event_log,
            self.notices,
            conversations,
            messages,
            self.roster,
            self.client,
            self.ids,
            config.bot_user_id,
            self._events_logged,
        )
        self.embed_sessions = EmbedSessions(
            EmbedSessionRepository(self.db),
            self.roster,
            conversations,
            config.embed.public_url or config.appservice.public_url,
            config.embed.session_seconds,
            config.embed.link_seconds,
            on_ended=self.live.end_sessions,
        )
        self.health = HealthRoutes(self.readiness)
        self.started = False
        self._runner: web.AppRunner | None = None
        self.pruner = InboxPruner(
            self.inbox,
            timedelta(seconds=config.appservice.txn_dedupe_window_seconds),
            timedelta(days=config.appservice.inbox_retention_days),
        )
        # The background workers, given time to finish the work in hand when the bridge stops.
        self.workers = Supervisor()
        workers = self.workers
        workers.add("inbound-processor", self.processor.run, self.processor.stop)
        workers.add("outbox", self.messages.run_outbox, self.messages.stop)
        workers.add("webhooks", self.webhooks.run, self.webhooks.stop)
        workers.add("profile-sync", self.profile_sync.run, self.profile_sync.stop)
        workers.add("conversation-states", self.lifecycle.run, self.lifecycle.stop)
        workers.add("room-finishing", self.room_finisher.run, self.room_finisher.stop)
        workers.add("roster-watch", self.roster_watch.run, self.roster_watch.stop)
        workers.add("catch-up", self.catch_up.run, self.catch_up.stop)
        workers.add("pruning", self.pruner.run, self.pruner.stop)
        workers.add("report-filing", self.report_filer.run, self.report_filer.stop)
        workers.add("report-cards", self.admin_room.run, self.admin_room.stop)
        workers.add("suspensions", self.suspensions.run, self.suspensions.stop)
        workers.add("refusal-alerts", self.alerts.run, self.alerts.stop)
        workers.add("live-updates", self.live.run, self.live.stop)
        workers.add(
            "availability-notices", self.availability_notices.run, self.availability_notices.stop
        )
        if self.report_sync is not None:
            workers.add("homeserver-reports", self.report_sync.run, self.report_sync.stop)

    def web_app(self) -> web.Application:
        """The aiohttp application with every route of the bridge."""
        app = web.Application(
            middlewares=[
                _error_middleware,
                lms_auth_middleware(self.config.lms.api_token),
                embed_auth_middleware(self.embed_sessions),
            ],
            client_max_size=64 * 1024 * 1024,
        )
        app.on_response_prepare.append(security_headers(self.config.embed.allowed_origins))
        app.add_routes(self.appservice.routes())
        app.add_routes(self.health.routes())
        app.add_routes(
            RosterRoutes(self.roster_service, self.ids, self.config.lms.max_body_bytes).routes()
        )
        app.add_routes(PeopleRoutes(self.policy, self.ids).routes())
        app.add_routes(
            ConversationRoutes(
                self.conversations,
                self.messages,
                self.reading,
                self.ids,
                self.config.lms.max_body_bytes,
                self.downloads,
                self.config.messages.max_attachment_bytes,
            ).routes()
        )
        app.add_routes(
            ReportRoutes(self.reports, self.moderation, self.config.lms.max_body_bytes).routes()
        )
        app.add_routes(EventRoutes(self.event_log).routes())
        app.add_routes(
            EmbedRoutes(
                self.embed_sessions,
                self.live,
                self.reading,
                self.messages,
                self.conversations,
                self.policy,
                self.reports,
                self.report_store,
                self.notices,
                self.roster,
                self.downloads,
                self.ids,
                self.config.lms.max_body_bytes,
            ).routes()
        )
        app.add_routes(bind(InboxPage(), PAGE_FILE_OPERATIONS))
        app.add_routes(OpenApiRoute().routes())
        app.add_routes(
            MetricsRoute(
                BridgeMetrics(
                    self.db,
                    self.client,
                    self.inbox,
                    self.event_log,
                    self.live,
                    self.roster,
                    self.catch_up,
                    webhook=self.config.lms.webhook_url is not None,
                )
            ).routes()
        )
        return app

    def _conversation_made(self, record: ConversationRecord) -> None:
        """A conversation's room was made: finish it, and check its state soon."""
        self.room_finisher.wake()
        self.lifecycle.check_soon(record)

    def _events_logged(self) -> None:
        """The event log gained events: the webhook, open pages and notices follow it."""
        self.webhooks.wake()
        self.live.wake()
        self.availability_notices.wake()

    def _reports_changed(self) -> None:
        """A report was made or resolved: publish it, file it, dismiss it."""
        self._events_logged()
        self.report_filer.wake()
        self.admin_room.wake()
        if self.report_sync is not None:
            self.report_sync.wake()

    async def _profile_of(self, platform_id: str) -> tuple[str, str | None] | None:
        user = await self.roster.get_user(platform_id)
        return None if user is None else (user.display_name, user.avatar_url)

    async def start(self, *, checks: bool = True) -> None:
        """Migrate, listen, check the wiring, then start processing."""
        try:
            before, after = await migrate.upgrade(self.db)
        except migrate.SchemaTooNew as exc:
            raise StartupError(str(exc)) from exc
        except (SQLAlchemyError, OSError) as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StartupError(
                f"cannot use the database {redact_database_url(self.config.database.url)} "
                f"({reason.__class__.__name__}: {str(reason).splitlines()[0][:200]}): is "
                "database.url right, and is the database server running?"
            ) from exc
        if before != after:
            log.info("database schema migrated from %s to %s", before or "empty", after)
        await self.client.start()
        await self._listen()
        if checks:
            await self._check_wiring()
        await self.roster_watch.prime()  # before the start-up sweep, so no change falls between
        self.workers.start()
        self.started = True
        log.info(
            "bridge ready on %s:%d as %s",
            self.config.appservice.listen_host,
            self.config.appservice.listen_port,
            self.config.bot_user_id,
        )

    async def _listen(self) -> None:
        self._runner = web.AppRunner(self.web_app(), access_log=None, shutdown_timeout=10)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.config.appservice.listen_host, self.config.appservice.listen_port
        )
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise StartupError(
                f"cannot listen on {self.config.appservice.listen_host}:"
                f"{self.config.appservice.listen_port} ({exc.strerror}): is another bridge "
                "running, or appservice.listen_port taken?"
            ) from exc

    async def _check_wiring(self) -> None:
        deadline = time.monotonic() + self.config.homeserver.startup_wait_seconds
        delay = 0.5
        while time.monotonic() + delay < deadline:
            try:
                await self.client.versions()
                break
            except HomeserverUnreachable as exc:
                log.warning(
                    "cannot reach the homeserver at %s yet (%s); retrying in %.1fs",
                    self.config.homeserver.url,
                    exc,
                    delay,
                )
            except HomeserverError:
                break  # it answers: run_checks explains what is wrong
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
        results: list[CheckResult] = await run_checks(self.client, self.config)
        for result in results:
            if not result.ok:
                raise StartupError(result.message)
            log.info("check passed: %s: %s", result.name, result.message)
        await self._set_up_bot()
        try:
            await self.admin_room.set_up()
        except AdminRoomUnavailable as exc:
            raise StartupError(str(exc)) from exc
        except HomeserverUnreachable as exc:
            raise StartupError(f"could not set up the admin room: {exc}") from exc

    async def _set_up_bot(self) -> None:
        bot = self.config.bot_user_id
        try:
            profile = await self.client.profile(bot)
        except HomeserverError:
            profile = {}  # Synapse may have no profile row for the appservice sender yet
        if profile.get("displayname") != self.config.appservice.bot_displayname:
            try:
                await self.client.intent(bot).set_displayname(
                    self.config.appservice.bot_displayname
                )
            except (HomeserverError, HomeserverUnreachable) as exc:
                raise StartupError(f"could not set the bridge bot's display name: {exc}") from exc

    async def readiness(self) -> dict[str, bool]:
        """Conditions for /ready: started, schema current, homeserver reachable."""
        try:
            schema = await migrate.current_revision(self.db) == self._schema_head
        except Exception:
            schema = False
        try:
            await self.client.versions()
            homeserver = True
        except (HomeserverError, HomeserverUnreachable):
            homeserver = False
        return {"started": self.started, "database": schema, "homeserver": homeserver}

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking requests, finish the work in hand (up to `grace` seconds), disconnect.

        Whatever is cut short stays unprocessed in the database and is done after a restart.
        """
        self.started = False
        self.live.end_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.workers.stop(grace)
        await self.client.close()
        await self.photos.close()
        await self.db.close()


@web.middleware
async def _error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown routes and unexpected failures answer in the format of the API they hit."""
    matrix = request.path.startswith("/_matrix/")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status not in (404, 405):
            raise
        if matrix:
            return matrix_error(exc.status, "M_UNRECOGNIZED", "Unrecognized request")
        code = "not_found" if exc.status == 404 else "method_not_allowed"
        return api_error(exc.status, code, f"No route for {request.method} {request.path}")
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        if matrix:
            return matrix_error(500, "M_UNKNOWN", "Internal error")
        return api_error(500, "internal_error", "Internal error")
