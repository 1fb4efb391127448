"""Training end to end over HTTP against a real server and the local executor: train, follow the SSE stream,
register, read the card/report/plots, download the ONNX model and run it, aliases, compare, cancel, and the
bad requests that must answer 4xx before any job starts."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.conftest import LiveServer
from tests.integration.test_api_auth import assert_envelope

TERMINAL = {"succeeded", "failed", "cancelled"}


def _csv(columns: list[str], rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue().encode()


def iris_csv() -> bytes:
    from sklearn.datasets import load_iris

    bunch = load_iris()
    rows = [[*map(float, x), bunch.target_names[t]] for x, t in zip(bunch.data, bunch.target, strict=True)]
    return _csv(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"], rows)


def upload(client: httpx.Client, name: str, data: bytes, filename: str = "data.csv") -> dict:
    resp = client.post(f"/api/v1/datasets/{name}/versions", params={"filename": filename}, content=data)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def follow(client: httpx.Client, job_id: str, timeout: float = 240) -> tuple[list[dict], dict]:
    """Read the job's SSE stream to its end; return the events and the final job."""
    events: list[dict] = []
    with client.stream("GET", f"/api/v1/jobs/{job_id}/stream", timeout=timeout) as resp:
        assert resp.status_code == 200
        kind = None
        for line in resp.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: "):])
                if kind == "end":
                    return events, data
                events.append(data)
    raise AssertionError("the stream ended without an end event")


def wait_state(client: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


@pytest.fixture(scope="module")
def trained(admin: httpx.Client) -> dict:
    """One iris model trained through the API (a short search), shared by the tests that read it."""
    upload(admin, "iris-train", iris_csv())
    resp = admin.post("/api/v1/train", json={"dataset": "iris-train", "target": "species", "max_trials": 3,
                                              "budget_s": 30, "model": "iris-api"})
    assert resp.status_code == 201, resp.text
    job = resp.json()
    assert job["kind"] == "train" and job["state"] in ("queued", "running")
    events, end = follow(admin, job["id"])
    assert end["state"] == "succeeded", (end.get("error"), [e["payload"] for e in events[-5:]])
    return {"job": end, "events": events}


def test_training_reports_progress_and_registers_a_version(admin: httpx.Client, trained: dict) -> None:
    events, job = trained["events"], trained["job"]
    phases = [e["payload"]["fields"].get("phase") for e in events if e["type"] == "log"]
    for phase in ("loading", "searching", "evaluating", "exporting", "registering"):
        assert phase in phases
    progress = [e["payload"]["progress"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress) and progress[-1] >= 90
    metrics = {e["payload"]["name"] for e in events if e["type"] == "metric"}
    assert {"trial_score", "best_score"} <= metrics
    result = job["result"]
    assert result["model"] == "iris-api" and result["version"] >= 1 and result["ref"] == f"iris-api/{result['version']}"
    assert result["metric"] == "f1_macro" and result["score"] > 0.8
    assert result["parity"]["label_agreement"] == 1.0 and result["parity"]["max_abs_diff_proba"] < 1e-4
    version = admin.get(f"/api/v1/models/iris-api/versions/{result['version']}").json()
    assert version["format"] == "onnx" and version["task"] == "classification" and version["status"] == "ready"
    assert version["metrics"]["f1_macro"] == pytest.approx(result["score"])
    assert {"accuracy", "balanced_accuracy", "log_loss"} <= set(version["metrics"])
    lineage = version["lineage"]
    assert lineage["job_id"] == job["id"] and lineage["dataset"] == "iris-train" and lineage["split_id"]
    assert lineage["target"] == "species" and "scikit-learn" in lineage["libraries"]
    assert "outputs" not in lineage
    assert [c["name"] for c in version["signature"]["inputs"]] == ["sepal_length", "sepal_width", "petal_length",
                                                                   "petal_width"]
    assert {"confusion_matrix", "feature_importance"} <= set(version["plots"])


def test_card_report_and_plots(admin: httpx.Client, trained: dict) -> None:
    ref = trained["job"]["result"]
    base = f"/api/v1/models/iris-api/versions/{ref['version']}"
    card = admin.get(f"{base}/card")
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
    assert "iris-api" in card.text and "iris-train" in card.text and "Limitations" in card.text
    report = admin.get(f"{base}/report").json()
    assert len(report["confusion_matrix"]["matrix"]) == 3 and report["tuning"]["trials"]
    png = admin.get(f"{base}/plots/confusion_matrix.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert_envelope(admin.get(f"{base}/plots/nope.png"), 404)


def test_downloaded_onnx_reproduces_the_reported_metric(admin: httpx.Client, trained: dict) -> None:
    import onnxruntime as ort
    from sklearn.datasets import load_iris

    resp = admin.get("/api/v1/models/iris-api/versions/latest/download")
    assert resp.status_code == 200 and "iris-api-v" in resp.headers["content-disposition"]
    session = ort.InferenceSession(resp.content, providers=["CPUExecutionProvider"])
    bunch = load_iris()
    feed = {inp.name: bunch.data[:, i].astype(np.float32).reshape(-1, 1) for i, inp in enumerate(session.get_inputs())}
    labels = session.run(None, feed)[0].ravel()
    accuracy = float(np.mean(np.asarray(labels).astype(str) == bunch.target_names[bunch.target]))
    assert accuracy > 0.9


def test_aliases_and_compare(admin: httpx.Client, trained: dict) -> None:
    first = trained["job"]["result"]["version"]
    resp = admin.post("/api/v1/train", json={"dataset": "iris-train", "target": "species", "model": "iris-api",
                                              "trainer": "random_forest", "params": {"n_estimators": 20}})
    assert resp.status_code == 201, resp.text
    _, job = follow(admin, resp.json()["id"])
    assert job["state"] == "succeeded", job["error"]
    second = job["result"]["version"]
    assert second == first + 1 and job["result"]["trainer"] == "random_forest"
    put = admin.put("/api/v1/models/iris-api/aliases/production", json={"version": first})
    assert put.status_code == 200 and put.json()["aliases"] == {"production": first}
    assert admin.get("/api/v1/models/iris-api/versions/production").json()["version"] == first
    admin.put("/api/v1/models/iris-api/aliases/production", json={"version": second})
    assert admin.get("/api/v1/models/iris-api/versions/production").json()["version"] == second
    cmp = admin.get("/api/v1/compare", params=[("ref", f"iris-api/{first}"), ("ref", "iris-api@production")])
    assert cmp.status_code == 200, cmp.text
    body = cmp.json()
    assert [v["version"] for v in body["versions"]] == [first, second] and body["same_test_split"] is True
    assert len(body["metrics"]["accuracy"]) == 2
    assert_envelope(admin.get("/api/v1/compare", params={"ref": "iris-api/1"}), 422)
    assert admin.delete("/api/v1/models/iris-api/aliases/production").status_code == 204
    assert_envelope(admin.get("/api/v1/models/iris-api/versions/production"), 404)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"target": "colour"}, "target"),
        ({}, "target"),
        ({"target": "species", "task": "regression"}, "target"),
        ({"target": "species", "budget_s": 0}, "budget_s"),
        ({"target": "species", "max_trials": 0}, "max_trials"),
        ({"target": "species", "trainer": "no_such_trainer"}, "trainer"),
        ({"target": "species", "trainer": "random_forest", "params": {"leaves": 3}}, "leaves"),
        ({"target": "species", "params": {"n_estimators": 3}}, "params"),
        ({"target": "species", "metric": "r2"}, "metric"),
        ({"target": "species", "model": "bad name!"}, "model"),
    ],
)
def test_bad_requests_fail_before_any_job(admin: httpx.Client, trained: dict, body: dict, param: str) -> None:
    before = admin.get("/api/v1/jobs", params={"limit": 200}).json()["items"]
    err = assert_envelope(admin.post("/api/v1/train", json={"dataset": "iris-train", **body}), 422)
    assert err["param"] == param or param in err["message"], err
    after = admin.get("/api/v1/jobs", params={"limit": 200}).json()["items"]
    assert len(after) == len(before)


