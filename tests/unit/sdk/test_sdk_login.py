"""Where clients find URL and key: arguments, then AIMAAS_URL/AIMAAS_API_KEY, then the login file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from aimaas import errors
from aimaas.sdk import DEFAULT_URL, Client, LoginConfig, load_login_config, save_login_config
from aimaas.sdk._login import resolve_connection


def test_defaults_to_a_local_server_without_key() -> None:
    assert resolve_connection(None, None) == (DEFAULT_URL, None)


def test_save_writes_0600_file_in_a_0700_folder(_isolated_client_env: Path) -> None:
    path = save_login_config(_isolated_client_env, LoginConfig(url="http://h:1/", api_key="sk-1"))
    assert path == _isolated_client_env
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_login_config(path) == LoginConfig(url="http://h:1", api_key="sk-1")
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary left behind


def test_login_file_is_used_when_nothing_else_is_given(_isolated_client_env: Path) -> None:
    save_login_config(_isolated_client_env, LoginConfig(url="http://saved:1", api_key="sk-saved"))
    assert resolve_connection(None, None) == ("http://saved:1", "sk-saved")
    with Client() as client:
        assert client.url == "http://saved:1"
        assert client._http.headers["authorization"] == "Bearer sk-saved"


def test_environment_wins_over_the_login_file(_isolated_client_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_login_config(_isolated_client_env, LoginConfig(url="http://saved:1", api_key="sk-saved"))
    monkeypatch.setenv("AIMAAS_URL", "http://env:2")
    monkeypatch.setenv("AIMAAS_API_KEY", "sk-env")
    assert resolve_connection(None, None) == ("http://env:2", "sk-env")
    assert resolve_connection("http://arg:3", "sk-arg") == ("http://arg:3", "sk-arg")


def test_the_saved_key_is_never_sent_to_another_server(_isolated_client_env: Path) -> None:
    save_login_config(_isolated_client_env, LoginConfig(url="http://saved:1", api_key="sk-saved"))
    assert resolve_connection("http://elsewhere:9", None) == ("http://elsewhere:9", None)
    assert resolve_connection("saved:1/", None) == ("http://saved:1", "sk-saved")


def test_a_damaged_login_file_says_what_to_do(_isolated_client_env: Path) -> None:
    _isolated_client_env.parent.mkdir(parents=True)
    _isolated_client_env.write_text("{not json")
    with pytest.raises(errors.InvalidInput, match="aimaas login") as caught:
        resolve_connection(None, None)
    assert caught.value.param == "config"
    # ... but it is not even read when the arguments say everything.
    assert resolve_connection("http://a:1", "k") == ("http://a:1", "k")
