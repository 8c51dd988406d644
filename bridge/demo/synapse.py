"""A throwaway Synapse from the installed `matrix-synapse` package, on SQLite and loopback.

Used by `lms-bridge demo` and by the test suite. Everything lives in one folder; starting again
with the same folder reuses its keys, database and secrets. Its few set-up calls (creating an
admin, setting a password) are plain blocking requests of its own: they provision this local
homeserver, they are not the bridge talking to its homeserver (that is `bridge.matrix.client`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from bridge.matrix.registration import write_private


def _fast() -> dict[str, int]:
    """A rate limit high enough never to slow a demo or a test down."""
    return {"per_second": 10000, "burst_count": 10000}


class SynapseError(RuntimeError):
    """Synapse could not be prepared or started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether `port` can be bound on `host`."""
    with socket.socket() as sock:
        # Servers bind with SO_REUSEADDR, so connections in TIME_WAIT don't make a port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def write_other_appservice_registration(path: Path, url: str) -> Path:
    """The registration of a second appservice interested in every room, as a real homeserver
    has (another bridge, a moderation bot): Synapse then draws its transaction ids and the
    bridge's from one sequence. For tests and benchmarks; `url` must answer `{}`."""
    path.write_text(
        yaml.safe_dump(
            {
                "id": "other-appservice",
                "url": url,
                "as_token": secrets.token_urlsafe(24),
                "hs_token": secrets.token_urlsafe(24),
                "sender_localpart": "other_bot",
                "namespaces": {
                    "users": [{"regex": "@_other_.*", "exclusive": True}],
                    "rooms": [{"regex": ".*", "exclusive": False}],
                    "aliases": [],
                },
                "rate_limited": False,
                "receive_ephemeral": True,
                "de.sorunome.msc2409.push_ephemeral": True,
            }
        )
    )
    return path


def synapse_installed() -> bool:
    """Whether the `matrix-synapse` package is importable by this interpreter."""
    try:
        import synapse  # noqa: F401
    except ImportError:
        return False
    return True


