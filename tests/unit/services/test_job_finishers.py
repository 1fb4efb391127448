"""JobService finishers: a kind's hook sees a succeeded job and its result, and its failure fails the job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aimaas.domain import Job, JobState, Principal
from aimaas.errors import Conflict
from aimaas.executors import InlineExecutor
from aimaas.services.jobs import JobService
from aimaas.storage import MemoryMetadataStore
from aimaas.testing.store_contract import make_api_key, make_tenant

JOBS = "aimaas.testing.executor_jobs"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[JobService, Principal]]:
    store = MemoryMetadataStore()
    tenant = store.create_tenant(make_tenant())
    executor = InlineExecutor(checkpoint_root=tmp_path / "ckpt", allowed_modules=["aimaas.testing"])
    service = JobService(store, executor, owner="server-a")
    yield service, Principal(tenant=tenant, key=make_api_key(tenant.id))
    service.close()


def _finish(service: JobService, who: Principal, job: Job) -> Job:
    deadline = time.monotonic() + 10
    while service.get(who, job.id).state in (JobState.QUEUED, JobState.RUNNING):
        assert time.monotonic() < deadline
        service.tick()
    return service.get(who, job.id)


def test_the_finisher_rewrites_the_result_of_a_succeeded_job(setup: tuple[JobService, Principal]) -> None:
    service, who = setup
    seen: list[tuple[str, dict[str, Any]]] = []

    def finisher(job: Job, result: dict[str, Any]) -> dict[str, Any]:
        assert job.state is JobState.RUNNING  # called before the success is stored
        seen.append((job.id, result))
        return {**result, "registered": True}

    service.add_finisher("train", finisher)
    job, _ = service.create(who, {"kind": "train", "entrypoint": f"{JOBS}:succeed", "params": {"n": 2}})
    other, _ = service.create(who, {"kind": "other", "entrypoint": f"{JOBS}:succeed", "params": {}})
    done = _finish(service, who, job)
    assert done.state is JobState.SUCCEEDED and done.result == {"echo": {"n": 2}, "steps": 3, "registered": True}
    assert _finish(service, who, other).result == {"echo": {}, "steps": 3}  # another kind: no hook
    assert seen == [(job.id, {"echo": {"n": 2}, "steps": 3})]


def test_a_failing_finisher_fails_the_job_with_its_reason(setup: tuple[JobService, Principal]) -> None:
    service, who = setup

    def finisher(job: Job, result: dict[str, Any]) -> dict[str, Any]:
        raise Conflict("model name taken", code="x")

    service.add_finisher("train", finisher)
    job, _ = service.create(who, {"kind": "train", "entrypoint": f"{JOBS}:succeed", "params": {}})
    done = _finish(service, who, job)
    assert done.state is JobState.FAILED and done.result is None
    assert done.error == "the job finished but its output could not be kept: model name taken"


def test_failed_jobs_never_reach_the_finisher(setup: tuple[JobService, Principal]) -> None:
    service, who = setup
    calls: list[str] = []
    service.add_finisher("train", lambda job, result: calls.append(job.id) or result)
    job, _ = service.create(who, {"kind": "train", "entrypoint": f"{JOBS}:fail", "params": {}})
    assert _finish(service, who, job).state is JobState.FAILED and calls == []
