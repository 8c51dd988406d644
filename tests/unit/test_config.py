"""Configuration: the example file, validation errors naming key and file, env overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import (
    ConfigError,
    driver_database_url,
    env_name,
    load_config,
    missing_secrets,
    redact_database_url,
    render_example,
    write_back,
)

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """\
homeserver:
  url: http://127.0.0.1:8008
  server_name: example.org
appservice:
  public_url: http://127.0.0.1:29340
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_committed_example_is_generated_from_the_code() -> None:
    assert (ROOT / "config.example.yaml").read_text() == render_example(), (
        "config.example.yaml is stale: run `lms-bridge example-config > config.example.yaml`"
    )


def test_example_loads_with_defaults() -> None:
    config = load_config(ROOT / "config.example.yaml", environ={})
    assert config.appservice.listen_port == 29340
    assert config.appservice.account_prefix == "_lms_"
    assert config.lms.webhook_url is None
    assert missing_secrets(config) == [
        "appservice.as_token",
        "appservice.hs_token",
        "lms.api_token",
    ]


def test_minimal_config_fills_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, MINIMAL), environ={})
    assert config.bot_user_id == "@lmsbot:example.org"
    assert config.logging.level == "INFO"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL + "  listen_prot: 1\n", "appservice.listen_prot: unknown key"),
        (MINIMAL + "extra:\n  a: 1\n", "extra: unknown key"),
        (MINIMAL.replace("  server_name: example.org\n", ""), "homeserver.server_name: missing"),
        (MINIMAL + "  listen_port: abc\n", "appservice.listen_port: expected a whole number"),
        (MINIMAL + "  listen_port: 70000\n", "appservice.listen_port: expected a port"),
        (MINIMAL.replace("http://127.0.0.1:8008", "ftp://x"), "homeserver.url: expected an http"),
        (MINIMAL + "logging:\n  level: LOUD\n", "logging.level: expected one of"),
        (MINIMAL + "  bot_localpart: Bot\n", "appservice.bot_localpart: a Matrix localpart"),
        (MINIMAL + "  bot_localpart: _lms_bot\n", "could collide with a bridged account"),
        (MINIMAL + "database:\n  url: mysql://x\n", "database.url: unsupported database"),
        (MINIMAL + "lms: [1, 2]\n", "lms: expected a mapping"),
        ("homeserver: {url: [1]}\n", "homeserver.url: expected text"),
        ("- a\n", "expected a mapping of sections"),
        ("homeserver: {url: 'x'\n", "not valid YAML (line"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, environ={})
    assert str(path) in str(excinfo.value)
    assert message in str(excinfo.value)


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(tmp_path / "missing.yaml")


def test_environment_overrides_any_key(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL)
    environ = {
        env_name("appservice", "as_token"): "from-env",
        env_name("appservice", "listen_port"): "31000",
        env_name("homeserver", "url"): "https://matrix.example.org",
        env_name("lms", "webhook_url"): "http://lms.example.org/hook",
    }
    assert env_name("appservice", "as_token") == "LMS_BRIDGE_APPSERVICE_AS_TOKEN"
    config = load_config(path, environ=environ)
    assert config.appservice.as_token == "from-env"
    assert config.appservice.listen_port == 31000
    assert config.homeserver.url == "https://matrix.example.org"
    assert config.lms.webhook_url == "http://lms.example.org/hook"


def test_environment_fills_an_empty_section(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "lms:\n")
    config = load_config(path, environ={"LMS_BRIDGE_LMS_API_TOKEN": "secret"})
    assert config.lms.api_token == "secret"


def test_bad_environment_value_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"appservice\.listen_port: expected a whole number"):
        load_config(path, environ={"LMS_BRIDGE_APPSERVICE_LISTEN_PORT": "many"})


def test_sqlite_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, MINIMAL + "database:\n  url: sqlite:///x.db\n"), {})
    assert config.database_url() == f"sqlite+pysqlite:///{tmp_path / 'x.db'}"
    assert driver_database_url("sqlite:////abs/x.db", tmp_path) == "sqlite+pysqlite:////abs/x.db"
    assert (
        driver_database_url("postgresql://u:p@h:5432/d", None)
        == "postgresql+psycopg://u:p@h:5432/d"
    )


def test_write_back_keeps_comments_and_sets_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, render_example())
    write_back(
        path,
        {"appservice.as_token": "tok'en\"1", "appservice.listen_port": 1234, "newsec.key": "v"},
    )
    text = path.read_text()
    assert "# Token the bridge presents to the homeserver." in text
    config_text = text.replace('newsec:\n  key: "v"\n', "")
    config = load_config(_write(tmp_path, config_text), environ={})
    assert config.appservice.as_token == "tok'en\"1"
    assert config.appservice.listen_port == 1234
    assert "newsec:" in text


def test_database_passwords_are_redacted_for_messages() -> None:
    assert redact_database_url("postgresql://u:p@ss@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert redact_database_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert redact_database_url("sqlite:///x.db") == "sqlite:///x.db"
