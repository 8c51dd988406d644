"""Name normalisation for people search: case- and accent-insensitive words."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_WORDS = 8
_ASCII_SEPARATORS = re.compile("[^A-Za-z0-9]")


def name_words(text: str) -> list[str]:
    """The searchable words of a name or query: accents removed, case folded, punctuation dropped.

    "Zoë O'Brien-Smith" → ["zoe", "obrien", "smith"]. Apostrophes join (O'Brien is one word);
    other punctuation separates.
    """
    if text.isascii():
        # The same rule, in C: ASCII has nothing to decompose, and folds as it lowers.
        return _ASCII_SEPARATORS.sub(" ", text.replace("'", "")).lower().split()
    return unicode_name_words(text)


def unicode_name_words(text: str) -> list[str]:
    """`name_words` for any text, a character at a time."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char):
            continue
        if char in "'’":
            continue
        kept.append(char.casefold() if char.isalnum() else " ")
    return "".join(kept).split()


def name_key(text: str) -> str:
    """The sort and prefix key of a name: its words joined by single spaces."""
    return " ".join(name_words(text))


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (for range scans)."""
    return prefix + "\U0010ffff"
