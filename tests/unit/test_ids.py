"""The platform id → Matrix ID mapping: deterministic, injective, within Matrix's limits."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.domain.ids import (
    MAX_USER_ID_BYTES,
    InvalidPlatformId,
    MatrixIdMapper,
    decode_localpart_body,
    encode_platform_id,
)

MAPPER = MatrixIdMapper("_lms_", "school.example.org")
# The localpart grammar of the Matrix spec (user identifiers).
LOCALPART = re.compile(r"[a-z0-9._=/+-]+")


@pytest.mark.parametrize(
    ("platform_id", "localpart"),
    [
        ("42", "_lms_42"),
        ("alice", "_lms_alice"),
        ("Alice", "_lms__alice"),
        ("a_b", "_lms_a__b"),
        ("a b", "_lms_a=20b"),
        ("x=y", "_lms_x=3dy"),
        ("jürgen", "_lms_j=c3=bcrgen"),
        ("u/1:2", "_lms_u=2f1=3a2"),
    ],
)
def test_known_mappings(platform_id: str, localpart: str) -> None:
    assert MAPPER.localpart(platform_id) == localpart
    assert MAPPER.user_id(platform_id) == f"@{localpart}:school.example.org"


def test_ids_differing_only_in_case_or_escaped_characters_stay_apart() -> None:
    ids = ["abc", "ABC", "Abc", "a_bc", "a bc", "a=bc", "a-bc", "a.bc", "a/bc", "a+bc"]
    assert len({MAPPER.user_id(i) for i in ids}) == len(ids)


def test_empty_id_is_refused() -> None:
    with pytest.raises(InvalidPlatformId):
        MAPPER.user_id("")


def test_over_long_ids_are_hashed_within_the_limit_and_still_distinct() -> None:
    base = "x" * 400
    a, b = MAPPER.user_id(base + "1"), MAPPER.user_id(base + "2")
    assert a != b
    for user_id in (a, b):
        assert len(user_id.encode()) <= MAX_USER_ID_BYTES
        assert "=h" in user_id
    assert MAPPER.platform_id(a) is None  # hashed ids are looked up in storage instead


def test_platform_id_reverses_plain_ids_and_rejects_foreign_ones() -> None:
    assert MAPPER.platform_id("@_lms__alice:school.example.org") == "Alice"
    assert MAPPER.platform_id("@_lms_alice:other.example.org") is None
    assert MAPPER.platform_id("@alice:school.example.org") is None
    assert MAPPER.platform_id("@_lms_A:school.example.org") is None  # not an encoding
    assert MAPPER.platform_id("@_lms_=41:school.example.org") is None  # not canonical ("_a")
    assert MAPPER.platform_id("@_lms_=61:school.example.org") is None  # not canonical ("a")
    assert MAPPER.is_bridged("@_lms_x:school.example.org")
    assert not MAPPER.is_bridged("@_lms_:school.example.org")
    assert not MAPPER.is_bridged("@lmsbot:school.example.org")


def test_prefix_and_server_too_long_for_any_localpart() -> None:
    with pytest.raises(ValueError, match="no room"):
        MatrixIdMapper("p" * 200, "s" * 60)


platform_ids = st.text(min_size=1, max_size=300)


@given(platform_ids)
@settings(max_examples=500)
def test_every_id_maps_to_a_valid_matrix_id(platform_id: str) -> None:
    user_id = MAPPER.user_id(platform_id)
    assert user_id == MAPPER.user_id(platform_id)  # deterministic
    assert len(user_id.encode()) <= MAX_USER_ID_BYTES
    localpart = user_id[1:].rsplit(":", 1)[0]
    assert LOCALPART.fullmatch(localpart)


@given(platform_ids, platform_ids)
@settings(max_examples=1000)
def test_distinct_ids_never_share_a_matrix_id(a: str, b: str) -> None:
    if a != b:
        assert MAPPER.user_id(a) != MAPPER.user_id(b)


@given(st.text(min_size=1, max_size=60))
def test_plain_encoding_round_trips(platform_id: str) -> None:
    assert decode_localpart_body(encode_platform_id(platform_id)) == platform_id
    user_id = MAPPER.user_id(platform_id)
    hashed = "=h" in user_id
    budget = MAX_USER_ID_BYTES - len("@_lms_:school.example.org")
    assert hashed == (len(encode_platform_id(platform_id)) > budget)
    assert MAPPER.platform_id(user_id) == (None if hashed else platform_id)


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_case_variants_differ(a: str, b: str) -> None:
    if a.lower() == b.lower() and a != b:
        assert MAPPER.user_id(a) != MAPPER.user_id(b)
