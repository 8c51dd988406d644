"""Inbox previews and roles, as the inbox shows them."""

from __future__ import annotations

from bridge.services.reading import PREVIEW_CHARS, preview_of, shared_role
from bridge.store.roster import UserRecord


def test_previews_are_one_line_and_short() -> None:
    assert preview_of("see you\n\n  tomorrow ", deleted=False) == "see you tomorrow"
    assert preview_of("secret", deleted=True) == "Message deleted"
    long = preview_of("x" * 500, deleted=False)
    assert len(long) == PREVIEW_CHARS and long.endswith("…")


def test_the_role_shown_is_the_one_in_a_shared_institution() -> None:
    me = UserRecord("me", "Me", None, True, None, (("u2", "student"),))
    other = UserRecord("o", "O", None, True, None, (("u1", "admin"), ("u2", "tutor")))
    assert shared_role(me, other) == "tutor"
    assert shared_role(UserRecord("x", "X", None, True, None, ()), other) == "admin"
