"""Message text for Matrix: plain text or Markdown rendered to HTML (raw HTML is escaped)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token

from bridge.domain.text import from_matrix

TextFormat = Literal["plain", "markdown"]
# In the content of every message and edit the bridge sends: the stored message's id, so the
# echo is recognised from the event alone, even before its event id is recorded.
BRIDGE_MESSAGE_KEY = "org.lmsbridge.message_id"
# The message types bridged as text.
TEXT_TYPES = ("m.text", "m.notice", "m.emote")
# Synapse refuses events over 65,536 bytes, counted with the envelope (ids, hashes, signatures,
# auth and previous events), which takes up to a few KB: the content must stay below this.
MAX_CONTENT_BYTES = 60 * 1024


class MarkdownRenderer:
    """CommonMark with strikethrough; any HTML written in the text comes out as text, and images
    come out as links (an outside image would be a tracking pixel for every reader, and Matrix
    allows only `mxc://` images)."""

    def __init__(self) -> None:
        self._md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
            "strikethrough"
        )
        self._md.add_render_rule("image", _image_as_link)

    def render(self, text: str) -> str:
        """The HTML of a Markdown text."""
        return self._md.render(text).strip()


def _image_as_link(self: Any, tokens: Sequence[Token], index: int, options: Any, env: Any) -> str:
    token = tokens[index]
    source = escapeHtml(str(token.attrGet("src") or ""))
    alt = escapeHtml(token.content) or source
    return f'<a href="{source}">{alt}</a>'


def content_bytes(content: dict[str, Any]) -> int:
    """The size of an event's content as the homeserver counts it (compact UTF-8 JSON)."""
    return len(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode())


def message_content(body: str, html: str | None) -> dict[str, Any]:
    """The `m.room.message` content of a text, with its HTML when it has some."""
    content: dict[str, Any] = {"msgtype": "m.text", "body": body}
    if html is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = html
    return content


def bridged(content: dict[str, Any], message_id: str) -> dict[str, Any]:
    """`content` marked as sent by the bridge for the stored message `message_id`."""
    return {**content, BRIDGE_MESSAGE_KEY: message_id}


def bridged_message_id(content: dict[str, Any]) -> str | None:
    """The stored message an event's content says the bridge sent it for, if any."""
    value = content.get(BRIDGE_MESSAGE_KEY)
    return value if isinstance(value, str) else None


def edit_content(original_event_id: str, body: str, html: str | None) -> dict[str, Any]:
    """An `m.replace` edit of an earlier message: the new text, with a "* " fallback for
    clients that don't apply edits."""
    new = message_content(body, html)
    content = message_content(f"* {body}", f"* {html}" if html is not None else None)
    content["m.new_content"] = new
    content["m.relates_to"] = {"rel_type": "m.replace", "event_id": original_event_id}
    return content


def replacement_of(content: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(the edited event id, the new content) when `content` is an `m.replace` edit."""
    relates = content.get("m.relates_to")
    new = content.get("m.new_content")
    if not isinstance(relates, dict) or relates.get("rel_type") != "m.replace":
        return None
    target = relates.get("event_id")
    if not isinstance(target, str) or not isinstance(new, dict):
        return None
    return target, new


def text_of(content: dict[str, Any]) -> tuple[str, str | None] | None:
    """(plain body, sanitised HTML or None) of a text message's content; None for other kinds.

    Both are made storable (NUL removed, lone surrogates replaced), the rest kept as typed.
    """
    body = content.get("body")
    if content.get("msgtype") not in TEXT_TYPES or not isinstance(body, str):
        return None
    formatted = content.get("formatted_body")
    if content.get("format") == "org.matrix.custom.html" and isinstance(formatted, str):
        return from_matrix(body), sanitize_html(from_matrix(formatted))
    return from_matrix(body), None


# What HTML from Matrix clients may keep (the spec's suggested subset, without images).
_TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "caption",
    "code",
    "del",
    "div",
    "em",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
_ATTRIBUTES = {"a": {"href"}, "code": {"class"}, "ol": {"start"}}


def sanitize_html(html: str) -> str:
    """HTML from a Matrix client, safe to show: no scripts, event handlers or javascript: links."""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "matrix"},
        link_rel="noopener noreferrer",
    )
