"""JobsContract: the job-queue behaviour every :class:`~aimaas.storage.base.MetadataStore` must show.

Subclass it in a test module and give the subclass a ``store`` fixture (a fresh, empty store). Backends that
can open a second store on the same database override ``twin`` to return it, so the claim race runs between
two "servers" with separate connection pools.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aimaas.domain import Job, JobEvent, JobSpec, JobState, Tenant, new_id, utcnow
from aimaas.errors import Conflict, InvalidInput, NotFound
from aimaas.storage.base import MetadataStore
from aimaas.testing.store_contract import make_tenant, run_concurrently

__all__ = ["JobsContract", "make_job"]


def make_job(
    tenant_id: str, *, idempotency_key: str | None = None, created_at: datetime | None = None, **spec_fields: Any
) -> Job:
    """A fresh queued Job for ``tenant_id``; ``spec_fields`` override the JobSpec's defaults."""
    fields: dict[str, Any] = {"kind": "train", "entrypoint": "aimaas.testing.executor_jobs:succeed"}
    fields |= {"params": {"rows": (1, 2), "name": "ünï"}, "tenant_id": tenant_id} | spec_fields
    return Job.new(JobSpec(**fields), idempotency_key=idempotency_key, now=created_at)


def _at(minute: int) -> datetime:
    return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)


def _event(job_id: str, seq: int, type_: Any = "log", **payload: Any) -> JobEvent:
    return JobEvent(job_id, seq, datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=seq), type_, payload)


