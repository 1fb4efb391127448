"""`aimaas serve --demo` registers the demo datasets once, and a restart keeps them (one version each)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import start_server, stop_server


def test_demo_datasets_and_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home, demo=True)
    try:
        first_key = server.admin_key
        with server.client() as c:
            names = [d["name"] for d in c.get("/api/v1/datasets").json()["items"]]
            assert sorted(names) == sorted(["iris", "wine", "breast-cancer", "diabetes", "digits", "short-answers"])
            digits = c.get("/api/v1/datasets/digits/versions/latest").json()
            assert digits["format"] == "image_zip" and digits["num_rows"] == 1797
            labels = next(col for col in c.get("/api/v1/datasets/digits/versions/1/stats").json()["columns"]
                          if col["name"] == "label")
            assert len(labels["label_counts"]) == 10 and sum(labels["label_counts"].values()) == 1797
            iris = c.get("/api/v1/datasets/iris/versions/latest").json()
            assert iris["num_rows"] == 150 and iris["target_suggestion"] == "target"
            assert "first start" in server.log().lower()
    finally:
        stop_server(server)
    again = start_server(home, demo=True)
    try:
        assert again.admin_key == first_key  # the key file is not rewritten
        assert "shown once" not in again.log()
        with again.client() as c:
            assert all(d["latest_version"] == 1 for d in c.get("/api/v1/datasets").json()["items"])
    finally:
        stop_server(again)
