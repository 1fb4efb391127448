"""JobService over a real store and the real inline and local executors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from aimaas.domain import Job, JobSpec, JobState, Principal, utcnow
from aimaas.errors import InvalidInput, NotFound
from aimaas.executors import InlineExecutor, LocalExecutor
from aimaas.services.jobs import RESTART_REASON, STALE_REASON, JobService
from aimaas.storage import MemoryMetadataStore, MetadataStore
from aimaas.storage.sql import SqlMetadataStore
from aimaas.testing.store_contract import make_api_key, make_tenant

JOBS = "aimaas.testing.executor_jobs"


def _principal(store: MetadataStore) -> Principal:
    tenant = store.create_tenant(make_tenant())
    return Principal(tenant=tenant, key=make_api_key(tenant.id))


def _run_until(service: JobService, done: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        service.tick()
        time.sleep(0.02)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    s: MetadataStore = (
        MemoryMetadataStore() if request.param == "memory" else SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    )
    yield s
    s.close()


@pytest.fixture
def inline(store: MetadataStore, tmp_path: Path) -> Iterator[JobService]:
    executor = InlineExecutor(checkpoint_root=tmp_path / "ckpt", allowed_modules=["aimaas.testing"])
    service = JobService(store, executor, owner="server-a", limit_per_tenant=2, heartbeat_stale_s=30)
    yield service
    service.close()


def test_a_job_runs_to_succeeded_with_its_events_stored(inline: JobService, store: MetadataStore) -> None:
    who = _principal(store)
    job, created = inline.create(who, {"kind": "train", "entrypoint": f"{JOBS}:succeed", "params": {"n": 1}}, "k1")
    assert created and job.state is JobState.QUEUED
    assert inline.create(who, {"kind": "x", "entrypoint": f"{JOBS}:fail", "params": {}}, "k1") == (job, False)
    report = inline.tick()  # claims and runs it (inline runs inside submit)
    assert report.started == (job.id,)
    assert inline.tick().finished == (job.id,)
    done = inline.get(who, job.id)
    assert done.state is JobState.SUCCEEDED and done.progress == 100.0 and done.owner == "server-a"
    assert done.result == {"echo": {"n": 1}, "steps": 3} and done.finished_at is not None
    events = inline.events(who, job.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].payload["state"] == "running" and events[-1].payload["state"] == "succeeded"
    assert {e.type for e in events} == {"state", "log", "metric", "progress"}
    assert [e.seq for e in inline.events(who, job.id, after_seq=len(events) - 1)] == [len(events)]
    assert inline.list(who) == [done] and inline.list(who, state="queued") == []


def test_a_failing_job_ends_failed_with_the_message(inline: JobService, store: MetadataStore) -> None:
    who = _principal(store)
    job, _ = inline.create(who, {"kind": "train", "entrypoint": f"{JOBS}:fail", "params": {"message": "bad rows"}})
    _run_until(inline, lambda: inline.get(who, job.id).state is JobState.FAILED)
    failed = inline.get(who, job.id)
    assert failed.error is not None and "bad rows" in failed.error and "ValueError" in failed.error
    assert inline.events(who, job.id)[-1].payload["last_logs"][-1] == "about to fail"


def test_create_checks_fields_entrypoint_and_ownership(inline: JobService, store: MetadataStore) -> None:
    who, other = _principal(store), _principal(store)
    with pytest.raises(InvalidInput) as info:
        inline.create(who, {"kind": "x", "entrypoint": "os:system", "params": {}})
    assert info.value.param == "entrypoint"
    with pytest.raises(InvalidInput):
        inline.create(who, {"kind": "x", "entrypoint": f"{JOBS}:succeed", "params": {}, "tenant_id": other.tenant_id})
    theirs, _ = inline.create(other, {"kind": "x", "entrypoint": f"{JOBS}:succeed", "params": {}})
    for call in (inline.get, inline.cancel, inline.events):
        with pytest.raises(NotFound):
            call(who, theirs.id)
    with pytest.raises(NotFound):
        inline.create(who, {"kind": "x", "entrypoint": f"{JOBS}:succeed", "params": {}, "resume_from": theirs.id})
    cancelled = inline.cancel(other, theirs.id)  # still queued: cancelled at once, never started
    assert cancelled.state is JobState.CANCELLED
    assert inline.tick().started == ()


def test_cancel_of_a_running_local_job_ends_cancelled(store: MetadataStore, tmp_path: Path) -> None:
    executor = LocalExecutor(1, checkpoint_root=tmp_path / "ckpt", heartbeat_s=0.2, grace_s=1.0, kill_after_s=0.5)
    service = JobService(store, executor, owner="server-a", heartbeat_stale_s=30)
    try:
        who = _principal(store)
        marker = tmp_path / "running"
        params = {"marker": str(marker), "seconds": 20}
        job, _ = service.create(who, {"kind": "train", "entrypoint": f"{JOBS}:cooperative", "params": params})
        queued, _ = service.create(who, {"kind": "train", "entrypoint": f"{JOBS}:succeed", "params": {}})
        _run_until(service, marker.exists)
        assert service.get(who, queued.id).state is JobState.QUEUED  # one worker: it waits for a slot
        assert service.cancel(who, job.id).cancel_requested_at is not None
        _run_until(service, lambda: service.get(who, queued.id).state is JobState.SUCCEEDED)
        ended = service.get(who, job.id)
        assert ended.state is JobState.CANCELLED and ended.error and "cancel" in ended.error
        assert service.events(who, job.id)[-1].payload["state"] == "cancelled"
    finally:
        service.close()


def test_recover_fails_jobs_left_running_by_a_dead_owner(store: MetadataStore, tmp_path: Path) -> None:
    who = _principal(store)
    spec = JobSpec(kind="train", entrypoint=f"{JOBS}:succeed", params={}, tenant_id=who.tenant_id)
    start = utcnow() - timedelta(hours=1)
    ours, dead, fresh = (store.create_job(Job.new(spec, now=start + timedelta(seconds=i)))[0] for i in range(3))
    store.claim_jobs("server-a", 1, None)  # the previous run of this very server
    store.claim_jobs("server-dead", 1, None)
    store.claim_jobs("server-alive", 1, None)
    store.update_job(dead.id, heartbeat_at=utcnow() - timedelta(minutes=5))
    service = JobService(store, InlineExecutor(checkpoint_root=tmp_path), owner="server-a", heartbeat_stale_s=60)
    try:
        assert sorted(service.recover()) == sorted([ours.id, dead.id])
        assert service.get(who, ours.id).error == RESTART_REASON
        assert service.get(who, dead.id).error == STALE_REASON
        assert service.get(who, fresh.id).state is JobState.RUNNING  # its server is alive
        assert service.get(who, ours.id).state is JobState.FAILED
    finally:
        service.close()
