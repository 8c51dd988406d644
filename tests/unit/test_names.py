"""Name normalisation for people search."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.names import name_key, name_words, prefix_end, unicode_name_words


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Zoë O'Brien-Smith", ["zoe", "obrien", "smith"]),
        ("ÅSA  Öberg", ["asa", "oberg"]),
        ("Jean-Luc Picard", ["jean", "luc", "picard"]),
        ("李 小龍", ["李", "小龍"]),
        ("  ", []),
        ("Straße", ["strasse"]),
    ],
)
def test_name_words(name: str, words: list[str]) -> None:
    assert name_words(name) == words


def test_name_key_and_prefix_ranges() -> None:
    assert name_key("  Zoë   Ålvarez ") == "zoe alvarez"
    end = prefix_end("al")
    assert "al" <= "alvarez" < end
    assert not (end > "am")
    # A space sorts before every letter, so ordering by (first word, key) is ordering by key.
    assert sorted(["al zed", "alan b", "al"]) == ["al", "al zed", "alan b"]


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_names_split_as_any_name_does(name: str) -> None:
    assert name_words(name) == unicode_name_words(name)
