"""Downloading the files messages carry: for the conversation's participants only, streamed
from the homeserver's media repository (the bridge keeps no copy)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from bridge.domain.content import Attachment, mxc_parts
from bridge.matrix.client import HomeserverClient, HomeserverError, HomeserverUnreachable
from bridge.services.refusals import Refused, no_such_message
from bridge.store.conversations import ConversationRepository
from bridge.store.messages import MessageRepository

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Download:
    """An attachment being read from the homeserver."""

    attachment: Attachment
    length: int | None  # as the homeserver announced it
    chunks: AsyncIterator[bytes]


class AttachmentDownloads:
    """Opens a message's file for one of the two people of its conversation."""

    def __init__(
        self,
        messages: MessageRepository,
        conversations: ConversationRepository,
        client: HomeserverClient,
        max_bytes: int,
    ) -> None:
        self._messages = messages
        self._conversations = conversations
        self._client = client
        self._max_bytes = max_bytes

    @contextlib.asynccontextmanager
    async def open(self, message_id: str, reader: str) -> AsyncIterator[Download]:
        """The file of `message_id` as `reader` may download it; Refused otherwise."""
        record = await self._messages.get(message_id)
        if record is None or record.deleted_at is not None:
            raise no_such_message(message_id)
        conversation = await self._conversations.get(record.conversation_id)
        if conversation is None or not conversation.has(reader):
            raise Refused(403, "not_a_participant", "Only the conversation's participants")
        attachment = record.attachment
        parts = mxc_parts(attachment.mxc) if attachment is not None else None
        if attachment is None or parts is None:
            raise Refused(404, "no_attachment", "This message carries no file")
        try:
            async with self._client.media(*parts) as response:
                length = response.content_length
                if length is not None and length > self._max_bytes:
                    raise _too_large(self._max_bytes)
                yield Download(attachment, length, self._chunks(response.content))
        except HomeserverUnreachable as exc:
            raise Refused(
                503, "homeserver_unavailable", "The homeserver can't be reached; try again shortly"
            ) from exc
        except HomeserverError as exc:
            if exc.status == 404:
                raise Refused(
                    404, "attachment_gone", "The homeserver no longer has this file"
                ) from exc
            raise Refused(
                502, "attachment_unavailable", f"The homeserver refused the file ({exc.status})"
            ) from exc

    async def _chunks(self, stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
        read = 0
        async for chunk in stream.iter_chunked(CHUNK_BYTES):
            read += len(chunk)
            if read > self._max_bytes:
                raise _too_large(self._max_bytes)
            yield chunk


def _too_large(limit: int) -> Refused:
    return Refused(413, "file_too_large", f"Files are limited to {limit:,} bytes", limit=limit)
