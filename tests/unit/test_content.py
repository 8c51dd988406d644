"""Which Matrix content the bridge carries, and how files are described, without a server."""

from __future__ import annotations

import pytest

from bridge.domain.content import (
    Attachment,
    attachment_content,
    attachment_of,
    clean_filename,
    kind_of_mimetype,
    mxc_parts,
    uncarried,
)


def test_an_image_with_a_caption_and_one_without() -> None:
    captioned = {
        "msgtype": "m.image",
        "body": "look at this",
        "filename": "cat.png",
        "url": "mxc://hs.example/abc_123",
        "info": {"size": 42, "mimetype": "image/png"},
    }
    assert attachment_of(captioned) == (
        Attachment("image", "mxc://hs.example/abc_123", "cat.png", 42, "image/png"),
        "look at this",
    )
    plain = {"msgtype": "m.file", "body": "notes.pdf", "url": "mxc://hs.example/x", "info": {}}
    attachment, caption = attachment_of(plain) or (None, None)
    assert attachment is not None and (attachment.name, attachment.size, caption) == (
        "notes.pdf",
        None,
        None,
    )


@pytest.mark.parametrize(
    "content",
    [
        {"msgtype": "m.image", "body": "x", "url": "https://evil.example/x.png"},
        {"msgtype": "m.image", "body": "x"},
        {"msgtype": "m.image", "body": "x", "file": {"url": "mxc://a/b"}},  # encrypted
        {"msgtype": "m.location", "body": "x", "url": "mxc://a/b"},
    ],
)
def test_what_is_no_carried_file(content: dict[str, object]) -> None:
    assert attachment_of(content) is None


def test_sizes_and_types_that_are_not_what_they_claim_are_dropped() -> None:
    found = attachment_of(
        {
            "msgtype": "m.video",
            "body": "v",
            "url": "mxc://a/b",
            "info": {"size": True, "mimetype": "nonsense"},
        }
    )
    assert found is not None and (found[0].size, found[0].mimetype) == (None, None)
    found = attachment_of({"msgtype": "m.audio", "body": "a", "url": "mxc://a/b", "info": []})
    assert found is not None and found[0].size is None


def test_file_names_lose_paths_and_control_characters() -> None:
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("C:\\Users\\x\\a.txt") == "a.txt"
    assert clean_filename("a\x00b\nc.png") == "abc.png"
    assert clean_filename("") == "file"
    assert len(clean_filename("x" * 1000)) == 255


def test_mxc_uris_and_kinds() -> None:
    assert mxc_parts("mxc://hs.example:8448/AbC-_1") == ("hs.example:8448", "AbC-_1")
    assert mxc_parts("mxc://hs/../x") is None
    assert mxc_parts("https://hs/x") is None
    assert [kind_of_mimetype(t) for t in ("image/png", "Audio/ogg", "video/mp4", "text/html")] == [
        "image",
        "audio",
        "video",
        "file",
    ]


def test_a_file_sent_into_matrix() -> None:
    attachment = Attachment("image", "mxc://a/b", "p.png", 10, "image/png")
    assert attachment_content(attachment, None) == {
        "msgtype": "m.image",
        "body": "p.png",
        "filename": "p.png",
        "url": "mxc://a/b",
        "info": {"size": 10, "mimetype": "image/png"},
    }
    assert attachment_content(attachment, "homework")["body"] == "homework"


def test_what_is_not_carried_has_a_name_and_parts_of_answered_things_are_quiet() -> None:
    assert uncarried("m.room.message", {"msgtype": "m.location"}) == "a location"
    assert uncarried("m.sticker", {}) == "a sticker"
    assert uncarried("org.matrix.msc3381.poll.start", {}) == "a poll"
    assert uncarried("m.room.message", {}) == "a message of an unknown kind"
    assert uncarried("com.example.thing", {}) == "an event of type com.example.thing"
    assert uncarried("org.matrix.msc3381.poll.response", {}) is None
    assert uncarried("m.call.candidates", {}) is None
