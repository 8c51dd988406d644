"""The embedded inbox's routes.

The LMS makes a person's sessions (`/api/v1/embed/sessions`, with its API token) and ends them.
The page's own routes (`/embed/api/…`) take the session token instead, and act as that one
person: their conversations, their messages, their contacts. Handlers are thin: the services
decide, as they do for the LMS's routes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiohttp import web

from bridge.api.conversations import (
    DOWNLOAD_TYPES,
    conversation_view,
    inbox_item,
    message_fields,
    message_view,
    send_status,
    sent_message,
)
from bridge.api.files import stream_download
from bridge.api.http import ApiFailure, Handler, path_id, read_body, read_query, reply
from bridge.api.operations import Operation, Reply, bind
from bridge.api.people import contact_view, unknown_user
from bridge.contract.embed import (
    CreateEmbedSession,
    EmbedLink,
    EndedSessions,
    Me,
    OpenSession,
    PageConversation,
    PageEdit,
    PageHistory,
    PageHistoryQuery,
    PageMessage,
    PageNotice,
    PageRead,
    PageReport,
    PageSend,
    PageStart,
    SessionOpened,
    Unread,
)
from bridge.contract.messaging import ConversationView, Inbox, MessageView, ReadResult, SentMessage
from bridge.contract.policy import Contacts, ContactsQuery
from bridge.contract.reports import ReportView
from bridge.contract.shapes import OMITTED
from bridge.domain.avatar import initials_avatar
from bridge.domain.ids import MatrixIdMapper
from bridge.services.attachments import AttachmentDownloads
from bridge.services.conversations import ConversationRefused, ConversationService
from bridge.services.embed_sessions import EmbedSessions
from bridge.services.live import LiveFeed
from bridge.services.messages import MessageService
from bridge.services.policy import PolicyService, UnknownUser
from bridge.services.reading import ReadingService
from bridge.services.reports import ReportService
from bridge.store.availability import AvailabilityNoticeRepository
from bridge.store.embed import EmbedSession
from bridge.store.reports import ReportRepository
from bridge.store.roster import RosterRepository

PAGE_API = "/embed/api/"
_SESSION_KEY = web.RequestKey("embed_session", EmbedSession)
_TAG = "embed"
_PAGE_TAG = "embedded page"
KEEPALIVE_SECONDS = 15.0
_NOTICES_SHOWN = 20

OPERATIONS = (
    Operation(
        "POST",
        "/api/v1/embed/sessions",
        "create",
        _TAG,
        "A link to the inbox page for one person",
        description="Server to server: put the link in an iframe (or open it) for that person "
        "only. It opens once; the page then holds a session until `expires_at` or until the "
        "LMS ends the person's sessions.",
        body=CreateEmbedSession,
        replies=(Reply(201, "Created", EmbedLink),),
        errors=(400, 404, 413),
    ),
    Operation(
        "DELETE",
        "/api/v1/users/{user_id}/embed/sessions",
        "end",
        _TAG,
        "End every inbox session and unused link of a person (their open pages stop)",
        replies=(Reply(200, "Ended", EndedSessions),),
        errors=(400,),
    ),
    Operation(
        "GET",
        "/api/v1/users/{user_id}/unread",
        "unread",
        _TAG,
        "How much a person has not read yet (for a navigation badge)",
        replies=(Reply(200, "OK", Unread),),
        errors=(400, 404),
    ),
)

_C = "/embed/api/conversations/{conversation_id}"
_M = "/embed/api/messages/{message_id}"
_STREAM = {"type": "string", "description": "Server-sent events"}
PAGE_OPERATIONS = (
    Operation(
        "POST",
        "/embed/api/session",
        "open",
        _PAGE_TAG,
        "Trade a link's code for a session token (once)",
        body=OpenSession,
        replies=(Reply(201, "The session", SessionOpened),),
        errors=(400, 401, 413),
        public=True,
    ),
    Operation(
        "GET",
        "/embed/api/conversations",
        "inbox",
        _PAGE_TAG,
        "The person's conversations, the most recently active first",
        replies=(Reply(200, "OK", Inbox),),
        session=True,
    ),
    Operation(
        "POST",
        "/embed/api/conversations",
        "start",
        _PAGE_TAG,
        "Open the conversation with one of the person's contacts (made when new)",
        body=PageStart,
        replies=(
            Reply(201, "Created", ConversationView),
            Reply(200, "The existing conversation", ConversationView),
        ),
        errors=(400, 404, 413, 502, 503),
        session=True,
    ),
    Operation(
        "GET",
        _C,
        "conversation",
        _PAGE_TAG,
        "One of the person's conversations, with the other person and the bot's notices",
        replies=(Reply(200, "OK", PageConversation),),
        errors=(400, 404),
        session=True,
    ),
    Operation(
        "GET",
        f"{_C}/messages",
        "history",
        _PAGE_TAG,
        "A page of the conversation's history",
        query=PageHistoryQuery,
        replies=(Reply(200, "OK", PageHistory),),
        errors=(400, 404),
        session=True,
    ),
    Operation(
        "POST",
        f"{_C}/messages",
        "send",
        _PAGE_TAG,
        "Send a message as the person (idempotent on client_message_id)",
        body=PageSend,
        replies=(
            Reply(201, "Sent", SentMessage),
            Reply(202, "Stored and queued: the homeserver is unreachable", SentMessage),
            Reply(200, "A repeat of an earlier request", SentMessage),
        ),
        errors=(400, 404, 409, 413, 422, 429, 502, 503),
        session=True,
    ),
    Operation(
        "POST",
        f"{_C}/read",
        "read",
        _PAGE_TAG,
        "Mark read up to a message (the Matrix read receipt too)",
        body=PageRead,
        replies=(Reply(200, "OK", ReadResult),),
        errors=(400, 404),
        session=True,
    ),
    Operation(
        "PATCH",
        _M,
        "edit",
        _PAGE_TAG,
        "Edit one's own message",
        body=PageEdit,
        replies=(
            Reply(200, "Edited", SentMessage),
            Reply(202, "Edited; Matrix gets it when it is back", SentMessage),
        ),
        errors=(400, 404, 409, 413, 422),
        session=True,
    ),
    Operation(
        "DELETE",
        _M,
        "delete",
        _PAGE_TAG,
        "Delete one's own message",
        replies=(
            Reply(200, "Deleted", MessageView),
            Reply(202, "Deleted; Matrix gets it when it is back", MessageView),
        ),
        errors=(400, 404),
        session=True,
    ),
    Operation(
        "POST",
        f"{_M}/reports",
        "report",
        _PAGE_TAG,
        "Report the other person's message to the moderators",
        body=PageReport,
        replies=(Reply(201, "Filed", ReportView), Reply(200, "Already reported", ReportView)),
        errors=(400, 404, 413, 422),
        session=True,
    ),
    Operation(
        "GET",
        f"{_M}/attachment",
        "attachment",
        _PAGE_TAG,
        "Download the file a message carries",
        replies=(Reply(200, "The file", {"type": "string", "format": "binary"}, DOWNLOAD_TYPES),),
        errors=(400, 404, 413, 502, 503),
        session=True,
    ),
    Operation(
        "GET",
        "/embed/api/contacts",
        "contacts",
        _PAGE_TAG,
        "People the person may write to, best name matches first, with the reason",
        query=ContactsQuery,
        replies=(Reply(200, "OK", Contacts),),
        errors=(400,),
        session=True,
    ),
    Operation(
        "GET",
        "/embed/api/unread",
        "my_unread",
        _PAGE_TAG,
        "How much the person has not read yet",
        replies=(Reply(200, "OK", Unread),),
        session=True,
    ),
    Operation(
        "GET",
        "/embed/api/stream",
        "stream",
        _PAGE_TAG,
        "Live changes for the person, as server-sent events",
        description="Each change is an event `change` whose id is the event log's seq and whose "
        "data names the type, conversation and message; read it through the routes above. Send "
        "`Last-Event-ID` to resume after a dropped connection (an event `reload` says to read "
        "everything again instead). `ready` comes first; `ended` when the session ends.",
        replies=(Reply(200, "The stream", _STREAM, ("text/event-stream",)),),
        session=True,
    ),
)


_PAGE_HTML = {"type": "string", "description": "The page (the same for every address of it)"}
# The page itself and its files, served by `bridge.web.page.InboxPage` (no token: the page trades
# its link's code once it runs).
PAGE_FILE_OPERATIONS = (
    Operation(
        "GET",
        "/embed/",
        "page",
        _PAGE_TAG,
        "The inbox page (open it with a link from POST /api/v1/embed/sessions)",
        replies=(Reply(200, "The page", _PAGE_HTML, ("text/html",)),),
        public=True,
    ),
    Operation(
        "GET",
        "/embed/conversations/{conversation_id}",
        "page",
        _PAGE_TAG,
        "The inbox page, opening one conversation",
        replies=(Reply(200, "The page", _PAGE_HTML, ("text/html",)),),
        public=True,
    ),
    Operation(
        "GET",
        "/embed/static/{name}",
        "static",
        _PAGE_TAG,
        "The page's scripts and style sheet",
        replies=(
            Reply(
                200,
                "The file",
                {"type": "string"},
                ("text/javascript", "text/css", "text/html", "image/svg+xml"),
            ),
        ),
        errors=(404,),
        public=True,
    ),
)


def embed_auth_middleware(sessions: EmbedSessions) -> object:
    """Every page route but the code exchange needs `Authorization: Bearer <session token>`;
    the session is put on the request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PAGE_API) and request.path != "/embed/api/session":
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                raise ApiFailure(401, "unauthorized", "Send Authorization: Bearer <session token>")
            session = await sessions.check(token)
            if session is None:
                raise ApiFailure(
                    401, "session_ended", "This session has ended; reopen Messages to continue"
                )
            request[_SESSION_KEY] = session
        return await handler(request)

    return middleware


