"""The registration file: fields Synapse requires, regexes anchored and escaped."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.config import load_config, render_example, write_back
from bridge.matrix.registration import ensure_secrets, registration, write_registration


def _config(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(render_example())
    write_back(path, {"homeserver.server_name": "uni.example.org"})
    return ensure_secrets(path)[0]


def test_registration_has_every_field_synapse_needs(tmp_path: Path) -> None:
    config = _config(tmp_path)
    reg = registration(config)
    for key in ("id", "url", "as_token", "hs_token", "sender_localpart", "namespaces"):
        assert reg[key], key
    assert reg["rate_limited"] is False
    assert reg["receive_ephemeral"] is True
    assert reg["de.sorunome.msc2409.push_ephemeral"] is True
    assert reg["as_token"] != reg["hs_token"]


def test_user_regex_is_anchored_and_escaped(tmp_path: Path) -> None:
    users = re.compile(registration(_config(tmp_path))["namespaces"]["users"][0]["regex"])
    # Synapse uses re.match: anchored at the start only, so the regex must end with $.
    assert users.match("@_lms_42:uni.example.org")
    assert users.match("@_lms__alice=20b:uni.example.org")
    assert not users.match("@_lms_42:uni.example.org.evil.com")
    assert not users.match("@_lms_42:uniXexample.org")
    assert not users.match("@_lms_:uni.example.org")
    assert not users.match("@someone_lms_42:uni.example.org")
    assert not users.match("@lmsbot:uni.example.org")
    aliases = re.compile(registration(_config(tmp_path))["namespaces"]["aliases"][0]["regex"])
    assert aliases.match("#_lms_room:uni.example.org")
    assert not aliases.match("#_lms_room:uni.example.org.evil")


def test_generated_tokens_are_strong_and_saved_back(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert len(config.appservice.as_token) >= 40
    assert len(config.lms.api_token) >= 40
    assert (tmp_path / "config.yaml").stat().st_mode & 0o077 == 0  # it holds secrets now
    reloaded = load_config(tmp_path / "config.yaml")
    assert reloaded.appservice.as_token == config.appservice.as_token
    assert ensure_secrets(tmp_path / "config.yaml") == (reloaded, [])


def test_registration_file_is_private(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = tmp_path / "reg" / "registration.yaml"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_registration(config, path)
    assert path.stat().st_mode & 0o077 == 0
    assert "as_token" in path.read_text()
