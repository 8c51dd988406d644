"""The container files in docker/, checked without a Docker engine.

Exercised for real: the image's entrypoint script (run with `sh` against the installed
`lms-bridge`), the Dockerfile's health check command, the Synapse override file (through
Synapse's own config loader), and the PostgreSQL init script (on the local PostgreSQL when
there is one). Checked for consistency only: the compose file and the Dockerfile. Not run: the
image build and `docker compose up`.
"""

from __future__ import annotations

import dataclasses
import http.server
import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import threading
import typing
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bridge.config import AppserviceConfig, Config, env_name, load_config
from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
ENTRYPOINT = DOCKER / "entrypoint.sh"
COMPOSE = DOCKER / "docker-compose.yml"
SYNAPSE_START = DOCKER / "synapse" / "start.sh"
SYNAPSE_OVERRIDES = DOCKER / "synapse" / "bridge.yaml"
POSTGRES_INIT = DOCKER / "postgres" / "init.sql"
ELEMENT_CONFIG = DOCKER / "element" / "config.json"
BIN = Path(sys.executable).parent

# Variables the entrypoint reads itself (not configuration keys).
ENTRYPOINT_VARIABLES = {"LMS_BRIDGE_CONFIG", "LMS_BRIDGE_REGISTRATION"}
DEFAULT_CONFIG = "/data/config.yaml"
DEFAULT_REGISTRATION = "/data/registration.yaml"
DEFAULT_LISTEN_PORT = next(
    f.default for f in dataclasses.fields(AppserviceConfig) if f.name == "listen_port"
)


def config_env_names() -> set[str]:
    """Every LMS_BRIDGE_<SECTION>_<KEY> variable the configuration loader reads."""
    names = set()
    sections = typing.get_type_hints(Config)
    for section in dataclasses.fields(Config):
        if section.metadata.get("internal"):
            continue
        for key in dataclasses.fields(sections[section.name]):
            names.add(env_name(section.name, key.name))
    return names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the entrypoint ---------------------------------------------------------------------------


def entrypoint_env(data: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_BRIDGE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        LMS_BRIDGE_CONFIG=str(data / "config.yaml"),
        LMS_BRIDGE_REGISTRATION=str(data / "registration.yaml"),
        LMS_BRIDGE_HOMESERVER_URL="http://synapse:8008",
        LMS_BRIDGE_HOMESERVER_SERVER_NAME="example.test",
        LMS_BRIDGE_APPSERVICE_PUBLIC_URL="http://bridge:29340",
    )
    env.update(overrides)
    return env


def run_entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def init(env: dict[str, str]) -> None:
    result = run_entrypoint(env, "init")
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_writes_config_and_registration(tmp_path: Path) -> None:
    env = entrypoint_env(tmp_path / "data")
    config_path = Path(env["LMS_BRIDGE_CONFIG"])
    registration_path = Path(env["LMS_BRIDGE_REGISTRATION"])

    init(env)

    config = load_config(config_path, environ=env)
    registration = yaml.safe_load(registration_path.read_text(encoding="utf-8"))
    assert config.homeserver.url == "http://synapse:8008"
    assert registration["id"] == config.appservice.id
    assert registration["url"] == "http://bridge:29340" == config.appservice.public_url
    assert registration["as_token"] == config.appservice.as_token
    assert registration["hs_token"] == config.appservice.hs_token
    assert registration["sender_localpart"] == config.appservice.bot_localpart
    assert "example\\.test" in registration["namespaces"]["users"][0]["regex"]
    for token in (
        config.appservice.as_token,
        config.appservice.hs_token,
        config.lms.api_token,
        config.lms.webhook_secret,
    ):
        assert token
    assert config.appservice.as_token != config.appservice.hs_token

    # The generated tokens live in the file itself, not only in this run's environment.
    saved = load_config(config_path, environ={})
    assert saved.appservice.as_token == config.appservice.as_token
    assert saved.lms.api_token == config.lms.api_token

    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    # World-readable on purpose: the Synapse container reads it as another user.
    assert stat.S_IMODE(registration_path.stat().st_mode) == 0o644

    first_config = config_path.read_text(encoding="utf-8")
    first_registration = registration_path.read_text(encoding="utf-8")
    init(env)
    again = load_config(config_path, environ=env)
    assert again.appservice.as_token == config.appservice.as_token
    assert again.appservice.hs_token == config.appservice.hs_token
    assert again.lms.api_token == config.lms.api_token
    assert again.lms.webhook_secret == config.lms.webhook_secret
    assert config_path.read_text(encoding="utf-8") == first_config
    assert registration_path.read_text(encoding="utf-8") == first_registration
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600