def _me(request: web.Request) -> EmbedSession:
    return request[_SESSION_KEY]


class EmbedRoutes:
    """HTTP handlers of the LMS's session calls and of the page's calls."""

    def __init__(
        self,
        sessions: EmbedSessions,
        live: LiveFeed,
        reading: ReadingService,
        messages: MessageService,
        conversations: ConversationService,
        policy: PolicyService,
        reports: ReportService,
        report_store: ReportRepository,
        notices: AvailabilityNoticeRepository,
        roster: RosterRepository,
        downloads: AttachmentDownloads,
        ids: MatrixIdMapper,
        max_body_bytes: int,
    ) -> None:
        self._sessions = sessions
        self._live = live
        self._reading = reading
        self._messages = messages
        self._conversations = conversations
        self._policy = policy
        self._reports = reports
        self._report_store = report_store
        self._notices = notices
        self._roster = roster
        self._downloads = downloads
        self._ids = ids
        self._max_body = max_body_bytes

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return bind(self, OPERATIONS + PAGE_OPERATIONS)

    # --- the LMS's calls ---

    async def create(self, request: web.Request) -> web.Response:
        """`POST /api/v1/embed/sessions`: a single-use link for one person."""
        asked = await read_body(request, CreateEmbedSession, self._max_body)
        try:
            url, expires_at = await self._sessions.create(
                asked.user,
                None if asked.conversation is OMITTED else asked.conversation,  # type: ignore[arg-type]
                None if asked.ttl_seconds is OMITTED else asked.ttl_seconds,  # type: ignore[arg-type]
            )
        except UnknownUser as exc:
            raise unknown_user(exc) from None
        return reply(EmbedLink(url, expires_at), 201)

    async def end(self, request: web.Request) -> web.Response:
        """`DELETE /api/v1/users/{u}/embed/sessions`."""
        return reply(EndedSessions(await self._sessions.end(path_id(request, "user_id"))))

    async def unread(self, request: web.Request) -> web.Response:
        """`GET /api/v1/users/{u}/unread`."""
        return await self._unread_of(path_id(request, "user_id"))

    async def _unread_of(self, user_id: str) -> web.Response:
        try:
            unread, conversations = await self._reading.unread(user_id)
        except UnknownUser as exc:
            raise unknown_user(exc) from None
        return reply(Unread(user_id, unread, conversations))

    # --- the page's calls ---

    async def open(self, request: web.Request) -> web.Response:
        """`POST /embed/api/session {code}`: the session token, once per link."""
        asked = await read_body(request, OpenSession, 4096)
        token, session = await self._sessions.open(asked.code)
        user = await self._roster.get_user(session.user_id)
        name = user.display_name if user else session.user_id
        avatar = initials_avatar(name, session.user_id)
        me = Me(
            user_id=session.user_id,
            display_name=name,
            initials=avatar.initials,
            avatar_color=avatar.color,
            avatar_url=user.avatar_url if user else None,
            role=user.memberships[0][1] if user and user.memberships else None,
        )
        return reply(SessionOpened(token, session.expires_at, me, session.conversation_id), 201)

    async def inbox(self, request: web.Request) -> web.Response:
        """`GET /embed/api/conversations`."""
        items = await self._reading.inbox(_me(request).user_id, 200)
        return reply(Inbox([inbox_item(item, self._ids) for item in items]))

    async def start(self, request: web.Request) -> web.Response:
        """`POST /embed/api/conversations {recipient}`."""
        asked = await read_body(request, PageStart, self._max_body)
        try:
            record, created = await self._conversations.start(_me(request).user_id, asked.recipient)
        except UnknownUser as exc:
            raise unknown_user(exc) from None
        except ConversationRefused as refused:
            raise ApiFailure(
                403, "not_allowed", refused.decision.reason, reason_code=refused.decision.code
            ) from None
        return reply(conversation_view(record, self._ids), 201 if created else 200)

    async def conversation(self, request: web.Request) -> web.Response:
        """`GET /embed/api/conversations/{c}`."""
        me = _me(request).user_id
        item = await self._reading.item(path_id(request, "conversation_id"), me)
        reason = None
        if item.conversation.state == "read_only":
            decision = await self._policy.can_converse(me, item.other.user_id)
            reason = decision.reason
        notices = await self._notices.recent(item.conversation.id, _NOTICES_SHOWN)
        return reply(
            PageConversation(
                conversation=inbox_item(item, self._ids),
                read_only_reason=reason,
                notices=[
                    PageNotice(n.id, n.body, n.message_id, n.created_at)
                    for n in notices
                    if n.student == me
                ],
            )
        )

    async def history(self, request: web.Request) -> web.Response:
        """`GET /embed/api/conversations/{c}/messages?before=&limit=`."""
        me = _me(request).user_id
        query = read_query(request, PageHistoryQuery)
        before = None if query.before is OMITTED else query.before
        page = await self._reading.history(
            path_id(request, "conversation_id"),
            me,
            before,  # type: ignore[arg-type]
            query.limit,
        )
        reported = await self._report_store.reported_by(
            me, [e.message.id for e in page if e.message.sender != me]
        )
        return reply(
            PageHistory(
                messages=[
                    PageMessage(
                        **message_fields(e.message),
                        read=e.read,
                        seen=e.seen,
                        reported=e.message.id in reported,
                    )
                    for e in page
                ],
                next_before=page[0].message.id if len(page) == query.limit else None,
            )
        )

    async def send(self, request: web.Request) -> web.Response:
        """`POST /embed/api/conversations/{c}/messages`: 201 sent, 202 queued, 200 a repeat."""
        text = await read_body(request, PageSend, self._max_body)
        record, created, hit = await self._messages.send(
            path_id(request, "conversation_id"),
            _me(request).user_id,
            text.body,
            text.format,
            text.client_message_id,
        )
        return reply(sent_message(record, hit), send_status(record, created))

    async def read(self, request: web.Request) -> web.Response:
        """`POST /embed/api/conversations/{c}/read {up_to}`."""
        conversation_id = path_id(request, "conversation_id")
        mark = await read_body(request, PageRead, self._max_body)
        moved = await self._reading.mark_read(conversation_id, _me(request).user_id, mark.up_to)
        return reply(ReadResult(conversation_id, moved))

    async def edit(self, request: web.Request) -> web.Response:
        """`PATCH /embed/api/messages/{m} {body}`."""
        text = await read_body(request, PageEdit, self._max_body)
        record, hit = await self._messages.edit(
            path_id(request, "message_id"), _me(request).user_id, text.body, text.format
        )
        return reply(sent_message(record, hit), 202 if record.pending else 200)

    async def delete(self, request: web.Request) -> web.Response:
        """`DELETE /embed/api/messages/{m}`."""
        record = await self._messages.delete(path_id(request, "message_id"), _me(request).user_id)
        return reply(message_view(record), 202 if record.pending else 200)

    async def report(self, request: web.Request) -> web.Response:
        """`POST /embed/api/messages/{m}/reports {category, reason}`."""
        asked = await read_body(request, PageReport, self._max_body)
        view, created = await self._reports.file(
            path_id(request, "message_id"), _me(request).user_id, asked.reason, asked.category
        )
        return reply(view, 201 if created else 200)

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        """`GET /embed/api/messages/{m}/attachment`."""
        return await stream_download(
            request, self._downloads, path_id(request, "message_id"), _me(request).user_id
        )

    async def contacts(self, request: web.Request) -> web.Response:
        """`GET /embed/api/contacts?q=&limit=`."""
        query = read_query(request, ContactsQuery)
        found = await self._policy.contacts(_me(request).user_id, query.q, query.limit)
        return reply(Contacts([contact_view(c, self._ids) for c in found]))

    async def my_unread(self, request: web.Request) -> web.Response:
        """`GET /embed/api/unread`."""
        return await self._unread_of(_me(request).user_id)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """`GET /embed/api/stream`: the person's changes as server-sent events."""
        session = _me(request)
        after = _last_event_id(request)
        stream, missed = await self._live.open(session.user_id, session.id, after)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # a proxy in front must not hold events back
            }
        )
        try:
            await response.prepare(request)
            await response.write(b"retry: 2000\n\nevent: ready\ndata: {}\n\n")
            if missed is None and after is not None:
                await response.write(b"event: reload\ndata: {}\n\n")
            for change in missed or ():
                await response.write(_sse(change.seq, change.data()))
            while not stream.ended:
                change = await stream.next(KEEPALIVE_SECONDS)
                if change is not None:
                    await response.write(_sse(change.seq, change.data()))
                elif datetime.now(UTC) >= session.expires_at:
                    stream.end()
                elif not stream.ended:
                    await response.write(b": keep-alive\n\n")
            if stream.session_ended:
                await response.write(b"event: ended\ndata: {}\n\n")
        except (ConnectionResetError, ConnectionError):
            pass  # the page went away
        finally:
            self._live.close(stream)
        return response


def _last_event_id(request: web.Request) -> int | None:
    value = request.headers.get("Last-Event-ID", "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def _sse(seq: int, data: object) -> bytes:
    return f"id: {seq}\nevent: change\ndata: {json.dumps(data)}\n\n".encode()
