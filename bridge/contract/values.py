"""Field types the contract's shapes share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from bridge.contract.shapes import FieldError, Rule

MAX_ID = 255


def check_id(path: str, value: Any) -> str:
    """An identifier: a non-empty string of at most 255 characters, without NUL."""
    if not isinstance(value, str) or not value.strip():
        raise FieldError(path, "expected a non-empty string")
    if len(value) > MAX_ID:
        raise FieldError(path, f"longer than {MAX_ID} characters")
    if "\x00" in value:
        raise FieldError(path, "must not contain NUL characters")
    return value


# An id the LMS sends (a person, a conversation, a message, its own message id).
Id = Annotated[str, Rule(min_length=1, max_length=MAX_ID, check=check_id)]
Time = datetime
State = Literal["active", "read_only"]
OriginName = Literal["lms", "matrix"]
Origin = Annotated[OriginName, Rule("where it was made")]
# How a stored text is written: html is sanitised Matrix HTML, never sent by the LMS.
StoredFormat = Literal["plain", "markdown", "html"]
