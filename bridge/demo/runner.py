"""`lms-bridge demo`: a throwaway Synapse, the bridge and sample accounts, on one machine."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bridge.app import Bridge, StartupError
from bridge.config import Config, load_config, render_example, write_back
from bridge.demo.synapse import LocalSynapse, SynapseError, free_port, port_is_free
from bridge.domain.roster import UserPut
from bridge.importers.oneroster import OneRosterImport
from bridge.logs import setup_logging
from bridge.matrix.registration import ensure_secrets, write_private, write_registration

SERVER_NAME = "localhost"
DEFAULT_HOMESERVER_PORT = 8008
DEFAULT_BRIDGE_PORT = 29340


SAMPLE_EXPORT = Path(__file__).parent / "oneroster_sample"
# People of the sample college who get a password, so they can log in from a Matrix client.
DEMO_LOGINS = ("stu-ava", "tut-kim", "adm-lee")
DEMO_TUTOR = "tut-kim"
# The demo tutor's stated hours, so the inbox shows them and out-of-hours notices can be seen.
DEMO_HOURS = json.dumps(
    {
        "timezone": "Europe/London",
        "weekly_hours": [
            {"day": day, "start": "10:00", "end": "16:00"} for day in ("mon", "tue", "wed", "thu")
        ],
        "note": "I answer within one working day.",
    }
)


def run_demo(data_dir: Path | None) -> int:
    """Run the demo until Ctrl-C or SIGTERM; returns the exit code."""
    temporary = data_dir is None
    folder = Path(tempfile.mkdtemp(prefix="lms-bridge-demo-")) if data_dir is None else data_dir
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(_demo(folder, temporary))
    except (SynapseError, StartupError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


def _pick_port(previous: Any, default: int) -> int:
    for candidate in (previous, default):
        if isinstance(candidate, int) and port_is_free(candidate):
            return candidate
    return free_port()


def _prepare_config(folder: Path, hs_port: int, bridge_port: int) -> Config:
    path = folder / "config.yaml"
    if not path.exists():
        path.write_text(render_example(), encoding="utf-8")
    write_back(
        path,
        {
            "homeserver.url": f"http://127.0.0.1:{hs_port}",
            "homeserver.server_name": SERVER_NAME,
            "appservice.listen_port": bridge_port,
            "appservice.public_url": f"http://127.0.0.1:{bridge_port}",
            "database.url": "sqlite:///bridge.db",
            # The printed inbox links stay usable as long as their sessions would last.
            "embed.link_seconds": 8 * 3600,
        },
    )
    config, _generated = ensure_secrets(path)
    write_registration(config, folder / "registration.yaml")
    return config


async def _demo(folder: Path, temporary: bool) -> int:
    # Signals are watched from the first moment, so a Ctrl-C during start-up still stops Synapse.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state_path = folder / "demo.json"
    previous: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    hs_port = _pick_port(previous.get("homeserver_port"), DEFAULT_HOMESERVER_PORT)
    bridge_port = _pick_port(previous.get("bridge_port"), DEFAULT_BRIDGE_PORT)
    config = _prepare_config(folder, hs_port, bridge_port)
    _log_to_file(config, folder / "bridge.log")
    synapse = LocalSynapse(
        folder / "synapse",
        server_name=SERVER_NAME,
        port=hs_port,
        registration_files=[folder / "registration.yaml"],
    )
    # The bridge is made once the homeserver's admin exists: it is the demo's moderator.
    bridges: list[Bridge] = []
    startup = asyncio.create_task(
        _start(synapse, bridges, folder / "config.yaml", previous.get("passwords", {}), state_path)
    )
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({startup, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if startup.done():
            _print_welcome(startup.result(), folder, temporary)
            await stopping
        print("\nstopping …", flush=True)
    finally:
        for task in (startup, stopping):
            task.cancel()
        await asyncio.gather(startup, stopping, return_exceptions=True)
        for bridge in bridges:
            await bridge.stop()
        await asyncio.to_thread(synapse.stop)
    print("stopped.", flush=True)
    return 0


async def _start(
    synapse: LocalSynapse,
    bridges: list[Bridge],
    config_path: Path,
    passwords: dict[str, str],
    state_path: Path,
) -> dict[str, Any]:
    print(f"starting Synapse on port {synapse.port} …", flush=True)
    await asyncio.to_thread(synapse.start)
    admin_password = passwords.setdefault("admin", secrets.token_urlsafe(12))
    admin_id = await asyncio.to_thread(synapse.register_user, "admin", admin_password, admin=True)
    admin_token = await asyncio.to_thread(synapse.login, "admin", admin_password)
    config = _with_moderator(config_path, admin_id, admin_token)

    print(f"starting the bridge on port {config.appservice.listen_port} …", flush=True)
    bridge = Bridge(config)
    bridges.append(bridge)
    await bridge.start()
    print("loading the sample college (a OneRoster export) …", flush=True)
    await OneRosterImport(SAMPLE_EXPORT, bridge.roster_service, bridge.roster).run()
    tutor = await bridge.roster.get_user(DEMO_TUTOR)
    assert tutor is not None
    await bridge.roster_service.apply(
        [UserPut(DEMO_TUTOR, tutor.display_name, tutor.avatar_url, availability=DEMO_HOURS)]
    )
    logins = []
    for platform_id in DEMO_LOGINS:
        person = await bridge.roster.get_user(platform_id)
        assert person is not None, platform_id
        user_id = await bridge.accounts.sync_profile(
            platform_id, person.display_name, person.avatar_url
        )
        password = passwords.setdefault(platform_id, secrets.token_urlsafe(9))
        await asyncio.to_thread(synapse.set_password, admin_token, user_id, password)
        logins.append(
            {
                "platform_id": platform_id,
                "name": person.display_name,
                "role": person.memberships[0][1],
                "user_id": user_id,
                "password": password,
                # A fresh inbox session per run: each link opens once.
                "inbox_link": (await bridge.embed_sessions.create(platform_id, None, None))[0],
            }
        )
    state = {
        "homeserver_url": synapse.url,
        "homeserver_port": synapse.port,
        "server_name": SERVER_NAME,
        "bridge_url": config.appservice.public_url,
        "bridge_port": config.appservice.listen_port,
        "lms_api_token": config.lms.api_token,
        "homeserver_admin": {"user_id": admin_id, "password": admin_password},
        "admin_room": config.moderation.admin_room,
        "logins": logins,
        "passwords": passwords,
    }
    write_private(state_path, json.dumps(state, indent=2))
    return state


def _with_moderator(path: Path, admin_id: str, admin_token: str) -> Config:
    """The demo's config with the homeserver's admin as moderator (and as the reader of the
    homeserver's report list), and an admin room with an alias people can find."""
    config = load_config(path)
    write_back(
        path,
        {
            "moderation.homeserver_admin_token": admin_token,
            "moderation.moderators": [admin_id],
            "moderation.admin_room": (
                f"#{config.appservice.account_prefix}moderation:{config.homeserver.server_name}"
            ),
            "moderation.report_poll_seconds": 2,
        },
    )
    return load_config(path)


def _log_to_file(config: Config, path: Path) -> None:
    setup_logging(config.logging)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setLevel(logging.WARNING)  # the console stays readable
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(file_handler)


def _print_welcome(state: dict[str, Any], folder: Path, temporary: bool) -> None:
    width = max(len(login["user_id"]) for login in state["logins"])
    lines = [
        "",
        "lms-matrix-bridge demo is running.",
        "",
        f"  Homeserver   {state['homeserver_url']}   (server name: {state['server_name']})",
        f"  Bridge       {state['bridge_url']}   (/health, /ready)",
        "",
        "  Roster: Riverside College, the sample OneRoster export (examples/oneroster).",
        f"  Try the REST API: GET {state['bridge_url']}/api/v1/users/stu-ava/contacts with",
        "  Authorization: Bearer <lms_api_token from demo.json>",
        "",
        "  Log in from any Matrix client (e.g. Element: set the homeserver to "
        f"{state['homeserver_url']}):",
    ]
    for login in state["logins"]:
        lines.append(
            f"    {login['user_id']:<{width}}  password {login['password']:<14}"
            f"  {login['name']} ({login['role']})"
        )
    admin = state["homeserver_admin"]
    lines += [
        f"    {admin['user_id']:<{width}}  password {admin['password']:<14}  homeserver admin, "
        "moderator",
        "",
        f"  Moderators' room: {state['admin_room']} (the moderator is invited; reports arrive "
        "as cards, !help lists the commands)",
        "",
        "  The inbox the LMS embeds, one link per person (each opens once; the next run of the",
        "  demo prints fresh ones, and POST /api/v1/embed/sessions makes more):",
        *(f"    {login['name']:<14}  {login['inbox_link']}" for login in state["logins"]),
        "",
        f"  Files: {folder}"
        + (
            " (removed on exit; keep them with --data-dir)"
            if temporary
            else " (demo.json has all of this, and the LMS API token, for scripts)"
        ),
        "  Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)