class LocalSynapse:
    """One Synapse process with its configuration and data in `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        server_name: str = "localhost",
        port: int | None = None,
        registration_files: list[Path] | None = None,
        database: dict[str, Any] | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        # Synapse's `database` section; None: SQLite in the data folder.
        self.database = database
        self.server_name = server_name
        self.port = port or free_port()
        self.registration_files = [p.resolve() for p in registration_files or []]
        self.config_path = self.data_dir / "homeserver.yaml"
        self.pid_path = self.data_dir / "synapse.pid"
        self.log_path = self.data_dir / "homeserver.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The client-server API base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def shared_secret(self) -> str:
        """The registration shared secret (for creating admin accounts)."""
        return str(self._secrets()["registration_shared_secret"])

    def _secrets(self) -> dict[str, str]:
        path = self.data_dir / "secrets.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
        values = {
            key: secrets.token_urlsafe(32)
            for key in ("registration_shared_secret", "macaroon_secret_key", "form_secret")
        }
        write_private(path, json.dumps(values))
        return values

    def write_config(self) -> None:
        """Write homeserver.yaml (and its log config), generating the signing key once."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_config = self.data_dir / "log.yaml"
        log_config.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "formatters": {
                        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
                    },
                    "handlers": {
                        "file": {
                            "class": "logging.FileHandler",
                            "formatter": "plain",
                            "filename": str(self.log_path),
                        }
                    },
                    "root": {"level": "INFO", "handlers": ["file"]},
                    "disable_existing_loggers": False,
                }
            )
        )
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": self.database
            or {"name": "sqlite3", "args": {"database": str(self.data_dir / "homeserver.db")}},
            "media_store_path": str(self.data_dir / "media"),
            "signing_key_path": str(self.data_dir / "signing.key"),
            "log_config": str(log_config),
            "report_stats": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "app_service_config_files": [str(p) for p in self.registration_files],
            "enable_registration": False,
            "bcrypt_rounds": 4,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "rc_message": _fast(),
            "rc_registration": _fast(),
            "rc_login": {"address": _fast(), "account": _fast(), "failed_attempts": _fast()},
            "rc_joins": {"local": _fast(), "remote": _fast()},
            "rc_joins_per_room": _fast(),
            "rc_invites": {"per_room": _fast(), "per_user": _fast(), "per_issuer": _fast()},
            "rc_room_creation": _fast(),
            "rc_reports": _fast(),
            "rc_admin_redaction": _fast(),
            "rc_media_create": _fast(),
            **self._secrets(),
        }
        # Private: it holds the registration shared secret (enough to create admin accounts).
        write_private(self.config_path, yaml.safe_dump(config, sort_keys=False))
        if not (self.data_dir / "signing.key").exists():
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "synapse.app.homeserver",
                    "-c",
                    str(self.config_path),
                    "--generate-keys",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise SynapseError(f"synapse --generate-keys failed:\n{result.stderr[-2000:]}")

    def start(self, timeout: float = 60.0) -> None:
        """Start Synapse and wait until its client API answers."""
        self.write_config()
        self._stop_leftover()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            cwd=self.data_dir,
            stdout=subprocess.DEVNULL,
            stderr=open(self.data_dir / "homeserver.stderr", "ab"),  # noqa: SIM115
            start_new_session=True,
        )
        self.pid_path.write_text(str(self._process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SynapseError(
                    f"Synapse exited with {self._process.returncode}; see {self.log_path}:\n"
                    + self._tail()
                )
            try:
                self.call("GET", "/_matrix/client/versions")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        raise SynapseError(f"Synapse did not answer within {timeout:.0f}s; see {self.log_path}")

    def _stop_leftover(self) -> None:
        """Stop a Synapse of this folder left running by a process that died without cleaning up."""
        try:
            pid = int(self.pid_path.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if str(self.config_path).encode() in cmdline:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)

    def _tail(self) -> str:
        for path in (self.data_dir / "homeserver.stderr", self.log_path):
            if path.exists():
                return path.read_text(errors="replace")[-3000:]
        return ""

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return self._process.pid if self._process and self._process.poll() is None else None

    def stop(self, timeout: float = 20.0) -> None:
        """Stop Synapse (SIGTERM, then SIGKILL after `timeout`)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        self.pid_path.unlink(missing_ok=True)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """SIGKILL: Synapse gets no chance to finish anything (for fault tests)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        self.pid_path.unlink(missing_ok=True)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    # --- small blocking client for set-up calls ---

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> dict[str, Any]:
        """One JSON request to this Synapse; raises urllib.error.HTTPError on errors."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read() or b"{}"))

    def register_user(self, localpart: str, password: str, *, admin: bool = False) -> str:
        """Create a local account through the shared-secret API (idempotent); returns its ID."""
        nonce = self.call("GET", "/_synapse/admin/v1/register")["nonce"]
        message = "\x00".join((nonce, localpart, password, "admin" if admin else "notadmin"))
        mac = hmac.new(self.shared_secret.encode(), message.encode(), hashlib.sha1)
        try:
            result = self.call(
                "POST",
                "/_synapse/admin/v1/register",
                {
                    "nonce": nonce,
                    "username": localpart,
                    "password": password,
                    "admin": admin,
                    "mac": mac.hexdigest(),
                },
            )
            return str(result["user_id"])
        except urllib.error.HTTPError as exc:
            if exc.code == 400 and b"M_USER_IN_USE" in exc.read():
                return f"@{localpart}:{self.server_name}"
            raise

    def login(self, user: str, password: str) -> str:
        """Log in with a password; returns the access token."""
        result = self.call(
            "POST",
            "/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
            },
        )
        return str(result["access_token"])

    def set_password(self, admin_token: str, user_id: str, password: str) -> None:
        """Give an account (e.g. a bridged one) a password, so a Matrix client can log in."""
        self.call(
            "PUT",
            f"/_synapse/admin/v2/users/{quote(user_id, safe='')}",
            {"password": password, "logout_devices": False},
            token=admin_token,
        )