def test_init_follows_the_environment(tmp_path: Path) -> None:
    env = entrypoint_env(tmp_path / "data")
    init(env)
    config_path = Path(env["LMS_BRIDGE_CONFIG"])
    registration_path = Path(env["LMS_BRIDGE_REGISTRATION"])

    # A token given by the environment is used but not written into the file; a changed URL
    # reaches the registration on the next start.
    env["LMS_BRIDGE_APPSERVICE_AS_TOKEN"] = "token-from-the-environment"
    env["LMS_BRIDGE_APPSERVICE_PUBLIC_URL"] = "http://bridge.example.test:29340"
    init(env)
    registration = yaml.safe_load(registration_path.read_text(encoding="utf-8"))
    assert registration["as_token"] == "token-from-the-environment"
    assert registration["url"] == "http://bridge.example.test:29340"
    assert "token-from-the-environment" not in config_path.read_text(encoding="utf-8")


def test_doctor_reports_an_unreachable_homeserver(tmp_path: Path) -> None:
    env = entrypoint_env(
        tmp_path / "data",
        LMS_BRIDGE_HOMESERVER_URL="http://127.0.0.1:9",
        LMS_BRIDGE_APPSERVICE_LISTEN_PORT=str(free_port()),
    )
    result = run_entrypoint(env, "doctor")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "cannot reach" in output
    assert Path(env["LMS_BRIDGE_REGISTRATION"]).is_file()


def test_other_commands_run_as_given(tmp_path: Path) -> None:
    env = entrypoint_env(tmp_path / "data")
    result = run_entrypoint(env, "echo", "hello from the container")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from the container\n"
    assert not Path(env["LMS_BRIDGE_CONFIG"]).exists()


@pytest.mark.parametrize("script", [ENTRYPOINT, SYNAPSE_START], ids=lambda p: p.name)
def test_shell_syntax(script: Path) -> None:
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert script.read_text(encoding="utf-8").startswith("#!/bin/sh\n")


