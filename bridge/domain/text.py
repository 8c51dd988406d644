"""Text hygiene: what the bridge stores and shows is valid, visible Unicode.

Text from Matrix clients is normalised (a participant must not be able to make storage fail),
text from the LMS is checked (bad input gets a clear 400). Names lose the direction controls that
let "Jordan (Admin)" be displayed from text that reads otherwise.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

REPLACEMENT = "\ufffd"
# Explicit direction embeddings, overrides and isolates, and the direction marks.
_BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
)
# Letters that render as nothing (Hangul fillers, the braille blank).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Halves of UTF-16 pairs, which are no characters on their own.
_SURROGATE = re.compile("[\ud800-\udfff]")
# How a surrogate can be spelled in a UTF-8 JSON document: a \u escape of D800-DFFF, or the
# three bytes UTF-8 would give it (Python's JSON decoder lets those through).
_SURROGATE_IN_JSON = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
# ASCII that shows nothing: space and the control characters.
_ASCII_INVISIBLE = "".join(map(chr, range(33))) + "\x7f"
# Character categories that show nothing: separators, controls and format characters
# (zero-width spaces and joiners, the byte order mark).
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


def has_lone_surrogate(text: str) -> bool:
    """Whether `text` holds a code point that can't be encoded as UTF-8."""
    return _SURROGATE.search(text) is not None


def may_spell_surrogate(document: bytes) -> bool:
    """Whether a JSON document's bytes may decode to a string with a surrogate (a valid pair
    too): when not, the decoded value needs no `lone_surrogate_path` (one scan in C, where
    that check encodes the whole value again)."""
    # A UTF-16 or UTF-32 document (the decoder takes those too) has NUL bytes; UTF-8 JSON can't.
    return b"\x00" in document or _SURROGATE_IN_JSON.search(document) is not None


def lone_surrogate_path(value: Any, path: str = "body") -> str | None:
    """The dotted path of the first string (key or value) in decoded JSON that holds a lone
    surrogate, or None when every string is valid Unicode."""
    try:
        # One pass in C settles the usual case: every string encodes.
        json.dumps(value, ensure_ascii=False).encode()
        return None
    except UnicodeEncodeError:
        return _surrogate_path(value, path)


def _surrogate_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if has_lone_surrogate(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if has_lone_surrogate(key):
                return path
            found = _surrogate_path(item, f"{path}.{key}" if path != "body" else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _surrogate_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def from_matrix(text: str) -> str:
    """Text from a Matrix client made storable: NUL removed, lone surrogates replaced, the rest
    kept as typed."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _SURROGATE.sub(REPLACEMENT, text)


def is_blank(text: str) -> bool:
    """Whether `text` would show nothing: only spaces, controls and invisible characters."""
    if text.isascii():
        return not text.strip(_ASCII_INVISIBLE)
    return all(
        unicodedata.category(char) in _INVISIBLE_CATEGORIES or char in _BLANK_LETTERS
        for char in text
    )


def clean_name(text: str) -> str:
    """A name or title as shown: direction controls removed, surrounding space trimmed."""
    return text.translate(_BIDI_CONTROLS).strip()
