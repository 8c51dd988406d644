"""The `lms-bridge` commands, run as a person would run them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from bridge.config import render_example, write_back
from bridge.demo.synapse import LocalSynapse, free_port
from bridge.store import migrate
from tests.conftest import SynapseEnv, require_service


def lms_bridge(
    *args: str, timeout: float = 60, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def _copy_config(synapse_env: SynapseEnv, tmp_path: Path, **changes: str | int) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(synapse_env.config_path.read_text())
    write_back(path, {"database.url": "sqlite:///bridge.db", **changes})
    return path


def test_help_lists_every_command() -> None:
    result = lms_bridge("--help")
    assert result.returncode == 0
    for command in ("run", "migrate", "generate-registration", "doctor", "demo", "example-config"):
        assert command in result.stdout


def test_generate_registration_creates_tokens_once(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(render_example())
    first = lms_bridge("generate-registration", "-c", str(config))
    assert first.returncode == 0, first.stderr
    assert "generated appservice.as_token" in first.stdout
    registration = yaml.safe_load((tmp_path / "registration.yaml").read_text())
    saved = yaml.safe_load(config.read_text())
    assert registration["as_token"] == saved["appservice"]["as_token"]
    assert registration["hs_token"] == saved["appservice"]["hs_token"]
    assert "# URL the bridge uses" in config.read_text()  # comments survive
    second = lms_bridge("generate-registration", "-c", str(config), "-o", str(tmp_path / "r2.yaml"))
    assert second.returncode == 0
    assert "generated" not in second.stdout
    assert (
        yaml.safe_load((tmp_path / "r2.yaml").read_text())["as_token"] == registration["as_token"]
    )


def test_a_config_error_names_the_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(render_example().replace("listen_port: 29340", "listen_port: lots"))
    result = lms_bridge("run", "-c", str(config))
    assert result.returncode == 2
    assert f"{config}: appservice.listen_port: expected a whole number, got 'lots'" in result.stderr


def _config_with_unreachable_database(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(render_example())
    write_back(
        config,
        {
            "database.url": f"postgresql://bridge:s3cret-pw@127.0.0.1:{free_port()}/bridge",
            "appservice.as_token": "a",
            "appservice.hs_token": "h",
            "lms.api_token": "l",
            "homeserver.url": "http://127.0.0.1:9",
        },
    )
    return config


def test_doctor_never_prints_the_database_password(tmp_path: Path) -> None:
    result = lms_bridge("doctor", "-c", str(_config_with_unreachable_database(tmp_path)))
    assert result.returncode == 1
    assert "FAIL database: cannot use postgresql://bridge:***@127.0.0.1" in result.stdout
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_migrate_applies_and_refuses_a_newer_schema(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(render_example())
    head = migrate.head_revision()
    assert lms_bridge("migrate", "-c", str(config)).stdout.startswith(f"database schema at {head}")
    import sqlite3

    with sqlite3.connect(tmp_path / "lms-bridge.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    result = lms_bridge("migrate", "-c", str(config))
    assert result.returncode == 1
    assert "migrated by a newer bridge" in result.stderr


@pytest.mark.synapse
def test_doctor_passes_on_good_wiring(synapse_env: SynapseEnv, tmp_path: Path) -> None:
    result = lms_bridge("doctor", "-c", str(_copy_config(synapse_env, tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   homeserver reaches the bridge" in result.stdout


@pytest.mark.synapse
def test_doctor_explains_a_wrong_as_token(synapse_env: SynapseEnv, tmp_path: Path) -> None:
    config = _copy_config(synapse_env, tmp_path, **{"appservice.as_token": "not-registered"})
    result = lms_bridge("doctor", "-c", str(config))
    assert result.returncode == 1
    assert (
        "FAIL as_token accepted: the homeserver does not know this as_token: is the registration "
        "file listed in app_service_config_files, and was Synapse restarted?"
    ) in result.stdout


@pytest.mark.synapse
def test_doctor_explains_an_unreachable_homeserver(synapse_env: SynapseEnv, tmp_path: Path) -> None:
    config = _copy_config(synapse_env, tmp_path, **{"homeserver.url": "http://127.0.0.1:9"})
    result = lms_bridge("doctor", "-c", str(config))
    assert result.returncode == 1
    assert "cannot reach the homeserver at http://127.0.0.1:9" in result.stdout


@pytest.mark.synapse
def test_doctor_explains_a_bridge_the_homeserver_cannot_reach(
    synapse_env: SynapseEnv, tmp_path: Path
) -> None:
    # The bridge listens elsewhere than the registration's url says.
    config = _copy_config(synapse_env, tmp_path, **{"appservice.listen_port": free_port()})
    result = lms_bridge("doctor", "-c", str(config))
    assert result.returncode == 1
    assert "the homeserver could not connect to the bridge at" in result.stdout


@pytest.mark.synapse
def test_run_exits_with_the_sentence_on_bad_wiring(synapse_env: SynapseEnv, tmp_path: Path) -> None:
    config = _copy_config(synapse_env, tmp_path, **{"appservice.as_token": "not-registered"})
    result = lms_bridge("run", "-c", str(config))
    assert result.returncode == 1
    assert "the homeserver does not know this as_token" in result.stderr


def test_run_explains_an_unreachable_database(tmp_path: Path) -> None:
    result = lms_bridge("run", "-c", str(_config_with_unreachable_database(tmp_path)))
    assert result.returncode == 1
    assert "cannot start: cannot use the database postgresql://bridge:***@127.0.0.1" in (
        result.stderr
    )
    assert "is database.url right, and is the database server running?" in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr


@pytest.mark.synapse
def test_run_serves_until_sigterm(synapse_env: SynapseEnv, tmp_path: Path) -> None:
    config = _copy_config(synapse_env, tmp_path)
    port = synapse_env.config.appservice.listen_port
    log = tmp_path / "bridge.log"
    with log.open("w") as sink:  # a file, not a pipe nobody reads while it runs
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "-c", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.2)
            else:
                pytest.fail("the bridge never became ready:\n" + log.read_text()[-3000:])
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    output = log.read_text()
    assert process.returncode == 0, output
    assert "stopping" in output


def test_demo_prints_a_working_login_and_stops_cleanly(tmp_path: Path) -> None:
    from bridge.demo.synapse import synapse_installed

    require_service(synapse_installed(), "matrix-synapse is not installed")
    data = tmp_path / "demo"

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "bridge", "demo", "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_ready(process: subprocess.Popen[str]) -> str:
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                return "".join(lines)
        pytest.fail("demo ended early:\n" + "".join(lines))

    def stop(process: subprocess.Popen[str], sig: int = signal.SIGINT) -> str:
        process.send_signal(sig)
        rest, _ = process.communicate(timeout=60)
        assert process.returncode == 0, rest
        return rest

    process = start()
    try:
        banner = wait_ready(process)
    except BaseException:
        stop(process)
        raise
    state = json.loads((data / "demo.json").read_text())
    synapse_pid = int((data / "synapse" / "synapse.pid").read_text())
    login = state["logins"][0]
    assert login["user_id"] in banner and login["password"] in banner
    assert [(x["platform_id"], x["role"]) for x in state["logins"]] == [
        ("stu-ava", "student"),
        ("tut-kim", "tutor"),
        ("adm-lee", "admin"),
    ]
    # The sample college is loaded: the student's tutor is found through the API.
    request = urllib.request.Request(
        state["bridge_url"] + "/api/v1/users/stu-ava/can-message/tut-kim",
        headers={"Authorization": f"Bearer {state['lms_api_token']}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["reason"] == "Alex Kim teaches your course Algebra 101"
    assert state["homeserver_url"] in banner
    # Each person's inbox link is printed, and opens (once) for that person.
    link = login["inbox_link"]
    assert link in banner and link.startswith(state["bridge_url"] + "/embed/#code=")
    request = urllib.request.Request(
        state["bridge_url"] + "/embed/api/session",
        data=json.dumps({"code": link.split("#code=")[1]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        session = json.loads(response.read())
    assert session["me"]["user_id"] == "stu-ava"
    request = urllib.request.Request(
        state["bridge_url"] + "/embed/api/contacts?q=kim",
        headers={"Authorization": f"Bearer {session['token']}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        (tutor,) = json.loads(response.read())["contacts"]
    assert tutor["availability"]["hours"] == "Usually available Mon–Thu 10:00–16:00, London time"
    # The printed login works from a Matrix client's point of view.
    synapse = LocalSynapse(data / "synapse", port=state["homeserver_port"])
    assert synapse.login(login["user_id"], login["password"])
    with urllib.request.urlopen(state["bridge_url"] + "/ready", timeout=5) as response:
        assert response.status == 200
    assert "stopped." in stop(process)
    assert not Path(f"/proc/{synapse_pid}").exists()  # Synapse stopped too

    # Starting again with the same folder keeps tokens, accounts and passwords.
    again = start()
    try:
        wait_ready(again)
        state2 = json.loads((data / "demo.json").read_text())
        assert state2["lms_api_token"] == state["lms_api_token"]
        assert state2["logins"][0]["inbox_link"] != link  # fresh links each run
        synapse = LocalSynapse(data / "synapse", port=state2["homeserver_port"])
        assert synapse.login(login["user_id"], login["password"])
    finally:
        assert "stopped." in stop(again, signal.SIGTERM)


def test_import_oneroster_command(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(render_example())
    sample = Path(__file__).resolve().parents[2] / "examples" / "oneroster"
    result = lms_bridge("import-oneroster", "-c", str(config), str(sample))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported: 1 institutions, 10 users, 10 members")
    assert "roles not bridged (skipped): 1 parent" in result.stdout
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "orgs.csv").write_text("sourcedId,title\no1,Org\n")
    result = lms_bridge("import-oneroster", "-c", str(config), str(broken))
    assert result.returncode == 1
    assert "import failed:" in result.stderr and "missing required column(s) name" in result.stderr
