"""The `aimaas` command against a real server: in-process with CliRunner, and the installed script."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

import httpx
import pytest
from typer.testing import CliRunner, Result

from aimaas.cli.main import app
from tests.conftest import LiveServer, free_port

CSV = b"age,hours,passed\n17,3.5,yes\n18,1.0,no\n16,,yes\n17,4.0,yes\n19,0.5,no\n18,2.5,yes\n"
AIMAAS_SCRIPT = Path(sys.executable).parent / "aimaas"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "cfg" / "aimaas" / "config.json"


class Invoke(Protocol):
    def __call__(
        self, *args: str, key: str | None = None, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result: ...


@pytest.fixture
def cli(live_server: LiveServer, config_file: Path) -> Invoke:
    """Run `aimaas ARGS` in-process as the admin of the live server (env, as a user would set it)."""
    runner = CliRunner()

    def invoke(
        *args: str, key: str | None = None, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        base = {
            "AIMAAS_URL": live_server.url,
            "AIMAAS_API_KEY": key or live_server.admin_key,
            "AIMAAS_CONFIG": str(config_file),
            "COLUMNS": "200",
        }
        return runner.invoke(app, list(args), input=input, env=base | (env or {}))

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def test_dataset_lifecycle(cli: Invoke, tmp_path: Path, unique_name: str) -> None:
    source = tmp_path / "marks.csv"
    source.write_bytes(CSV)

    uploaded = ok(cli("datasets", "upload", str(source), "--name", unique_name))
    assert f"{unique_name} version 1" in uploaded.stdout and "6 rows" in uploaded.stdout
    again = ok(cli("datasets", "upload", str(source), "--name", unique_name, "--format", "csv", "--json"))
    assert json.loads(again.stdout)["created"] is False

    listed = json.loads(ok(cli("datasets", "list", "--json")).stdout)
    assert unique_name in {d["name"] for d in listed}
    assert unique_name in ok(cli("datasets", "list")).stdout

    shown = ok(cli("datasets", "show", unique_name)).stdout
    assert "Versions" in shown and "hours" in shown and "passed" in shown
    assert json.loads(ok(cli("datasets", "show", unique_name, "--json")).stdout)["latest_version"] == 1

    preview = ok(cli("datasets", "preview", unique_name, "--offset", "1", "--limit", "2")).stdout
    assert "rows 2–3 of 6" in preview and "18" in preview
    page = json.loads(ok(cli("datasets", "preview", unique_name, "--version", "1", "--json")).stdout)
    assert page["total_rows"] == 6 and len(page["rows"]) == 6

    stats = ok(cli("datasets", "stats", unique_name)).stdout
    assert "hours" in stats and "2.3" in stats
    assert json.loads(ok(cli("datasets", "stats", unique_name, "--json")).stdout)["num_rows"] == 6

    split = json.loads(
        ok(
            cli(
                "datasets",
                "split",
                unique_name,
                "--train",
                "0.5",
                "--validation",
                "0.25",
                "--test",
                "0.25",
                "--seed",
                "4",
                "--json",
            )
        ).stdout
    )
    assert sum(split["counts"].values()) == 6
    assert split["id"] in ok(cli("datasets", "splits", unique_name)).stdout
    assert "train" in ok(cli("datasets", "split", unique_name, "--seed", "4")).stdout

    target = tmp_path / "out" / "copy.csv"
    downloaded = ok(cli("datasets", "download", unique_name, "-o", str(target)))
    assert str(target) in downloaded.stdout and target.read_bytes() == CSV

    refused = cli("datasets", "delete", unique_name, input="n\n")
    assert refused.exit_code == 1
    ok(cli("datasets", "show", unique_name))
    ok(cli("datasets", "delete", unique_name, "--yes"))
    gone = cli("datasets", "show", unique_name)
    assert gone.exit_code == 1
    assert gone.stderr.startswith("error: ") and unique_name in gone.stderr
    assert "Traceback" not in gone.output


def test_typed_errors_are_one_line(cli: Invoke, tmp_path: Path, unique_name: str) -> None:
    bad_key = cli("datasets", "list", key="not-a-key")
    assert bad_key.exit_code == 1
    assert bad_key.stderr.startswith("error: ") and "hint: " in bad_key.stderr and "aimaas login" in bad_key.stderr

    ragged = tmp_path / "bad.csv"
    ragged.write_bytes(b"a,b\n1,2\n3,4,5\n")
    malformed = cli("datasets", "upload", str(ragged), "--name", unique_name)
    assert malformed.exit_code == 1
    first_line = malformed.stderr.strip().splitlines()[0]
    assert first_line.startswith("error: ") and "line 3" in first_line.lower() and "file" in first_line


def test_tenants_and_keys(cli: Invoke, live_server: LiveServer, unique_name: str) -> None:
    tenant_name = unique_name.lower()
    tenant = json.loads(ok(cli("tenants", "create", tenant_name, "--json")).stdout)
    assert tenant_name in ok(cli("tenants", "list")).stdout

    created = ok(
        cli(
            "keys",
            "create",
            "--name",
            "ci",
            "--scope",
            "read",
            "--scope",
            "write",
            "--expires-at",
            "2999-01-01T00:00:00",
            "--tenant-id",
            tenant["id"],
        )
    )
    secret = created.stdout.strip()
    assert secret and "\n" not in secret
    assert "will not be shown again" in created.stderr

    me = json.loads(ok(cli("whoami", "--json", key=secret)).stdout)
    assert me["tenant"]["id"] == tenant["id"] and sorted(me["key"]["scopes"]) == ["read", "write"]
    keys = json.loads(ok(cli("keys", "list", "--tenant-id", tenant["id"], "--json")).stdout)
    assert secret not in json.dumps(keys)
    [key] = [k for k in keys if k["name"] == "ci"]

    assert "Revoked" in ok(cli("keys", "revoke", key["id"], "--tenant-id", tenant["id"])).stdout
    assert cli("whoami", key=secret).exit_code == 1


def test_login_writes_a_private_file_that_later_commands_use(
    live_server: LiveServer, config_file: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"AIMAAS_CONFIG": str(config_file), "AIMAAS_URL": None, "AIMAAS_API_KEY": None, "COLUMNS": "200"}

    failed = runner.invoke(app, ["login", "--url", live_server.url, "--api-key", "wrong"], env=env)
    assert failed.exit_code == 1 and not config_file.exists()

    logged = runner.invoke(app, ["login", "--url", live_server.url], input=f"{live_server.admin_key}\n", env=env)
    assert logged.exit_code == 0, logged.output
    assert live_server.admin_key not in logged.stdout  # typed at a hidden prompt, never echoed
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_file.parent.stat().st_mode) == 0o700
    assert json.loads(config_file.read_text()) == {"url": live_server.url, "api_key": live_server.admin_key}

    me = runner.invoke(app, ["whoami"], env=env)
    assert me.exit_code == 0 and "tenant: default" in me.stdout and live_server.url in me.stdout

    assert runner.invoke(app, ["logout"], env=env).exit_code == 0
    assert not config_file.exists()
    after = runner.invoke(app, ["--url", live_server.url, "whoami"], env=env)
    assert after.exit_code == 1 and "error: " in after.stderr


def test_installed_script(live_server: LiveServer, tmp_path: Path, unique_name: str) -> None:
    """The real `aimaas` console script, in a subprocess, as a user runs it."""
    source = tmp_path / "marks.csv"
    source.write_bytes(CSV)
    env = live_server.env | {
        "AIMAAS_URL": live_server.url,
        "AIMAAS_API_KEY": live_server.admin_key,
        "AIMAAS_CONFIG": str(tmp_path / "config.json"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(AIMAAS_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)

    uploaded = run("datasets", "upload", str(source), "--name", unique_name, "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    assert json.loads(uploaded.stdout)["num_rows"] == 6
    target = tmp_path / "copy.csv"
    assert run("datasets", "download", unique_name, "-o", str(target)).returncode == 0
    assert target.read_bytes() == CSV

    missing = run("datasets", "show", f"{unique_name}-missing")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr
    assert missing.stdout == ""

    assert run("datasets", "delete", unique_name, "--yes").returncode == 0


def test_serve_uses_the_command_line_options(tmp_path: Path) -> None:
    """`aimaas serve --host --port --home` starts a server there (a second, short-lived one)."""
    port, home = free_port(), tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMAAS_")} | {"AIMAAS_LOG_LEVEL": "warning"}
    log = (tmp_path / "serve.log").open("wb")
    args = [str(AIMAAS_SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port), "--home", str(home)]
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail(f"server did not start:\n{(tmp_path / 'serve.log').read_text(errors='replace')}")
        assert (home / "admin.key").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
