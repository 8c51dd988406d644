"""Text hygiene and message formatting rules, without a server."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.api.fields import FieldError, parse_bulk_record, validate_body
from bridge.domain.formatting import (
    MAX_CONTENT_BYTES,
    MarkdownRenderer,
    content_bytes,
    message_content,
    text_of,
)
from bridge.domain.text import (
    clean_name,
    from_matrix,
    is_blank,
    lone_surrogate_path,
    may_spell_surrogate,
)


def test_text_from_matrix_loses_nul_and_lone_surrogates_and_keeps_the_rest() -> None:
    assert from_matrix("a\x00b\x00") == "ab"
    assert from_matrix("x\ud800y") == "x\ufffdy"
    assert from_matrix("Zoë 😀 \u200b tab\t") == "Zoë 😀 \u200b tab\t"
    body, html = text_of(
        {
            "msgtype": "m.text",
            "body": "hi\x00there",
            "format": "org.matrix.custom.html",
            "formatted_body": "<b>hi\x00</b>\udfff",
        }
    ) or ("", None)
    assert (body, html) == ("hithere", "<b>hi</b>\ufffd")


@pytest.mark.parametrize("text", ["", " ", "\u200b", "\ufeff", "\u200b\u200d\ufeff\n", "\u3164"])
def test_invisible_only_texts_are_blank(text: str) -> None:
    assert is_blank(text)


@pytest.mark.parametrize("text", ["a", " . ", "😀", "\u200bx"])
def test_visible_texts_are_not_blank(text: str) -> None:
    assert not is_blank(text)


def test_names_lose_direction_controls() -> None:
    assert clean_name(" Jordan \u202e)nimdA(\u202c ") == "Jordan )nimdA("
    assert clean_name("\u2067Sam\u2069\u200f") == "Sam"
    assert validate_body("user", {"display_name": "Sam \u202enimdA"})["display_name"] == (
        "Sam nimdA"
    )
    with pytest.raises(FieldError, match="display_name"):
        validate_body("user", {"display_name": "\u200b\u202e"})


def test_the_path_of_a_lone_surrogate_is_named() -> None:
    assert lone_surrogate_path({"a": ["ok", {"b": "\ud800"}]}) == "a[1].b"
    assert lone_surrogate_path({"records": [{"id": "x"}, {"id": "\udc00"}]}) == "records[1].id"
    assert lone_surrogate_path({"\ud800": 1}) == "body"
    assert lone_surrogate_path({"a": "fine", "b": [1, None, True]}) is None


def test_json_spelling_a_surrogate_is_noticed_before_decoding() -> None:
    assert may_spell_surrogate(b'{"a": "\\ud800"}')
    assert may_spell_surrogate(b'{"a": "\\uDFFF"}')
    assert may_spell_surrogate(b'{"a": "x\xed\xa0\x80"}')  # a surrogate's own UTF-8 bytes
    assert may_spell_surrogate('{"a": "\ud800"}'.encode("utf-16-le", "surrogatepass"))
    assert not may_spell_surrogate('{"a": "caf\u00e9 \\u00e9 \ud7ff \ue000"}'.encode())


@given(st.lists(st.text(alphabet=st.characters(max_codepoint=0xFFFF)), max_size=4), st.booleans())
def test_no_decoded_surrogate_goes_unnoticed(strings: list[str], ascii_only: bool) -> None:
    document = json.dumps(strings, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    if lone_surrogate_path(json.loads(document)) is not None:
        assert may_spell_surrogate(document)


@pytest.mark.parametrize("record_type", [["user"], {"x": 1}, 3, None])
def test_a_bulk_record_with_a_strange_type_is_a_field_error(record_type: object) -> None:
    with pytest.raises(FieldError, match=r"records\[0\]\.type"):
        parse_bulk_record(0, {"type": record_type, "id": "u"})


def test_markdown_images_become_links() -> None:
    html = MarkdownRenderer().render('![the plan](https://example.org/p.png "t") and ![](x.png)')
    assert "<img" not in html
    assert '<a href="https://example.org/p.png">the plan</a>' in html
    assert '<a href="x.png">x.png</a>' in html


def test_content_size_counts_utf8_bytes() -> None:
    content = message_content("😀" * 10, None)
    assert content_bytes(content) == len('{"msgtype":"m.text","body":""}') + 40
    assert MAX_CONTENT_BYTES < 65536
