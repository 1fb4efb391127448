"""Server start/stop behaviour: newer schema refused, aborted uploads leave nothing, SIGTERM exits cleanly."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import LiveServer, start_server, stop_server


def test_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stop_server(start_server(home))
    with sqlite3.connect(home / "aimaas.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    proc = subprocess.run([sys.executable, "-m", "aimaas", "serve", "--home", str(home), "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "9999_from_the_future" in proc.stderr and "newer" in proc.stderr
    assert "Traceback" not in proc.stderr
    with sqlite3.connect(home / "aimaas.db") as db:  # never downgraded
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "9999_from_the_future"


def test_client_that_disconnects_mid_upload_leaves_nothing(live_server: LiveServer) -> None:
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (f"POST /api/v1/datasets/aborted/versions?filename=a.csv HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {live_server.admin_key}\r\nContent-Type: application/octet-stream\r\n"
                "Content-Length: 10000000\r\n\r\n")
        sock.sendall(head.encode() + b"a,b\n" + b"1,2\n" * 100_000)
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    staging = live_server.home / "staging"
    while time.monotonic() < deadline and staging.exists() and any(staging.iterdir()):
        time.sleep(0.1)
    assert not staging.exists() or not any(staging.iterdir())
    with live_server.client() as c:
        assert c.get("/api/v1/datasets/aborted").status_code == 404


def test_sigterm_exits_zero(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    server.process.terminate()
    assert server.process.wait(timeout=30) == 0
