"""Sessions of the embedded inbox.

The LMS asks, server to server, for a link for one person. The link holds a single-use code in
its fragment (which browsers never send to a server, so it is in no request line and no log).
The page trades the code once for a session token it keeps in memory, and every call of the page
carries that token. Only SHA-256 hashes of codes and tokens are stored: a copy of the database
opens no inbox.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from bridge.services.policy import UnknownUser
from bridge.services.refusals import Refused, no_such_conversation
from bridge.store.conversations import ConversationRepository
from bridge.store.embed import EmbedSession, EmbedSessionRepository
from bridge.store.roster import RosterRepository


def link_expired() -> Refused:
    """The refusal of a used, expired or unknown link."""
    return Refused(
        401,
        "link_expired",
        "This link has expired or was already used; reopen Messages to get a new one",
    )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class EmbedSessions:
    """Creates, opens, checks and ends the sessions of the inbox page."""

    def __init__(
        self,
        sessions: EmbedSessionRepository,
        roster: RosterRepository,
        conversations: ConversationRepository,
        page_url: str,
        session_seconds: int,
        link_seconds: int,
        on_ended: Callable[[Sequence[str]], None],
    ) -> None:
        self._sessions = sessions
        self._roster = roster
        self._conversations = conversations
        self._page_url = page_url.rstrip("/") + "/embed/"
        self._session = timedelta(seconds=session_seconds)
        self._link = timedelta(seconds=link_seconds)
        self._on_ended = on_ended

    async def create(
        self, user_id: str, conversation_id: str | None, ttl_seconds: int | None
    ) -> tuple[str, datetime]:
        """A link for `user_id` (opening `conversation_id`, one of theirs), and when the
        session it opens ends at the latest. Raises UnknownUser, Refused."""
        user = await self._roster.get_user(user_id)
        if user is None:
            raise UnknownUser(user_id)
        if not user.active:
            raise Refused(403, "inactive_user", f"{user_id!r} is deactivated")
        if conversation_id is not None:
            conversation = await self._conversations.get(conversation_id)
            if conversation is None or conversation.state == "creating":
                raise no_such_conversation(conversation_id)
            if not conversation.has(user_id):
                raise Refused(
                    403,
                    "not_a_participant",
                    f"{user_id!r} is not in conversation {conversation_id!r}",
                )
        lasts = timedelta(seconds=ttl_seconds) if ttl_seconds is not None else self._session
        now = datetime.now(UTC)
        code = secrets.token_urlsafe(32)
        # The session's end counts from the link's making, so a link never outlives it.
        expires_at = now + lasts
        await self._sessions.create(
            uuid.uuid4().hex,
            user_id,
            conversation_id,
            _hash(code),
            now,
            min(now + self._link, expires_at),
            expires_at,
        )
        path = "" if conversation_id is None else f"conversations/{quote(conversation_id, safe='')}"
        return f"{self._page_url}{path}#code={code}", expires_at

    async def open(self, code: str) -> tuple[str, EmbedSession]:
        """Trade a link's code for a session token, once. Raises Refused (link_expired)."""
        token = secrets.token_urlsafe(32)
        session = await self._sessions.exchange(_hash(code), _hash(token), datetime.now(UTC))
        if session is None:
            raise link_expired()
        return token, session

    async def check(self, token: str) -> EmbedSession | None:
        """The live session a token belongs to, if any."""
        return await self._sessions.by_token(_hash(token), datetime.now(UTC))

    async def end(self, user_id: str) -> int:
        """End every session and unused link of a person (their open pages stop at once); how
        many were ended."""
        ended = await self._sessions.end_for(user_id, datetime.now(UTC))
        if ended:
            self._on_ended(ended)
        return len(ended)
