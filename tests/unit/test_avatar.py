"""Initials avatars."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bridge.domain.avatar import initials_avatar, initials_of, render_png


@pytest.mark.parametrize(
    ("name", "initials"),
    [
        ("Ada Lovelace", "AL"),
        ("ada", "A"),
        ("  Mary  Jane   Watson ", "MW"),
        ("émile zola", "ÉZ"),
        ("O'Brien, Pat", "OP"),
        ("", "?"),
        ("  --  ", "?"),
    ],
)
def test_initials(name: str, initials: str) -> None:
    assert initials_of(name) == initials


def test_colour_depends_only_on_the_stable_key() -> None:
    assert initials_avatar("Ada", "u1").color == initials_avatar("Someone Else", "u1").color
    colours = {initials_avatar("Ada", f"user-{i}").color for i in range(50)}
    assert len(colours) > 3  # spread over the palette


def test_source_key_changes_with_the_initials() -> None:
    assert initials_avatar("Ada L", "u").source_key != initials_avatar("Bea L", "u").source_key


def test_render_png_is_a_square_png_of_the_colour() -> None:
    avatar = initials_avatar("Ada Lovelace", "u1")
    image = Image.open(io.BytesIO(render_png(avatar, size=128)))
    assert image.format == "PNG"
    assert image.size == (128, 128)
    corner = image.convert("RGB").getpixel((2, 2))
    assert "#{:02x}{:02x}{:02x}".format(*corner) == avatar.color
    # The letters are drawn in white somewhere in the middle.
    assert (255, 255, 255) in {image.convert("RGB").getpixel((x, 64)) for x in range(128)}
