"""The appservice registration file the homeserver loads (the one place that knows its format)."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import yaml

from bridge.config import Config, load_config, write_back


def new_token() -> str:
    """A strong random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def registration(config: Config) -> dict[str, Any]:
    """The registration document for this bridge."""
    asc = config.appservice
    server = re.escape(config.homeserver.server_name)
    prefix = re.escape(asc.account_prefix)
    return {
        "id": asc.id,
        "url": asc.public_url,
        "as_token": asc.as_token,
        "hs_token": asc.hs_token,
        "sender_localpart": asc.bot_localpart,
        "namespaces": {
            # re.match is only start-anchored: the trailing $ keeps other servers out.
            "users": [{"regex": f"@{prefix}.+:{server}$", "exclusive": True}],
            "aliases": [{"regex": f"#{prefix}.+:{server}$", "exclusive": True}],
            "rooms": [],
        },
        "rate_limited": False,
        "receive_ephemeral": True,
        "de.sorunome.msc2409.push_ephemeral": True,
    }


def write_registration(config: Config, path: Path) -> None:
    """Write the registration file (readable only by its owner: it holds both tokens)."""
    text = "# Appservice registration for lms-matrix-bridge; list it in Synapse's\n"
    text += "# app_service_config_files and restart Synapse after every change.\n"
    text += yaml.safe_dump(registration(config), sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, text)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, whatever mode an older copy had."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


def ensure_secrets(config_path: Path) -> tuple[Config, list[str]]:
    """Generate the tokens and secrets the config lacks, save them in it, and reload it."""
    config = load_config(config_path)
    generated = {
        key: new_token()
        for key, value in (
            ("appservice.as_token", config.appservice.as_token),
            ("appservice.hs_token", config.appservice.hs_token),
            ("lms.api_token", config.lms.api_token),
            ("lms.webhook_secret", config.lms.webhook_secret),
        )
        if not value
    }
    if generated:
        write_back(config_path, generated)
        config_path.chmod(0o600)  # it holds secrets now
        config = load_config(config_path)
    return config, list(generated)
