"""What kinds of Matrix content the bridge carries, as plain rules.

Text (see `formatting`), files of four kinds (images, audio, video, any other file) and reactions
reach the LMS. Everything else a Matrix client can send (locations, stickers, polls, calls, …) is
named here so the sender can be told it was not delivered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bridge.domain.text import from_matrix

# msgtype → the attachment kind the LMS sees.
ATTACHMENT_MSGTYPES = {"m.image": "image", "m.audio": "audio", "m.video": "video", "m.file": "file"}
_MSGTYPE_OF_KIND = {kind: msgtype for msgtype, kind in ATTACHMENT_MSGTYPES.items()}
# A content URI: mxc://<server name>/<media id>.
_MXC = re.compile(r"mxc://([A-Za-z0-9.\-:\[\]]+)/([A-Za-z0-9_\-]+)")
MAX_FILENAME = 255

# What people call the things the bridge does not carry, by msgtype or event type.
_UNCARRIED_MSGTYPES = {"m.location": "a location", "m.key.verification.request": "a request"}
_UNCARRIED_TYPES = {
    "m.sticker": "a sticker",
    "m.poll.start": "a poll",
    "org.matrix.msc3381.poll.start": "a poll",
    "m.call.invite": "a call",
    "org.matrix.msc3401.call": "a call",
}
# Events that belong to something else and get no notice of their own (a poll's answers, a
# call's negotiation, receipts of things): the thing itself was answered already.
_QUIET_PREFIXES = ("m.call.", "m.poll.", "org.matrix.msc3381.poll.", "m.key.verification.")


@dataclass(frozen=True)
class Attachment:
    """A file carried by a message."""

    kind: str  # image, audio, video or file
    mxc: str
    name: str
    size: int | None
    mimetype: str | None


def mxc_parts(uri: str) -> tuple[str, str] | None:
    """(server name, media id) of a well-formed mxc:// URI."""
    match = _MXC.fullmatch(uri)
    return (match.group(1), match.group(2)) if match else None


def kind_of_mimetype(mimetype: str) -> str:
    """The attachment kind a file of this type is sent as."""
    major = mimetype.split("/", 1)[0].lower()
    return major if major in ("image", "audio", "video") else "file"


def clean_filename(name: str) -> str:
    """A file name safe to show and to offer for download: no path, no control characters."""
    base = from_matrix(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(char for char in base if char.isprintable()).strip()
    return base[:MAX_FILENAME] or "file"


def attachment_of(content: dict[str, Any]) -> tuple[Attachment, str | None] | None:
    """(the file, its caption or None) of an image, audio, video or file message."""
    kind = ATTACHMENT_MSGTYPES.get(str(content.get("msgtype")))
    url = content.get("url")
    if kind is None or not isinstance(url, str) or mxc_parts(url) is None:
        return None
    body = content.get("body") if isinstance(content.get("body"), str) else ""
    filename = content.get("filename")
    # With a `filename`, the body is a caption; without one, the body is the file name.
    if isinstance(filename, str) and filename.strip():
        name, caption = filename, (from_matrix(str(body)).strip() or None)
        if caption == name:
            caption = None
    else:
        name, caption = str(body), None
    info = content.get("info") if isinstance(content.get("info"), dict) else {}
    size = info.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        size = None
    mimetype = info.get("mimetype")
    return (
        Attachment(
            kind=kind,
            mxc=url,
            name=clean_filename(name),
            size=size
            if isinstance(size, int) and not isinstance(size, bool) and size >= 0
            else None,
            mimetype=mimetype if isinstance(mimetype, str) and "/" in mimetype else None,
        ),
        caption,
    )


def attachment_content(attachment: Attachment, caption: str | None) -> dict[str, Any]:
    """The `m.room.message` content that sends a file (with its caption, if any)."""
    info: dict[str, Any] = {}
    if attachment.size is not None:
        info["size"] = attachment.size
    if attachment.mimetype is not None:
        info["mimetype"] = attachment.mimetype
    return {
        "msgtype": _MSGTYPE_OF_KIND[attachment.kind],
        "body": caption or attachment.name,
        "filename": attachment.name,
        "url": attachment.mxc,
        "info": info,
    }


def uncarried(event_type: str, content: dict[str, Any]) -> str | None:
    """What a person would call this event, when the bridge does not carry it and should say
    so; None when it is carried, or belongs to something already answered."""
    if event_type == "m.room.message":
        msgtype = content.get("msgtype")
        if not isinstance(msgtype, str):
            return "a message of an unknown kind"
        return _UNCARRIED_MSGTYPES.get(msgtype, f"a message of type {msgtype[:40]}")
    if event_type in _UNCARRIED_TYPES:
        return _UNCARRIED_TYPES[event_type]
    if event_type.startswith(_QUIET_PREFIXES):
        return None
    return f"an event of type {event_type[:60]}"


def not_delivered_notice(what: str) -> str:
    """The bot's words to someone whose message did not reach the platform."""
    return (
        f"Not delivered to the learning platform: {what}. The platform carries text, images, "
        "audio, video, files and reactions."
    )
