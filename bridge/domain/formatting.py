"""Message text for Matrix: plain text or Markdown rendered to HTML (raw HTML is escaped)."""

from __future__ import annotations

from typing import Any, Literal

from markdown_it import MarkdownIt

TextFormat = Literal["plain", "markdown"]


class MarkdownRenderer:
    """CommonMark with strikethrough; any HTML written in the text comes out as text."""

    def __init__(self) -> None:
        self._md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
            "strikethrough"
        )

    def render(self, text: str) -> str:
        """The HTML of a Markdown text."""
        return self._md.render(text).strip()


def message_content(body: str, html: str | None) -> dict[str, Any]:
    """The `m.room.message` content of a text, with its HTML when it has some."""
    content: dict[str, Any] = {"msgtype": "m.text", "body": body}
    if html is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = html
    return content