@pytest.mark.parametrize("script", [ENTRYPOINT, SYNAPSE_START], ids=lambda p: p.name)
def test_shellcheck(script: Path) -> None:
    require_service(shutil.which("shellcheck") is not None, "shellcheck is not installed")
    result = subprocess.run(
        ["shellcheck", "--shell=sh", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    pairs = []
    for text in logical:
        keyword, _, rest = text.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def instruction(keyword: str) -> list[str]:
    return [rest for kw, rest in dockerfile_instructions() if kw == keyword]


def test_dockerfile_is_consistent() -> None:
    (final_user,) = instruction("USER")
    assert final_user.split(":")[0] == "10001"
    assert instruction("EXPOSE") == [str(DEFAULT_LISTEN_PORT)]
    envs = " ".join(instruction("ENV"))
    for name in re.findall(r"\b(LMS_BRIDGE_\w+)=", envs):
        assert name in config_env_names(), f"{name} is no configuration key"

    # The entrypoint is copied from the repository and started under the name it was copied to.
    copies = [rest.split() for rest in instruction("COPY") if "docker/entrypoint.sh" in rest]
    assert len(copies) == 1
    installed_as = copies[0][-1]
    (entrypoint,) = instruction("ENTRYPOINT")
    assert json.loads(entrypoint) == [PurePosixPath(installed_as).name]
    assert json.loads(instruction("CMD")[0]) == ["run"]

    # BuildKit uses <Dockerfile>.dockerignore; it must let in what the build copies and needs.
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    for needed in ("pyproject.toml", "bridge/", "docker/entrypoint.sh"):
        assert f"!{needed}" in ignore
    for excluded in (".venv", ".git", "**/*.db"):
        assert excluded in ignore


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_dockerfile_healthcheck_command(health_server: int) -> None:
    (healthcheck,) = instruction("HEALTHCHECK")
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[0] == "python"
    argv = [sys.executable, *command[1:]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_BRIDGE_")}

    up = dict(env, LMS_BRIDGE_APPSERVICE_LISTEN_PORT=str(health_server))
    result = subprocess.run(argv, env=up, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr

    down = dict(env, LMS_BRIDGE_APPSERVICE_LISTEN_PORT=str(free_port()))
    result = subprocess.run(argv, env=down, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0


# --- the compose file -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def interpolate(value: str) -> str:
    """Compose's ${NAME:-default} with nothing set, as in a plain `docker compose up`."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume of a service, short or long syntax."""
    result = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            result.append((volume["source"], volume["target"]))
        else:
            source, target = volume.split(":")[:2]
            result.append((source, target))
    return result


def resolve(service: dict[str, Any], path: str) -> tuple[str, PurePosixPath]:
    """Which mount a path inside the container is on: (volume or host folder, path inside it)."""
    inside = PurePosixPath(path)
    best: tuple[str, PurePosixPath] | None = None
    best_depth = -1
    for source, target in mounts(service):
        target_path = PurePosixPath(target)
        if inside == target_path or target_path in inside.parents:
            depth = len(target_path.parts)
            if depth > best_depth:
                best, best_depth = (source, inside.relative_to(target_path)), depth
    assert best is not None, f"{path} is on no volume of the service"
    return best


def host_file(service: dict[str, Any], path: str) -> Path:
    """The file in docker/ that a bind mount shows at `path` inside the container."""
    source, relative = resolve(service, path)
    assert source.startswith("./"), f"{path} is not bind-mounted from docker/"
    return DOCKER / source / relative


def bridge_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "docker/Dockerfile"
    }


def test_compose_references_are_defined(compose: dict[str, Any]) -> None:
    assert "version" not in compose
    services = compose["services"]
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        depends_on = service.get("depends_on", [])
        for dependency in depends_on:
            assert dependency in services, f"{name} depends on unknown {dependency}"
        waits_for_health = [
            dependency
            for dependency, spec in (depends_on.items() if isinstance(depends_on, dict) else [])
            if spec.get("condition") == "service_healthy"
        ]
        for dependency in waits_for_health:
            # (The bridge's image has a HEALTHCHECK of its own.)
            assert "healthcheck" in services[dependency] or dependency in bridge_services(
                compose
            ), f"{name} waits for {dependency} to be healthy, which has no healthcheck"
        for source, _target in mounts(service):
            if source.startswith(("./", "../")):
                assert (DOCKER / source).exists(), f"{name} mounts missing {source}"
            else:
                assert not source.startswith("/"), f"{name} mounts a host path: {source}"
                assert source in declared_volumes, f"{name} uses undeclared volume {source}"


def test_compose_builds_the_image_from_the_repository(compose: dict[str, Any]) -> None:
    services = bridge_services(compose)
    assert set(services) == {"bridge-init", "bridge"}
    for service in services.values():
        context = (DOCKER / service["build"]["context"]).resolve()
        assert context == ROOT
        assert (context / service["build"]["dockerfile"]).is_file()
    assert services["bridge-init"]["command"] == "init"
    assert services["bridge"]["command"] == "run"
    synapse_deps = compose["services"]["synapse"]["depends_on"]
    assert synapse_deps["bridge-init"]["condition"] == "service_completed_successfully"
    assert synapse_deps["postgres"]["condition"] == "service_healthy"
    assert compose["services"]["bridge"]["depends_on"]["synapse"]["condition"] == (
        "service_healthy"
    )


def test_compose_bridge_environment_is_valid_configuration(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    known = config_env_names() | ENTRYPOINT_VARIABLES
    example = tmp_path / "config.yaml"
    example.write_text(
        subprocess.run(
            [str(BIN / "lms-bridge"), "example-config"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout,
        encoding="utf-8",
    )
    for name, service in bridge_services(compose).items():
        environment = {k: interpolate(str(v)) for k, v in service["environment"].items()}
        for key in environment:
            assert key in known, f"{name}: {key} is no configuration key"
        config = load_config(example, environ=environment)

        # Synapse and the bridge find each other on the compose network.
        homeserver = urlsplit(config.homeserver.url)
        assert homeserver.hostname == "synapse"
        assert homeserver.port == synapse_listener(load_overrides())["port"]
        public = urlsplit(config.appservice.public_url)
        assert public.hostname == "bridge"
        assert public.port == config.appservice.listen_port == DEFAULT_LISTEN_PORT
        assert config.database.url.startswith("postgresql://")
        assert urlsplit(config.database.url).hostname == "postgres"
    published = [str(p).rsplit(":", 1)[-1] for p in compose["services"]["bridge"]["ports"]]
    assert str(DEFAULT_LISTEN_PORT) in published


def test_compose_synapse_loads_the_registration_the_bridge_writes(
    compose: dict[str, Any],
) -> None:
    synapse = compose["services"]["synapse"]
    overrides = load_overrides()
    written = set()
    for service in bridge_services(compose).values():
        path = service["environment"].get("LMS_BRIDGE_REGISTRATION", DEFAULT_REGISTRATION)
        written.add(resolve(service, path))
    assert len(written) == 1
    loaded = [resolve(synapse, path) for path in overrides["app_service_config_files"]]
    assert loaded == list(written)
    (volume, _registration) = loaded[0]
    assert volume in compose["volumes"]
    # Synapse only reads there.
    folder = PurePosixPath(overrides["app_service_config_files"][0]).parent
    assert f"{volume}:{folder}:ro" in synapse["volumes"]


def test_compose_synapse_files_are_mounted(compose: dict[str, Any]) -> None:
    synapse = compose["services"]["synapse"]
    entrypoint = synapse["entrypoint"]
    assert entrypoint[0] == "sh"
    start = host_file(synapse, entrypoint[1])
    assert start == SYNAPSE_START
    # start.sh loads bridge.yaml from its own folder.
    assert '"$(dirname "$0")/bridge.yaml"' in start.read_text(encoding="utf-8")
    overrides = load_overrides()
    assert host_file(synapse, overrides["log_config"]).is_file()
    assert synapse["environment"]["SERVER_NAME"] == "${SERVER_NAME:-localhost}"
    assert "curl" in synapse["healthcheck"]["test"]


def test_compose_credentials_match_the_database_setup(compose: dict[str, Any]) -> None:
    sql = POSTGRES_INIT.read_text(encoding="utf-8")

    def assert_created(user: str, password: str, database: str) -> None:
        assert re.search(rf"CREATE ROLE {user} LOGIN PASSWORD '{password}';", sql)
        assert re.search(rf"CREATE DATABASE {database}\s+OWNER {user}\b", sql)

    for service in bridge_services(compose).values():
        url = urlsplit(service["environment"]["LMS_BRIDGE_DATABASE_URL"])
        assert_created(url.username or "", url.password or "", url.path.lstrip("/"))
    args = load_overrides()["database"]["args"]
    assert args["host"] == "postgres"
    assert_created(args["user"], args["password"], args["database"])
    synapse_db = re.search(r"CREATE DATABASE synapse\b[^;]*;", sql)
    assert synapse_db is not None
    for clause in ("ENCODING 'UTF8'", "LC_COLLATE = 'C'", "LC_CTYPE = 'C'", "TEMPLATE template0"):
        assert clause in synapse_db.group(0)


def test_compose_element_points_at_synapse(compose: dict[str, Any]) -> None:
    element = compose["services"]["element"]
    assert host_file(element, "/app/config.json") == ELEMENT_CONFIG
    homeserver = json.loads(ELEMENT_CONFIG.read_text(encoding="utf-8"))["default_server_config"][
        "m.homeserver"
    ]
    base = urlsplit(homeserver["base_url"])
    published = {
        str(p).split(":")[-2]: str(p).split(":")[-1]
        for p in compose["services"]["synapse"]["ports"]
    }
    assert published.get(str(base.port)) == str(synapse_listener(load_overrides())["port"])
    assert homeserver["server_name"] == "localhost"


# --- Synapse with the override file -----------------------------------------------------------


def load_overrides() -> dict[str, Any]:
    return yaml.safe_load(SYNAPSE_OVERRIDES.read_text(encoding="utf-8"))


def synapse_listener(overrides: dict[str, Any]) -> dict[str, Any]:
    (listener,) = overrides["listeners"]
    return listener


@pytest.fixture
def needs_synapse() -> None:
    require_service(importlib.util.find_spec("synapse") is not None, "Synapse is not installed")


# Stand-ins for what start.sh calls in the Synapse image: `id` claims root until `gosu` has
# "switched" user, and `python` generates the config for real (with the interpreter running the
# tests) but only records how Synapse would be started.
FAKE_TOOLS = {
    "id": """#!/bin/sh
if [ -n "${AS_SYNAPSE:-}" ]; then echo 991; else echo 0; fi
""",
    "chown": """#!/bin/sh
echo "chown $*" >>"$CALLS"
""",
    "gosu": """#!/bin/sh
echo "gosu $1" >>"$CALLS"
shift
export AS_SYNAPSE=1
exec "$@"
""",
    "python": """#!/bin/sh
case " $* " in
*" --generate-config "*)
    echo "generate" >>"$CALLS"
    exec "$REAL_PYTHON" "$@"
    ;;
esac
echo "run" >>"$CALLS"
printf '%s\\n' "$@" >"$RUN_ARGS"
""",
}


@dataclasses.dataclass
class SynapseStart:
    data: Path
    calls: Path
    run_args: Path
    env: dict[str, str]

    def start(self) -> list[str]:
        """Run start.sh; what it called, in order."""
        self.calls.write_text("", encoding="utf-8")
        result = subprocess.run(
            ["sh", str(SYNAPSE_START)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return self.calls.read_text(encoding="utf-8").splitlines()

    def synapse_argv(self) -> list[str]:
        return self.run_args.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def synapse_start(tmp_path: Path) -> SynapseStart:
    tools = tmp_path / "fake-bin"
    tools.mkdir()
    for name, text in FAKE_TOOLS.items():
        (tools / name).write_text(text, encoding="utf-8")
        (tools / name).chmod(0o755)
    data = tmp_path / "synapse-data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    start = SynapseStart(data, tmp_path / "calls", tmp_path / "run-args", env)
    env.update(
        PATH=f"{tools}{os.pathsep}{env.get('PATH', '')}",
        SERVER_NAME="localhost",
        SYNAPSE_DATA_DIR=str(data),
        CALLS=str(start.calls),
        RUN_ARGS=str(start.run_args),
        REAL_PYTHON=sys.executable,
    )
    return start


@pytest.mark.usefixtures("needs_synapse")
def test_synapse_start_script(synapse_start: SynapseStart) -> None:
    data = synapse_start.data
    assert synapse_start.start() == [
        "chown 991:991 " + str(data),
        "gosu 991:991",
        "generate",
        "run",
    ]
    assert (data / "homeserver.yaml").is_file()
    assert (data / "localhost.signing.key").is_file()
    generated = yaml.safe_load((data / "homeserver.yaml").read_text(encoding="utf-8"))
    assert generated["server_name"] == "localhost"
    assert generated["media_store_path"] == str(data / "media_store")
    assert synapse_start.synapse_argv() == [
        "-m",
        "synapse.app.homeserver",
        "-c",
        str(data / "homeserver.yaml"),
        "-c",
        str(SYNAPSE_OVERRIDES),
        "--keys-directory",
        str(data),
    ]

    # Later starts keep the generated file.
    before = (data / "homeserver.yaml").read_text(encoding="utf-8")
    assert synapse_start.start() == ["chown 991:991 " + str(data), "gosu 991:991", "run"]
    assert (data / "homeserver.yaml").read_text(encoding="utf-8") == before


# Loads the configuration the way `python -m synapse.app.homeserver` does before it starts
# (generate missing files, parse every section, validate), then the appservice registrations
# and the logging configuration, which Synapse only opens later during start-up.
SYNAPSE_CHECK = """
import json, logging.config, sys
import yaml
from synapse.config.appservice import load_appservices
from synapse.config.homeserver import HomeServerConfig

config = HomeServerConfig.load_or_generate_config("config check", sys.argv[1:])
services = load_appservices(config.server.server_name, config.appservice.app_service_config_files)
with open(config.logging.log_config) as f:
    logging.config.dictConfig(yaml.safe_load(f))
listener = config.server.listeners[0]
print(json.dumps({
    "server_name": config.server.server_name,
    "database": config.database.databases[0].config,
    "listener": {
        "port": listener.port,
        "bind_addresses": listener.bind_addresses,
        "type": listener.type,
        "x_forwarded": listener.http_options.x_forwarded,
        "resources": sorted(n for r in listener.http_options.resources for n in r.names),
    },
    "enable_registration": config.registration.enable_registration,
    "appservices": [
        {
            "id": s.id,
            "url": s.url,
            "token": s.token,
            "hs_token": s.hs_token,
            "sender": s.sender.to_string(),
        }
        for s in services
    ],
}))
"""


@pytest.mark.usefixtures("needs_synapse")
def test_synapse_accepts_the_override_file(tmp_path: Path, synapse_start: SynapseStart) -> None:
    # The registration, as bridge-init writes it for the default server name.
    env = entrypoint_env(tmp_path / "bridge", LMS_BRIDGE_HOMESERVER_SERVER_NAME="localhost")
    init(env)
    registration = Path(env["LMS_BRIDGE_REGISTRATION"])
    bridge = load_config(env["LMS_BRIDGE_CONFIG"], environ=env)

    # Synapse's command line as start.sh builds it, after generating homeserver.yaml.
    synapse_start.start()
    argv = synapse_start.synapse_argv()
    assert argv[:2] == ["-m", "synapse.app.homeserver"]

    # bridge.yaml with the container's paths and hosts swapped for local ones, nothing else.
    original = load_overrides()
    overrides = json.loads(json.dumps(original))
    port = free_port()
    overrides["listeners"][0]["port"] = port
    overrides["database"]["args"].update(host="127.0.0.1", user="postgres", database="test")
    overrides["log_config"] = str(DOCKER / "synapse" / PurePosixPath(original["log_config"]).name)
    overrides["app_service_config_files"] = [str(registration)]
    override_file = tmp_path / "bridge.yaml"
    override_file.write_text(yaml.safe_dump(overrides), encoding="utf-8")
    args = [str(override_file) if arg == str(SYNAPSE_OVERRIDES) else arg for arg in argv[2:]]
    assert str(override_file) in args

    result = subprocess.run(
        [sys.executable, "-c", SYNAPSE_CHECK, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])

    assert loaded["server_name"] == "localhost"
    # The later file replaced these sections of the generated one as a whole.
    assert loaded["database"]["name"] == "psycopg2"
    assert loaded["database"]["args"] == overrides["database"]["args"]
    assert loaded["listener"] == {
        "port": port,
        "bind_addresses": ["0.0.0.0"],
        "type": "http",
        "x_forwarded": True,
        "resources": ["client", "federation"],
    }
    assert loaded["enable_registration"] is False
    assert loaded["appservices"] == [
        {
            "id": bridge.appservice.id,
            "url": bridge.appservice.public_url,
            "token": bridge.appservice.as_token,
            "hs_token": bridge.appservice.hs_token,
            "sender": bridge.bot_user_id,
        }
    ]


# --- PostgreSQL init script -------------------------------------------------------------------


def _psql(*args: str, database: str = "postgres") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-h", "127.0.0.1", "-U", "postgres", "-d", database, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )


def _postgres_available() -> bool:
    if shutil.which("psql") is None:
        return False
    try:
        return _psql("-Atc", "SELECT 1").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_postgres_init_script_creates_working_databases(tmp_path: Path) -> None:
    require_service(_postgres_available(), "no PostgreSQL at 127.0.0.1 (or no psql client)")
    # The script's roles and databases under throwaway names, dropped afterwards.
    suffix = f"_ops_{secrets.token_hex(4)}"
    synapse, bridge = f"synapse{suffix}", f"bridge{suffix}"
    sql = POSTGRES_INIT.read_text(encoding="utf-8")
    sql = re.sub(r"\bsynapse\b", synapse, sql)
    sql = re.sub(r"\bbridge\b", bridge, sql)
    script = tmp_path / "init.sql"
    script.write_text(sql, encoding="utf-8")
    try:
        # As the postgres image runs it: one psql call that stops at the first error.
        created = _psql("-v", "ON_ERROR_STOP=1", "-f", str(script))
        assert created.returncode == 0, created.stderr

        rows = _psql(
            "-AtF,",
            "-c",
            "SELECT datname, pg_encoding_to_char(encoding), datcollate, datctype, "
            "pg_get_userbyid(datdba) FROM pg_database "
            f"WHERE datname IN ('{synapse}', '{bridge}') ORDER BY datname",
        )
        assert rows.returncode == 0, rows.stderr
        found = {line.split(",")[0]: line.split(",")[1:] for line in rows.stdout.split()}
        assert found[synapse] == ["UTF8", "C", "C", synapse]
        assert found[bridge][-1] == bridge

        # The bridge's role can create its schema in the database it owns.
        env = entrypoint_env(
            tmp_path / "data",
            LMS_BRIDGE_DATABASE_URL=f"postgresql://{bridge}:{bridge}@127.0.0.1:5432/{bridge}",
        )
        migrated = run_entrypoint(env, "migrate")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert "database schema at" in migrated.stdout
        tables = _psql(
            "-Atc", "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'", database=bridge
        )
        assert tables.returncode == 0, tables.stderr
        assert set(tables.stdout.split()) == {bridge}
    finally:
        for database in (synapse, bridge):
            _psql("-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in (synapse, bridge):
            _psql("-c", f'DROP ROLE IF EXISTS "{role}"')
