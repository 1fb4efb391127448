"""Jobs over HTTP and the SDK against a real server running the local executor (worker processes)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from aimaas.sdk import Client
from tests.conftest import LiveServer, start_server, stop_server
from tests.integration.test_api_auth import assert_envelope

TEST_JOBS = "aimaas.testing.executor_jobs"
JOB_ENV = {
    "AIMAAS_EXECUTOR": "local",
    "AIMAAS_JOB_ENTRYPOINTS": f'["aimaas.training","{TEST_JOBS}"]',
    "AIMAAS_WORKERS": "4",
    "AIMAAS_JOBS_PER_TENANT": "4",
}
TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def jobs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("jobs") / "home", extra_env=JOB_ENV)
    yield server
    stop_server(server)


@pytest.fixture
def admin(jobs_server: LiveServer) -> Iterator[httpx.Client]:
    with jobs_server.client() as client:
        yield client


def create(client: httpx.Client, fn: str, params: dict | None = None, **headers: str) -> httpx.Response:
    body = {"kind": "test", "entrypoint": f"{TEST_JOBS}:{fn}", "params": params or {}}
    return client.post("/api/v1/jobs", json=body, headers=headers)


def wait_for(client: httpx.Client, job_id: str, ok: Callable[[dict], bool], timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if ok(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_job_succeeds_with_events_result_and_stream(jobs_server: LiveServer, admin: httpx.Client) -> None:
    first = create(admin, "succeed", {"x": 1})
    assert first.status_code == 201, first.text
    job = first.json()
    assert job["state"] in ("queued", "running") and job["entrypoint"].endswith(":succeed")
    done = wait_for(admin, job["id"], lambda j: j["state"] in TERMINAL)
    assert done["state"] == "succeeded", done
    assert done["result"] == {"echo": {"x": 1}, "steps": 3} and done["progress"] == 100
    events = admin.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert {e["type"] for e in events} >= {"log", "metric", "progress", "state"}
    assert events[-1]["payload"]["state"] == "succeeded"
    later = admin.get(f"/api/v1/jobs/{job['id']}/events", params={"after_seq": 3, "limit": 2}).json()
    assert [e["seq"] for e in later["items"]] == [4, 5] and later["next_after_seq"] == 5
    listed = admin.get("/api/v1/jobs", params={"state": "succeeded"}).json()["items"]
    assert job["id"] in {j["id"] for j in listed}
    with Client(jobs_server.url, jobs_server.admin_key) as sdk:
        streamed = list(sdk.jobs.stream(job["id"]))
        assert [e.seq for e in streamed] == [e["seq"] for e in events]
        assert [e.seq for e in sdk.jobs.stream(job["id"], after_seq=len(events) - 1)] == [len(events)]
        assert sdk.jobs.get(job["id"]).state == "succeeded"


def test_stream_follows_a_running_job_live(jobs_server: LiveServer, admin: httpx.Client, tmp_path: Path) -> None:
    with Client(jobs_server.url, jobs_server.admin_key) as sdk:
        job = sdk.jobs.create(f"{TEST_JOBS}:sleep_for", params={"seconds": 1.0}, kind="test")
        seen = [(e.type, e.payload.get("state")) for e in sdk.jobs.stream(job.id)]
        assert seen[-1] == ("state", "succeeded") and ("state", "running") in seen
        # Last-Event-ID resumes after the given event
        with httpx.stream(
            "GET",
            f"{jobs_server.url}/api/v1/jobs/{job.id}/stream",
            headers={"Authorization": f"Bearer {jobs_server.admin_key}", "Last-Event-ID": str(len(seen) - 1)},
        ) as resp:
            body = resp.read().decode()
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert f"id: {len(seen)}\n" in body and "id: 1\n" not in body and "event: end" in body


def test_cancel_a_long_job(admin: httpx.Client, tmp_path: Path) -> None:
    marker = tmp_path / "running"
    job = create(admin, "stuck", {"seconds": 60, "marker": str(marker)}).json()
    running = wait_for(admin, job["id"], lambda j: j["state"] == "running" and marker.exists())
    assert running["state"] == "running"
    started = time.monotonic()
    assert admin.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
    done = wait_for(admin, job["id"], lambda j: j["state"] in TERMINAL, timeout=5)
    assert done["state"] == "cancelled" and time.monotonic() - started < 5, done


def test_failing_job_reports_its_message(admin: httpx.Client) -> None:
    job = create(admin, "fail", {"message": "the data is wrong"}).json()
    done = wait_for(admin, job["id"], lambda j: j["state"] in TERMINAL)
    assert done["state"] == "failed" and "the data is wrong" in done["error"], done


def test_idempotency_key_returns_the_same_job(admin: httpx.Client) -> None:
    key = f"retry-{os.urandom(4).hex()}"
    first = create(admin, "sleep_for", {"seconds": 0.1}, **{"Idempotency-Key": key})
    again = create(admin, "sleep_for", {"seconds": 0.1}, **{"Idempotency-Key": key})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_who_may_create_what(jobs_server: LiveServer, admin: httpx.Client) -> None:
    writer = admin.post("/api/v1/keys", json={"name": "writer", "scopes": ["write"]}).json()["key"]
    with jobs_server.client(writer) as c:
        assert_envelope(create(c, "succeed"), 403, "insufficient_scope")
    bad = admin.post("/api/v1/jobs", json={"kind": "x", "entrypoint": "aimaas.apps.server:serve"})
    assert "aimaas.apps.server" in assert_envelope(bad, 422)["message"]
    assert_envelope(admin.post("/api/v1/jobs", json={"kind": "x", "entrypoint": "not an entrypoint"}), 422)
    assert_envelope(admin.get("/api/v1/jobs", params={"state": "sleeping"}), 422)


def test_another_tenant_sees_404(jobs_server: LiveServer, admin: httpx.Client) -> None:
    job = create(admin, "sleep_for", {"seconds": 0.1}).json()
    tid = admin.post("/api/v1/tenants", json={"name": f"jobs-{os.urandom(3).hex()}"}).json()["id"]
    other = admin.post("/api/v1/keys", json={"scopes": ["admin"], "tenant_id": tid}).json()["key"]
    with jobs_server.client(other) as c:
        for resp in (
            c.get(f"/api/v1/jobs/{job['id']}"),
            c.get(f"/api/v1/jobs/{job['id']}/events"),
            c.get(f"/api/v1/jobs/{job['id']}/stream"),
            c.post(f"/api/v1/jobs/{job['id']}/cancel"),
        ):
            assert_envelope(resp, 404)
        assert job["id"] not in {j["id"] for j in c.get("/api/v1/jobs").json()["items"]}


def test_api_stays_responsive_while_a_job_floods_events(jobs_server: LiveServer, admin: httpx.Client) -> None:
    job = create(admin, "chatty", {"n": 3000}).json()
    wait_for(admin, job["id"], lambda j: j["state"] != "queued")
    slowest = 0.0
    for _ in range(10):
        started = time.monotonic()
        assert httpx.get(f"{jobs_server.url}/healthz", timeout=5).status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    assert slowest < 1.0
    done = wait_for(admin, job["id"], lambda j: j["state"] in TERMINAL, timeout=20)
    assert done["state"] == "succeeded", done


def test_a_job_running_when_the_server_dies_is_failed_after_restart(tmp_path: Path) -> None:
    env = JOB_ENV | {"AIMAAS_HEARTBEAT_STALE_S": "1"}
    first = start_server(tmp_path / "home", extra_env=env)
    marker = tmp_path / "running"
    try:
        with first.client() as c:
            job = create(c, "cooperative", {"seconds": 8, "marker": str(marker)}).json()
            assert wait_for(c, job["id"], lambda j: j["state"] == "running" and marker.exists())["state"] == "running"
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    second = start_server(tmp_path / "home", extra_env=env)
    try:
        with second.client() as c:
            done = wait_for(c, job["id"], lambda j: j["state"] in TERMINAL, timeout=10)
            assert done["state"] == "failed" and "start a new job" in done["error"], done
    finally:
        stop_server(second)


def test_cli_and_async_sdk(jobs_server: LiveServer, admin: httpx.Client) -> None:
    import asyncio

    from typer.testing import CliRunner

    from aimaas.cli.main import app
    from aimaas.sdk import AsyncClient

    job = create(admin, "succeed", {"x": 2}).json()
    base = ["--url", jobs_server.url, "--api-key", jobs_server.admin_key, "jobs"]
    runner = CliRunner()
    follow = runner.invoke(app, [*base, "logs", job["id"], "--follow"])
    assert follow.exit_code == 0, follow.output
    assert "starting rows=3" in follow.stdout and "METRIC  loss=1.0 step=0 epoch=0" in follow.stdout
    assert follow.stdout.rstrip().endswith("STATE   succeeded")
    logs = runner.invoke(app, [*base, "logs", job["id"]])
    assert logs.exit_code == 0 and logs.stdout == follow.stdout
    shown = runner.invoke(app, [*base, "show", job["id"], "--json"])
    assert shown.exit_code == 0 and '"state": "succeeded"' in shown.stdout
    listed = runner.invoke(app, [*base, "list", "--state", "succeeded"])
    assert listed.exit_code == 0 and job["id"][:8] in listed.stdout
    cancelled = runner.invoke(app, [*base, "cancel", job["id"]])
    assert cancelled.exit_code == 0 and "Job is succeeded" in cancelled.stdout

    async def follow_async() -> list[int]:
        async with AsyncClient(jobs_server.url, jobs_server.admin_key) as ac:
            assert (await ac.jobs.get(job["id"])).state == "succeeded"
            return [e.seq async for e in ac.jobs.stream(job["id"])]

    assert asyncio.run(follow_async())[-1] == len(admin.get(f"/api/v1/jobs/{job['id']}/events").json()["items"])