def test_constant_target_and_rare_classes_are_refused(admin: httpx.Client) -> None:
    upload(admin, "constant", _csv(["x", "y"], [[i, "same"] for i in range(30)]))
    err = assert_envelope(admin.post("/api/v1/train", json={"dataset": "constant", "target": "y"}), 422)
    assert err["param"] == "target" and "single class" in err["message"]
    upload(admin, "rare", _csv(["x", "y"], [[i, "a" if i else "b"] for i in range(30)]))
    err = assert_envelope(admin.post("/api/v1/train", json={"dataset": "rare", "target": "y"}), 422)
    assert "'b'" in err["message"] and "only 1 row" in err["message"]
    assert_envelope(admin.post("/api/v1/train", json={"dataset": "missing-dataset", "target": "y"}), 404)


def test_failing_trainer_fails_the_job_and_registers_nothing(admin: httpx.Client, trained: dict) -> None:
    resp = admin.post("/api/v1/train", json={"dataset": "iris-train", "target": "species", "model": "never",
                                              "trainer": "random_forest", "params": {"n_estimators": -5}})
    assert resp.status_code == 201, resp.text
    job = wait_state(admin, resp.json()["id"], timeout=120)
    assert job["state"] == "failed" and "n_estimators" in job["error"]
    assert_envelope(admin.get("/api/v1/models/never"), 404)


def test_dataset_in_use_cannot_be_deleted_and_cancel_stops_training(admin: httpx.Client) -> None:
    upload(admin, "iris-cancel", iris_csv())
    resp = admin.post("/api/v1/train", json={"dataset": "iris-cancel", "target": "species", "budget_s": 120,
                                              "model": "cancelled-model"})
    job_id = resp.json()["id"]
    assert_envelope(admin.delete("/api/v1/datasets/iris-cancel"), 409, "dataset_in_use")
    deadline = time.monotonic() + 60
    while admin.get(f"/api/v1/jobs/{job_id}").json()["state"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    assert admin.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
    job = wait_state(admin, job_id, timeout=30)
    assert job["state"] == "cancelled" and time.monotonic() - started < 15
    assert_envelope(admin.get("/api/v1/models/cancelled-model"), 404)
    assert admin.delete("/api/v1/datasets/iris-cancel").status_code == 204  # the ended job no longer holds it


def test_idempotency_key_returns_the_first_job(admin: httpx.Client, trained: dict) -> None:
    body = {"dataset": "iris-train", "target": "species", "trainer": "logistic_regression", "model": "iris-idem"}
    first = admin.post("/api/v1/train", json=body, headers={"Idempotency-Key": "train-once"})
    again = admin.post("/api/v1/train", json=body, headers={"Idempotency-Key": "train-once"})
    assert first.status_code == 201 and again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert wait_state(admin, first.json()["id"], timeout=120)["state"] == "succeeded"
