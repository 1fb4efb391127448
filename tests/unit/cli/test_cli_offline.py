"""CLI behaviour that needs no server: help, argument checks, error lines, login file handling."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aimaas.cli.main import app

runner = CliRunner()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["serve"],
        ["login"],
        ["datasets"],
        ["datasets", "upload"],
        ["datasets", "preview"],
        ["datasets", "download"],
        ["tenants"],
        ["keys", "create"],
        ["jobs"],
        ["jobs", "logs"],
    ],
)
def test_help_works_everywhere(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_an_unreachable_server_is_one_red_line_not_a_traceback() -> None:
    url = closed_port_url()
    result = runner.invoke(app, ["--url", url, "--api-key", "k", "datasets", "list"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: cannot reach the aimaas server at " + url)
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_the_environment_gives_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    url = closed_port_url()
    result = runner.invoke(app, ["whoami"], env={"AIMAAS_URL": url, "AIMAAS_API_KEY": "k"})
    assert result.exit_code == 1
    assert url in result.stderr


def test_login_failure_writes_nothing(_isolated_client_env: Path) -> None:
    result = runner.invoke(app, ["login", "--url", closed_port_url()], input="secret-key\n")
    assert result.exit_code == 1
    assert "secret-key" not in result.output  # the prompt hides the key
    assert not _isolated_client_env.exists()


def test_logout_removes_the_login_file(_isolated_client_env: Path) -> None:
    _isolated_client_env.parent.mkdir(parents=True)
    _isolated_client_env.write_text('{"url": "http://x:1", "api_key": "k"}')
    result = runner.invoke(app, ["logout"])
    assert result.exit_code == 0
    assert not _isolated_client_env.exists()
    again = runner.invoke(app, ["logout"])
    assert again.exit_code == 0
    assert "Not logged in" in again.stderr


def test_a_damaged_login_file_is_reported(_isolated_client_env: Path) -> None:
    _isolated_client_env.parent.mkdir(parents=True)
    _isolated_client_env.write_text("garbage")
    result = runner.invoke(app, ["datasets", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the login file")


def test_delete_asks_first_and_does_nothing_when_refused() -> None:
    result = runner.invoke(app, ["--url", closed_port_url(), "datasets", "delete", "answers"], input="n\n")
    assert result.exit_code == 1
    assert "cannot reach" not in result.output  # refused before any request


def test_upload_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["datasets", "upload", str(tmp_path / "nope.csv"), "--name", "x"])
    assert result.exit_code == 2


def test_keys_create_rejects_a_bad_expiry() -> None:
    result = runner.invoke(app, ["keys", "create", "--expires-at", "next tuesday"])
    assert result.exit_code == 2
    assert "ISO 8601" in result.output


def test_serve_reports_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMAAS_PORT", "not-a-port")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid setting port")
