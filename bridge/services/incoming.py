"""Matrix → LMS: messages typed in Matrix clients become messages of their conversation.

The bridge's own sends come back through the transaction stream too; they are recognised by
their event id. A send whose event id isn't recorded yet (the transaction can overtake the
database write) makes the event wait for a retry instead of being taken for a new message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bridge.domain.formatting import sanitize_html
from bridge.store.accounts import AccountRepository
from bridge.store.conversations import ConversationRepository
from bridge.store.inbox import StoredEvent
from bridge.store.messages import MessageRepository

log = logging.getLogger(__name__)
TEXT_TYPES = ("m.text", "m.notice", "m.emote")


class EchoNotYetRecorded(Exception):
    """The event may be one of the bridge's own sends still being recorded: try again soon."""


class IncomingMessages:
    """Records messages from Matrix clients (dispatcher handler for `m.room.message`)."""

    def __init__(
        self,
        conversations: ConversationRepository,
        messages: MessageRepository,
        accounts: AccountRepository,
        bot_user_id: str,
        on_events: Callable[[], None] = lambda: None,
    ) -> None:
        self._conversations = conversations
        self._messages = messages
        self._accounts = accounts
        self._bot = bot_user_id
        self._on_events = on_events

    async def on_message(self, event: StoredEvent) -> None:
        """Handle one `m.room.message` event."""
        payload = event.payload
        content = payload.get("content")
        sender = payload.get("sender")
        if event.event_id is None or event.room_id is None or not isinstance(content, dict):
            return
        if sender == self._bot or not isinstance(sender, str):
            return
        relates = content.get("m.relates_to")
        if isinstance(relates, dict) and relates.get("rel_type") == "m.replace":
            return  # edits are mirrored by a later step
        conversation = await self._conversations.by_room(event.room_id)
        if conversation is None:
            return
        account = await self._accounts.get_by_user_id(sender)
        if account is None or account.platform_id not in (conversation.user_a, conversation.user_b):
            return
        if await self._messages.by_event_id(event.event_id) is not None:
            return  # the echo of a message the LMS sent through the bridge
        if await self._messages.sending(conversation.id, account.platform_id):
            raise EchoNotYetRecorded(event.event_id)
        body = content.get("body")
        if content.get("msgtype") not in TEXT_TYPES or not isinstance(body, str):
            log.info(
                "event %s: %s messages are not bridged yet", event.event_id, content.get("msgtype")
            )
            return
        html = None
        if content.get("format") == "org.matrix.custom.html" and isinstance(
            content.get("formatted_body"), str
        ):
            html = sanitize_html(content["formatted_body"])
        if await self._messages.add_incoming(
            conversation.id, account.platform_id, event.event_id, body, html, datetime.now(UTC)
        ):
            self._on_events()
