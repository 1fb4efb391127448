"""The same server on PostgreSQL: set AIMAAS_DATABASE_URL and nothing else changes."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import start_server, stop_server
from tests.integration.test_api_auth import assert_envelope
from tests.integration.test_api_datasets import CSV, upload


def test_server_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    server = start_server(tmp_path / "home", extra_env={"AIMAAS_DATABASE_URL": postgres_url})
    try:
        assert not (server.home / "aimaas.db").exists()  # nothing went to SQLite
        with server.client() as c:
            assert c.get("/readyz").status_code == 200
            assert upload(c, "marks", CSV, "marks.csv").status_code == 201
            assert upload(c, "marks", CSV, "marks.csv").json()["created"] is False
            assert c.get("/api/v1/datasets/marks/versions/1/preview").json()["total_rows"] == 6
            split = c.post("/api/v1/datasets/marks/splits", json={"train": 0.5, "validation": 0.0, "test": 0.5})
            assert split.status_code == 201 and sum(split.json()["counts"].values()) == 6
            reader = c.post("/api/v1/keys", json={"scopes": ["read"]}).json()
            with server.client(reader["key"]) as r:
                assert_envelope(r.delete("/api/v1/datasets/marks"), 403)
            assert c.delete("/api/v1/datasets/marks").status_code == 204
    finally:
        stop_server(server)
    again = start_server(tmp_path / "home2", extra_env={"AIMAAS_DATABASE_URL": postgres_url},
                         admin_key=server.admin_key)
    try:  # a second server on the same database reuses it: no second bootstrap
        assert "shown once" not in again.log() and not (again.home / "admin.key").exists()
        with again.client() as c:
            assert c.get("/api/v1/whoami").status_code == 200
    finally:
        stop_server(again)
