"""Message formatting: Markdown out, sanitised HTML in."""

from __future__ import annotations

from bridge.domain.formatting import MarkdownRenderer, message_content, sanitize_html


def test_markdown_is_rendered_and_raw_html_escaped() -> None:
    html = MarkdownRenderer().render("**hi** ~~no~~ <img src=x onerror=alert(1)>")
    assert html == "<p><strong>hi</strong> <s>no</s> &lt;img src=x onerror=alert(1)&gt;</p>"


def test_html_from_matrix_loses_scripts_handlers_and_javascript_links() -> None:
    dirty = (
        '<p onclick="x()">a<script>alert(1)</script><a href="javascript:x()">l</a>'
        '<a href="https://ok.example">ok</a><img src="mxc://x/y"><iframe></iframe></p>'
    )
    clean = sanitize_html(dirty)
    for bad in ("script", "onclick", "javascript", "<img", "iframe"):
        assert bad not in clean
    assert '<a href="https://ok.example" rel="noopener noreferrer">ok</a>' in clean


def test_message_content() -> None:
    assert message_content("hi", None) == {"msgtype": "m.text", "body": "hi"}
    assert message_content("**hi**", "<p><strong>hi</strong></p>")["format"] == (
        "org.matrix.custom.html"
    )