class JobsContract:
    """``test_*`` methods taking a ``store`` fixture (a fresh, empty MetadataStore)."""

    @pytest.fixture
    def twin(self, store: MetadataStore) -> MetadataStore:
        """A second store on the same database (default: the same object)."""
        return store

    @staticmethod
    def _tenant(store: MetadataStore) -> Tenant:
        return store.create_tenant(make_tenant())

    def test_create_get_list(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        job, created = store.create_job(make_job(tenant.id, priority=3, resume_from="job_old"))
        assert created and job.state is JobState.QUEUED and job.priority == 3
        assert job.spec.params == {"rows": [1, 2], "name": "ünï"} and job.spec.resume_from == "job_old"
        assert job.created_at.tzinfo is not None and job.progress == 0.0 and job.owner is None
        assert store.get_job(tenant.id, job.id) == job
        more = [store.create_job(make_job(tenant.id))[0] for _ in range(3)]
        ordered = sorted([job, *more], key=lambda j: j.id)  # ids in one millisecond sort by their random part
        assert store.list_jobs(tenant.id) == ordered
        assert store.list_jobs(tenant.id, limit=2, after=ordered[0].id) == ordered[1:3]
        assert store.list_jobs(tenant.id, state="running") == []
        with pytest.raises(InvalidInput):
            store.list_jobs(tenant.id, state="sleeping")
        with pytest.raises(NotFound):
            store.create_job(make_job("ten_missing"))

    def test_idempotency_key_returns_the_first_job(self, store: MetadataStore) -> None:
        tenant, other = self._tenant(store), self._tenant(store)
        first, created = store.create_job(make_job(tenant.id, idempotency_key="k1"))
        again, created_again = store.create_job(make_job(tenant.id, idempotency_key="k1", kind="tune"))
        assert created and not created_again and again == first
        elsewhere, created_elsewhere = store.create_job(make_job(other.id, idempotency_key="k1"))
        assert created_elsewhere and elsewhere.id != first.id
        results = run_concurrently(6, lambda i: store.create_job(make_job(tenant.id, idempotency_key="k2")))
        assert all(isinstance(r, tuple) for r in results), results
        assert sum(r[1] for r in results if isinstance(r, tuple)) == 1
        assert len({r[0].id for r in results if isinstance(r, tuple)}) == 1
        assert len(store.list_jobs(tenant.id)) == 2

    def test_another_tenants_job_is_not_found(self, store: MetadataStore) -> None:
        tenant, other = self._tenant(store), self._tenant(store)
        job, _ = store.create_job(make_job(tenant.id))
        with pytest.raises(NotFound):
            store.get_job(other.id, job.id)
        with pytest.raises(NotFound):
            store.request_job_cancel(other.id, job.id, utcnow())
        with pytest.raises(NotFound):
            store.list_job_events(other.id, job.id)
        assert store.list_jobs(other.id) == []
        assert store.get_job(tenant.id, job.id).state is JobState.QUEUED

    def test_claim_follows_priority_and_per_tenant_limit(self, store: MetadataStore) -> None:
        a, b = self._tenant(store), self._tenant(store)
        a_jobs = [store.create_job(make_job(a.id, created_at=_at(i)))[0] for i in range(3)]
        b_low = store.create_job(make_job(b.id, created_at=_at(3)))[0]
        b_high = store.create_job(make_job(b.id, priority=5, created_at=_at(4)))[0]
        claimed = store.claim_jobs("server-1", 10, 2)
        assert [j.id for j in claimed] == [b_high.id, a_jobs[0].id, a_jobs[1].id, b_low.id]
        assert all(j.state is JobState.RUNNING and j.owner == "server-1" for j in claimed)
        assert all(j.started_at is not None and j.heartbeat_at is not None for j in claimed)
        assert store.claim_jobs("server-2", 10, 2) == []
        store.update_job(a_jobs[0].id, state="succeeded")
        assert [j.id for j in store.claim_jobs("server-2", 10, 2)] == [a_jobs[2].id]
        assert store.claim_jobs("server-2", 0, None) == []
        with pytest.raises(InvalidInput):
            store.claim_jobs("server-2", 1, 0)

    def test_two_servers_never_claim_the_same_job(self, store: MetadataStore, twin: MetadataStore) -> None:
        tenants = [self._tenant(store) for _ in range(3)]
        ids = {store.create_job(make_job(tenants[i % 3].id))[0].id for i in range(24)}
        servers = [store, twin]

        def claim_all(i: int) -> list[str]:
            got: list[str] = []
            while batch := servers[i % 2].claim_jobs(f"server-{i % 2}", 2, None):
                got += [j.id for j in batch]
            return got

        results = run_concurrently(4, claim_all)
        claimed = Counter(job_id for r in results if isinstance(r, list) for job_id in r)
        assert all(isinstance(r, list) for r in results), results
        assert set(claimed) == ids and set(claimed.values()) == {1}

    def test_cancel_semantics(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        queued, running = (store.create_job(make_job(tenant.id, created_at=_at(i)))[0] for i in range(2))
        at = datetime(2025, 5, 1, 12, tzinfo=UTC)
        store.claim_jobs("s", 1, None)  # claims the older one: ``queued``
        queued, running = running, queued
        cancelled = store.request_job_cancel(tenant.id, queued.id, at)
        assert cancelled.state is JobState.CANCELLED and cancelled.finished_at == at and cancelled.error
        flagged = store.request_job_cancel(tenant.id, running.id, at)
        assert flagged.state is JobState.RUNNING and flagged.cancel_requested_at == at
        later = store.request_job_cancel(tenant.id, running.id, at + timedelta(hours=1))
        assert later.cancel_requested_at == at
        done = store.update_job(running.id, state=JobState.CANCELLED, error="cancelled")
        assert done.state is JobState.CANCELLED and done.finished_at is not None
        assert store.request_job_cancel(tenant.id, running.id, at) == done

    def test_update_and_illegal_transitions(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        job, _ = store.create_job(make_job(tenant.id))
        with pytest.raises(Conflict) as info:
            store.update_job(job.id, state="succeeded")
        assert info.value.code == "invalid_job_transition"
        assert store.get_job(tenant.id, job.id).state is JobState.QUEUED
        beat = datetime(2025, 6, 1, tzinfo=UTC)
        running = store.update_job(job.id, state="running", progress=40, heartbeat_at=beat)
        assert (running.progress, running.heartbeat_at) == (40.0, beat) and running.started_at is not None
        with pytest.raises(InvalidInput):
            store.update_job(job.id, progress=101)
        done = store.update_job(job.id, state="succeeded", progress=100, result={"score": (1, 2)})
        assert done.result == {"score": [1, 2]} and done.finished_at is not None
        with pytest.raises(Conflict):
            store.update_job(job.id, state="failed", error="late")
        assert store.get_job(tenant.id, job.id) == done
        with pytest.raises(NotFound):
            store.update_job("job_missing", progress=1)

    def test_orphans_are_failed_not_requeued(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        jobs = [store.create_job(make_job(tenant.id, created_at=_at(i)))[0] for i in range(4)]
        store.claim_jobs("dead", 2, None)
        store.claim_jobs("alive", 1, None)
        old = utcnow() - timedelta(minutes=10)
        store.update_job(jobs[2].id, heartbeat_at=old)  # "alive" stopped beating for this one
        assert store.fail_orphaned_jobs(reason="nothing") == []
        assert store.fail_orphaned_jobs(owner="dead", reason="the server restarted") == sorted([jobs[0].id, jobs[1].id])
        stale = store.fail_orphaned_jobs(stale_before=utcnow() - timedelta(minutes=1), reason="no heartbeat")
        assert stale == [jobs[2].id]
        states = [store.get_job(tenant.id, j.id) for j in jobs]
        assert [s.state for s in states] == [JobState.FAILED] * 3 + [JobState.QUEUED]
        assert states[0].error == "the server restarted" and states[2].error == "no heartbeat"
        assert all(s.finished_at is not None for s in states[:3])
        assert store.fail_orphaned_jobs(owner="dead", reason="again") == []

    def test_events_are_deduplicated_and_ordered(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        job, _ = store.create_job(make_job(tenant.id))
        other, _ = store.create_job(make_job(tenant.id))
        store.append_job_events(job.id, [_event(job.id, 2, message="b"), _event(job.id, 1, message="a")])
        store.append_job_events(job.id, [_event(job.id, 2, message="dup"), _event(job.id, 3, "metric", value=(1,))])
        store.append_job_events(job.id, [])
        events = store.list_job_events(tenant.id, job.id)
        assert [(e.seq, e.payload) for e in events] == [
            (1, {"message": "a"}),
            (2, {"message": "b"}),
            (3, {"value": [1]}),
        ]
        assert events[0].time == datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC) and events[2].type == "metric"
        assert [e.seq for e in store.list_job_events(tenant.id, job.id, after_seq=1, limit=1)] == [2]
        assert store.list_job_events(tenant.id, other.id) == []
        with pytest.raises(InvalidInput):
            store.append_job_events(job.id, [_event(other.id, 4)])
        with pytest.raises(NotFound):
            store.append_job_events(new_id("job"), [])
