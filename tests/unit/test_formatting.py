"""Message formatting: Markdown out, sanitised HTML in."""

from __future__ import annotations

from bridge.domain.formatting import (
    MarkdownRenderer,
    edit_content,
    message_content,
    replacement_of,
    sanitize_html,
    text_of,
)


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


def test_an_edit_carries_the_new_text_and_a_fallback() -> None:
    content = edit_content("$orig", "new", "<p>new</p>")
    assert content["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$orig"}
    assert content["m.new_content"] == message_content("new", "<p>new</p>")
    assert content["body"] == "* new"
    assert replacement_of(content) == ("$orig", content["m.new_content"])


def test_only_well_formed_replacements_count_as_edits() -> None:
    assert replacement_of({"body": "x"}) is None
    assert replacement_of({"m.relates_to": {"rel_type": "m.thread", "event_id": "$e"}}) is None
    assert replacement_of({"m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}}) is None
    assert (
        replacement_of(
            {"m.new_content": {}, "m.relates_to": {"rel_type": "m.replace", "event_id": 5}}
        )
        is None
    )


def test_text_of_reads_text_messages_and_sanitises_their_html() -> None:
    assert text_of({"msgtype": "m.text", "body": "hi"}) == ("hi", None)
    assert text_of(
        {
            "msgtype": "m.notice",
            "body": "hi",
            "format": "org.matrix.custom.html",
            "formatted_body": "<b onclick=x()>hi</b>",
        }
    ) == ("hi", "<b>hi</b>")
    assert text_of({"msgtype": "m.image", "body": "cat.png"}) is None
    assert text_of({"msgtype": "m.text", "body": 5}) is None
