"""The jobs half of :class:`~aimaas.storage.memory.MemoryMetadataStore`, as a mixin.

Mirrors :class:`aimaas.storage.sql.jobs.SqlJobsMixin` observably: same errors, ordering, idempotency, claim
choice (:func:`~aimaas.domain.pick_next`), JSON normalisation (tuples become lists) and UTC timestamps. Every
method runs under the store's one lock, so it is one transaction and claims can never overlap.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aimaas.domain import (
    TERMINAL_STATES,
    Job,
    JobEvent,
    JobState,
    QueuedJob,
    Tenant,
    check_transition,
    pick_next,
    utcnow,
)
from aimaas.errors import Conflict, InvalidInput, NotFound
from aimaas.storage.base import MetadataStore, check_job_events, check_job_progress, check_new_job

__all__ = ["MemoryJobsMixin"]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))


class MemoryJobsMixin(MetadataStore):
    """Job methods of the memory store; the concrete class provides ``_lock`` and ``_tenants``."""

    _lock: threading.RLock
    _tenants: dict[str, Tenant]

    def _init_jobs(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._job_events: dict[str, dict[int, JobEvent]] = {}

    def _job(self, job_id: str, tenant_id: str | None = None) -> Job:
        job = self._jobs.get(job_id)
        if job is None or (tenant_id is not None and job.tenant_id != tenant_id):
            raise NotFound(f"job {job_id!r} not found")
        return job

    def _put(self, job: Job, **changes: Any) -> Job:
        stored = replace(job, **changes)
        self._jobs[job.id] = stored
        return stored

    def create_job(self, job: Job) -> tuple[Job, bool]:
        check_new_job(job)
        with self._lock:
            if job.tenant_id not in self._tenants:
                raise NotFound(f"tenant {job.tenant_id!r} not found")
            if job.idempotency_key is not None:
                for other in self._jobs.values():
                    if other.tenant_id == job.tenant_id and other.idempotency_key == job.idempotency_key:
                        return other, False
            if job.id in self._jobs:
                raise Conflict("the record conflicts with an existing one")
            spec = replace(job.spec, params=_json(job.spec.params))
            stored = replace(
                job,
                spec=spec,
                progress=float(job.progress),
                result=None if job.result is None else _json(job.result),
                created_at=_utc(job.created_at),
                started_at=_utc_or_none(job.started_at),
                finished_at=_utc_or_none(job.finished_at),
                cancel_requested_at=_utc_or_none(job.cancel_requested_at),
                heartbeat_at=_utc_or_none(job.heartbeat_at),
            )
            self._jobs[job.id] = stored
            self._job_events[job.id] = {}
            return stored, True

    def get_job(self, tenant_id: str, job_id: str) -> Job:
        with self._lock:
            return self._job(job_id, tenant_id)

    def list_jobs(
        self, tenant_id: str, *, limit: int = 100, after: str | None = None, state: JobState | str | None = None
    ) -> list[Job]:
        if limit < 0:
            raise InvalidInput("limit must be zero or more", param="limit")
        wanted = None
        if state is not None:
            try:
                wanted = JobState(state)
            except ValueError:
                raise InvalidInput(f"unknown job state {state!r}", param="state") from None
        with self._lock:
            items = sorted(
                (j for j in self._jobs.values() if j.tenant_id == tenant_id and wanted in (None, j.state)),
                key=lambda j: j.id,
            )
        if after is not None:
            items = [j for j in items if j.id > after]
        return items[:limit]

    def claim_jobs(self, owner: str, limit_total: int, limit_per_tenant: int | None) -> list[Job]:
        if not owner:
            raise InvalidInput("owner must be a non-empty string", param="owner")
        pick_next([], {}, limit_per_tenant, 0)  # validates limit_per_tenant
        with self._lock:
            queued = [
                QueuedJob(j.id, j.tenant_id, j.priority, j.created_at)
                for j in self._jobs.values()
                if j.state is JobState.QUEUED
            ]
            running: dict[str, int] = {}
            for j in self._jobs.values():
                if j.state is JobState.RUNNING:
                    running[j.tenant_id] = running.get(j.tenant_id, 0) + 1
            now = utcnow()
            return [
                self._put(self._jobs[i], state=JobState.RUNNING, owner=owner, started_at=now, heartbeat_at=now)
                for i in pick_next(queued, running, limit_per_tenant, limit_total)
            ]

    def update_job(
        self,
        job_id: str,
        *,
        state: JobState | str | None = None,
        progress: float | None = None,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        heartbeat_at: datetime | None = None,
    ) -> Job:
        changes: dict[str, Any] = {}
        if progress is not None:
            changes["progress"] = check_job_progress(progress)
        if error is not None:
            changes["error"] = error
        if result is not None:
            changes["result"] = _json(result)
        if heartbeat_at is not None:
            changes["heartbeat_at"] = _utc(heartbeat_at)
        with self._lock:
            job = self._job(job_id)
            if state is not None:
                new = check_transition(job.state, state)
                changes["state"] = new
                if new is JobState.RUNNING and job.started_at is None:
                    changes["started_at"] = utcnow()
                if new in TERMINAL_STATES:
                    changes["finished_at"] = utcnow()
            return self._put(job, **changes)

    def request_job_cancel(self, tenant_id: str, job_id: str, at: datetime) -> Job:
        with self._lock:
            job = self._job(job_id, tenant_id)
            when = _utc(at)
            if job.state is JobState.QUEUED:
                return self._put(
                    job,
                    state=JobState.CANCELLED,
                    finished_at=when,
                    cancel_requested_at=when,
                    error="cancelled before it started",
                )
            if job.state is JobState.RUNNING and job.cancel_requested_at is None:
                return self._put(job, cancel_requested_at=when)
            return job

    def fail_orphaned_jobs(
        self, *, owner: str | None = None, stale_before: datetime | None = None, reason: str
    ) -> list[str]:
        if owner is None and stale_before is None:
            return []
        stale = _utc_or_none(stale_before)
        with self._lock:
            ids = sorted(
                j.id
                for j in self._jobs.values()
                if j.state is JobState.RUNNING
                and (
                    (owner is not None and j.owner == owner)
                    or (stale is not None and (j.heartbeat_at is None or j.heartbeat_at < stale))
                )
            )
            now = utcnow()
            for job_id in ids:
                self._put(self._jobs[job_id], state=JobState.FAILED, error=reason, finished_at=now)
            return ids

    def append_job_events(self, job_id: str, events: Sequence[JobEvent]) -> None:
        check_job_events(job_id, events)
        with self._lock:
            self._job(job_id)
            stored = self._job_events[job_id]
            for e in events:
                if e.seq not in stored:
                    stored[e.seq] = replace(e, time=_utc(e.time), payload=_json(e.payload))

    def list_job_events(self, tenant_id: str, job_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[JobEvent]:
        if limit < 0:
            raise InvalidInput("limit must be zero or more", param="limit")
        with self._lock:
            self._job(job_id, tenant_id)
            stored = self._job_events[job_id]
            return [stored[s] for s in sorted(stored) if s > after_seq][:limit]
