"""Initials avatars: the letters and colour the inbox shows for a person without a photo."""

from __future__ import annotations

import hashlib
import io
import unicodedata
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

# Background colours with enough contrast for white text (WCAG AA for large text).
_PALETTE = (
    "#1f6feb",
    "#8250df",
    "#bf3989",
    "#cf222e",
    "#bc4c00",
    "#1a7f37",
    "#0969da",
    "#6e40c9",
    "#116329",
    "#953800",
)


@dataclass(frozen=True)
class InitialsAvatar:
    """What an initials avatar shows: up to two letters on a colour picked from a stable key."""

    initials: str
    color: str

    @property
    def source_key(self) -> str:
        """Identifies the rendered image, so an unchanged avatar is not uploaded again."""
        return f"initials:{self.initials}:{self.color}"


def initials_of(display_name: str) -> str:
    """The first letters of the first and last words of a name, upper-cased ("?" if none)."""
    words = [w for w in display_name.split() if any(c.isalnum() for c in w)]
    letters = [next(c for c in w if c.isalnum()) for w in words]
    if not letters:
        return "?"
    picked = letters[0] if len(letters) == 1 else letters[0] + letters[-1]
    return unicodedata.normalize("NFC", picked).upper()


def initials_avatar(display_name: str, stable_key: str) -> InitialsAvatar:
    """The initials avatar of a person; the colour depends only on `stable_key` (their id)."""
    digest = hashlib.sha256(stable_key.encode("utf-8")).digest()
    return InitialsAvatar(initials_of(display_name), _PALETTE[digest[0] % len(_PALETTE)])


def render_png(avatar: InitialsAvatar, size: int = 256) -> bytes:
    """Render an initials avatar as a square PNG (clients crop it to a circle themselves)."""
    image = Image.new("RGB", (size, size), avatar.color)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=size * 0.42)
    draw.text((size / 2, size / 2), avatar.initials, fill="#ffffff", font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
