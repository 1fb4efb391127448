"""Shared fixtures: a real `aimaas serve` process on 127.0.0.1 with a temporary AIMAAS_HOME."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A running server: its base ``url``, the first ``admin_key``, its ``home`` and the ``env`` it ran with."""

    url: str
    admin_key: str
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key or self.admin_key}"}, timeout=60)


def start_server(
    home: Path,
    *,
    extra_env: dict[str, str] | None = None,
    demo: bool = False,
    timeout: float = 60,
    admin_key: str | None = None,
) -> LiveServer:
    """Start `python -m aimaas serve` and wait until /healthz answers and admin.key exists.

    Pass ``admin_key`` when the database was bootstrapped by another server (no key file is written then).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMAAS_")}
    env.update(
        {"AIMAAS_HOME": str(home), "AIMAAS_PORT": str(port), "AIMAAS_HOST": "127.0.0.1", "AIMAAS_LOG_LEVEL": "warning"}
    )
    env.update(extra_env or {})
    home.mkdir(parents=True, exist_ok=True)
    log_path = home.parent / f"{home.name}-server.log"
    args = [sys.executable, "-m", "aimaas", "serve"] + (["--demo"] if demo else [])
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    key_file = Path(env["AIMAAS_HOME"]) / "admin.key"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 and (admin_key or key_file.exists()):
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError(f"server did not start in {timeout}s:\n{log_path.read_text(errors='replace')}")
    return LiveServer(
        url=url,
        admin_key=admin_key or key_file.read_text().strip(),
        home=Path(env["AIMAAS_HOME"]),
        env=env,
        process=proc,
        log_path=log_path,
    )


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("server") / "home")
    yield server
    stop_server(server)


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A dataset name unique to this test (the session server is shared)."""
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:60].strip("-")
    return f"{base}-{os.urandom(3).hex()}"


from tests.postgres_fixtures import _postgres_server, postgres_url  # noqa: E402,F401 - shared fixtures
