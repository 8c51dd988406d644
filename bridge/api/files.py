"""Files over HTTP: reading a file the LMS sends (multipart), and the headers of a download."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from bridge.api.http import ApiFailure
from bridge.contract.messaging import SendFile
from bridge.contract.shapes import load, wire_names
from bridge.domain.content import Attachment
from bridge.services.attachments import AttachmentDownloads
from bridge.services.messages import FileUpload

MAX_FIELD_BYTES = 64 * 1024
TEXT_FIELDS = tuple(name for name in wire_names(SendFile) if name != "file")
# Types a browser may show inline from the bridge's origin; anything else (HTML, SVG, scripts)
# is offered as bytes to save.
_SAFE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "audio/", "video/")


async def read_file_form(request: web.Request, max_file_bytes: int) -> tuple[SendFile, FileUpload]:
    """The fields and the file of a `multipart/form-data` message; 400 or 413 otherwise."""
    fields: dict[str, Any] = {}
    upload: FileUpload | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise _bad("nested multipart bodies are not accepted", "body")
            if part.name in fields or (part.name == "file" and upload is not None):
                raise _bad(f"{part.name}: sent twice", str(part.name))
            if part.name == "file":
                data = await _read(part, max_file_bytes, "file")
                mimetype = part.headers.get("Content-Type", "application/octet-stream")
                upload = FileUpload(part.filename or "file", mimetype.split(";")[0].strip(), data)
            elif part.name in TEXT_FIELDS:
                raw = await _read(part, MAX_FIELD_BYTES, part.name)
                try:
                    fields[part.name] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise _bad(f"{part.name}: not UTF-8 text", part.name) from None
            else:
                raise _bad(f"{part.name}: unknown field", str(part.name))
    # aiohttp's words for a malformed body; a part's bad headers are an HttpProcessingError.
    except (ValueError, AssertionError, HttpProcessingError) as exc:
        raise _bad(f"not a valid multipart body ({_reason(exc)})", "body") from None
    form = load(SendFile, {**fields, **({"file": upload.data} if upload else {})})
    assert upload is not None  # the form's file is required
    caption = (form.body or "").strip() or None
    return form, FileUpload(upload.name, upload.mimetype, upload.data, caption)


async def _read(part: BodyPartReader, limit: int, name: str) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise ApiFailure(
                413, "file_too_large", f"{name}: larger than {limit:,} bytes", limit=limit
            )
    return bytes(data)


def _reason(exc: Exception) -> str:
    """What aiohttp said, on one line (its header errors quote the raw header)."""
    text = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    return " ".join(str(text).split())[:200]


def _bad(message: str, field: str) -> ApiFailure:
    return ApiFailure(400, "invalid_field", message, field=field)


def download_headers(attachment: Attachment) -> dict[str, str]:
    """Headers that offer a file for download and never let it run as a page."""
    mimetype = attachment.mimetype or "application/octet-stream"
    if not mimetype.lower().startswith(_SAFE_TYPES):
        mimetype = "application/octet-stream"
    return {
        "Content-Type": mimetype,
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(attachment.name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, no-store",
    }


async def stream_download(
    request: web.Request, downloads: AttachmentDownloads, message_id: str, reader: str
) -> web.StreamResponse:
    """Stream the file of a message to a participant, as it comes from the homeserver."""
    async with downloads.open(message_id, reader) as download:
        response = web.StreamResponse(headers=download_headers(download.attachment))
        if download.length is not None:
            response.content_length = download.length
        await response.prepare(request)
        async for chunk in download.chunks:
            await response.write(chunk)
        await response.write_eof()
        return response
