"""Platform user id → Matrix user id, as a pure, injective mapping.

Encoding of the platform id (after the configured prefix), following the Matrix spec's advice
for mapping other character sets to localparts:

- ``a-z``, ``0-9``, ``.`` and ``-`` stand for themselves;
- an upper-case letter ``X`` becomes ``_x`` and ``_`` becomes ``__``;
- every other UTF-8 byte becomes ``=`` and two lower-case hex digits (``=`` itself is ``=3d``).

Decoding is unambiguous, so two different platform ids never share a Matrix ID. A user id may be at
most 255 bytes; when the encoding would exceed that, the localpart is the encoding cut at an escape
boundary followed by ``=h`` and 32 hex digits of the id's SHA-256. ``=h`` never occurs in a plain
encoding, so long and short forms cannot meet.
"""

from __future__ import annotations

import hashlib
import re
import string

MAX_USER_ID_BYTES = 255
_PLAIN = frozenset(string.ascii_lowercase + string.digits + ".-")
_HASH_MARK = "=h"
_HASH_HEX = 32
_TOKEN_RE = re.compile(r"__|_[a-z]|=[0-9a-f]{2}|[a-z0-9.-]")


class InvalidPlatformId(ValueError):
    """A platform id that can't be mapped (empty)."""


def encode_platform_id(platform_id: str) -> str:
    """The reversible localpart encoding of a platform id (without prefix or length limit)."""
    out: list[str] = []
    for char in platform_id:
        if char in _PLAIN:
            out.append(char)
        elif char == "_":
            out.append("__")
        elif "A" <= char <= "Z":
            out.append("_" + char.lower())
        else:
            out.extend(f"={byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


def decode_localpart_body(body: str) -> str | None:
    """Invert `encode_platform_id`; None when `body` is not a plain encoding (e.g. a hashed one)."""
    raw = bytearray()
    pos = 0
    while pos < len(body):
        match = _TOKEN_RE.match(body, pos)
        if match is None:
            return None
        token = match.group()
        if token == "__":
            raw += b"_"
        elif token.startswith("_"):
            raw += token[1].upper().encode()
        elif token.startswith("="):
            raw.append(int(token[1:], 16))
        else:
            raw += token.encode()
        pos = match.end()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


class MatrixIdMapper:
    """Maps platform ids to the Matrix IDs of their bridged accounts on one homeserver."""

    def __init__(self, prefix: str, server_name: str) -> None:
        self.prefix = prefix
        self.server_name = server_name
        # "@" + prefix + body + ":" + server_name must fit in 255 bytes.
        self._body_budget = MAX_USER_ID_BYTES - len(f"@{prefix}:{server_name}".encode())
        if self._body_budget < len(_HASH_MARK) + _HASH_HEX + 1:
            raise ValueError("account prefix and server name leave no room for a localpart")

    def localpart(self, platform_id: str) -> str:
        """The localpart of a platform user's Matrix account."""
        if not platform_id:
            raise InvalidPlatformId("a platform id can't be empty")
        body = encode_platform_id(platform_id)
        if len(body) > self._body_budget:
            body = self._hashed_body(platform_id, body)
        return self.prefix + body

    def user_id(self, platform_id: str) -> str:
        """The full Matrix ID of a platform user's account."""
        return f"@{self.localpart(platform_id)}:{self.server_name}"

    def platform_id(self, user_id: str) -> str | None:
        """The platform id behind a Matrix ID, when it is a plainly encoded bridged account.

        Hashed (over-long) ids can't be reversed; callers look those up in storage.
        """
        localpart, sep, server = user_id.removeprefix("@").partition(":")
        if not user_id.startswith("@") or not sep or server != self.server_name:
            return None
        if not localpart.startswith(self.prefix):
            return None
        body = localpart[len(self.prefix) :]
        decoded = decode_localpart_body(body) if body else None
        # Only the canonical spelling counts: "=41" decodes to "A", whose account is "_a".
        return decoded if decoded is not None and encode_platform_id(decoded) == body else None

    def is_bridged(self, user_id: str) -> bool:
        """Whether a Matrix ID lies in the bridged accounts' namespace."""
        localpart, _, server = user_id.removeprefix("@").partition(":")
        return (
            user_id.startswith("@")
            and server == self.server_name
            and (localpart.startswith(self.prefix) and len(localpart) > len(self.prefix))
        )

    def _hashed_body(self, platform_id: str, body: str) -> str:
        digest = hashlib.sha256(platform_id.encode("utf-8")).hexdigest()[:_HASH_HEX]
        keep = self._body_budget - len(_HASH_MARK) - _HASH_HEX
        cut = 0
        for match in _TOKEN_RE.finditer(body):
            if match.end() > keep:
                break
            cut = match.end()
        return f"{body[:cut]}{_HASH_MARK}{digest}"
