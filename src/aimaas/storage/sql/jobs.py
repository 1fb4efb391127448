"""The jobs half of :class:`~aimaas.storage.sql.store.SqlMetadataStore`, as a mixin.

Same rules as the rest of the SQL store: one transaction per method, tenant-scoped reads (another tenant's
job is NotFound), driver errors translated by :func:`~aimaas.storage.sql.engine.session_scope`.

Claiming is the one place where two servers race. Every write transaction on SQLite starts with ``BEGIN
IMMEDIATE``, so claims are serialised by the database write lock. On PostgreSQL a claim first takes a
transaction-scoped advisory lock (so the per-tenant running counts it reads cannot change under it), then
reads the queued rows ``FOR UPDATE SKIP LOCKED`` (rows a concurrent cancel holds are left for later), and
its UPDATE repeats ``state = 'queued'`` as a last guard: a job is never claimed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from aimaas.domain import TERMINAL_STATES, Job, JobEvent, JobState, QueuedJob, check_transition, pick_next, utcnow
from aimaas.errors import InvalidInput, NotFound
from aimaas.storage.base import MetadataStore, check_job_events, check_job_progress, check_new_job
from aimaas.storage.sql import convert as cv
from aimaas.storage.sql import queries as q
from aimaas.storage.sql.engine import is_postgres, session_scope
from aimaas.storage.sql.tables import job_events, jobs

__all__ = ["SqlJobsMixin"]

_CLAIM_LOCK_KEY = 0x61696D616173  # "aimaas": the advisory lock every claiming transaction takes on PostgreSQL
_RUNNING, _QUEUED = JobState.RUNNING.value, JobState.QUEUED.value


def _job_row(conn: Connection, job_id: str, tenant_id: str | None = None, *, lock: bool = False) -> RowMapping:
    query = sa.select(jobs).where(jobs.c.id == job_id)
    if tenant_id is not None:
        query = query.where(jobs.c.tenant_id == tenant_id)
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise NotFound(f"job {job_id!r} not found")
    return row


def _state_filter(state: JobState | str) -> str:
    try:
        return JobState(state).value
    except ValueError:
        raise InvalidInput(f"unknown job state {state!r}", param="state") from None


class SqlJobsMixin(MetadataStore):
    """Job methods of the SQL store; the concrete class provides ``_engine``."""

    _engine: Engine

    def create_job(self, job: Job) -> tuple[Job, bool]:
        check_new_job(job)
        values = cv.job_values(job)
        with session_scope(self._engine, write=True) as conn:
            q.require_tenant(conn, job.tenant_id)
            if job.idempotency_key is None:
                conn.execute(sa.insert(jobs).values(**values))
                return cv.to_job(_job_row(conn, job.id)), True
            inserted = conn.execute(
                q.insert_or_ignore(conn, jobs)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
                .returning(jobs.c.id)
            ).first()
            if inserted is not None:
                return cv.to_job(_job_row(conn, job.id)), True
            same = sa.select(jobs).where(
                jobs.c.tenant_id == job.tenant_id, jobs.c.idempotency_key == job.idempotency_key
            )
            return cv.to_job(q.one(conn, same)), False

    def get_job(self, tenant_id: str, job_id: str) -> Job:
        with session_scope(self._engine) as conn:
            return cv.to_job(_job_row(conn, job_id, tenant_id))

    def list_jobs(
        self, tenant_id: str, *, limit: int = 100, after: str | None = None, state: JobState | str | None = None
    ) -> list[Job]:
        query = sa.select(jobs).where(jobs.c.tenant_id == tenant_id)
        if state is not None:
            query = query.where(jobs.c.state == _state_filter(state))
        with session_scope(self._engine) as conn:
            rows = conn.execute(q.page(query, jobs.c.id, limit, after)).mappings().all()
        return [cv.to_job(r) for r in rows]

    def claim_jobs(self, owner: str, limit_total: int, limit_per_tenant: int | None) -> list[Job]:
        if not owner:
            raise InvalidInput("owner must be a non-empty string", param="owner")
        pick_next([], {}, limit_per_tenant, 0)  # validates limit_per_tenant
        if limit_total <= 0:
            return []
        with session_scope(self._engine, write=True) as conn:
            queued_query = sa.select(jobs.c.id, jobs.c.tenant_id, jobs.c.priority, jobs.c.created_at).where(
                jobs.c.state == _QUEUED
            )
            if is_postgres(self._engine):
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIM_LOCK_KEY)))
                queued_query = queued_query.with_for_update(skip_locked=True)
            queued = [QueuedJob(r.id, r.tenant_id, r.priority, r.created_at) for r in conn.execute(queued_query)]
            if not queued:
                return []
            counts_query = (
                sa.select(jobs.c.tenant_id, sa.func.count()).where(jobs.c.state == _RUNNING).group_by(jobs.c.tenant_id)
            )
            running = {tenant: int(n) for tenant, n in conn.execute(counts_query)}
            chosen = pick_next(queued, running, limit_per_tenant, limit_total)
            if not chosen:
                return []
            now = utcnow()
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id.in_(chosen), jobs.c.state == _QUEUED)
                .values(state=_RUNNING, owner=owner, started_at=now, heartbeat_at=now)
            )
            rows = conn.execute(sa.select(jobs).where(jobs.c.id.in_(chosen), jobs.c.owner == owner)).mappings()
            claimed = {r["id"]: cv.to_job(r) for r in rows if r["state"] == _RUNNING}
        return [claimed[i] for i in chosen if i in claimed]

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
        values: dict[str, Any] = {}
        if progress is not None:
            values["progress"] = check_job_progress(progress)
        if error is not None:
            values["error"] = error
        if result is not None:
            values["result_json"] = cv.dumps(result)
        if heartbeat_at is not None:
            values["heartbeat_at"] = heartbeat_at
        with session_scope(self._engine, write=True) as conn:
            row = _job_row(conn, job_id, lock=True)
            if state is not None:
                new = check_transition(row["state"], state)
                values["state"] = new.value
                if new is JobState.RUNNING and row["started_at"] is None:
                    values["started_at"] = utcnow()
                if new in TERMINAL_STATES:
                    values["finished_at"] = utcnow()
            if values:
                conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))
            return cv.to_job(_job_row(conn, job_id))

    def request_job_cancel(self, tenant_id: str, job_id: str, at: datetime) -> Job:
        with session_scope(self._engine, write=True) as conn:
            row = _job_row(conn, job_id, tenant_id, lock=True)
            values: dict[str, Any] = {}
            if row["state"] == _QUEUED:
                values = {"state": JobState.CANCELLED.value, "finished_at": at, "cancel_requested_at": at}
                values["error"] = "cancelled before it started"
            elif row["state"] == _RUNNING and row["cancel_requested_at"] is None:
                values = {"cancel_requested_at": at}
            if values:
                conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))
            return cv.to_job(_job_row(conn, job_id))

    def fail_orphaned_jobs(
        self, *, owner: str | None = None, stale_before: datetime | None = None, reason: str
    ) -> list[str]:
        orphaned: list[sa.ColumnElement[bool]] = []
        if owner is not None:
            orphaned.append(jobs.c.owner == owner)
        if stale_before is not None:
            orphaned.append(sa.or_(jobs.c.heartbeat_at.is_(None), jobs.c.heartbeat_at < stale_before))
        if not orphaned:
            return []
        with session_scope(self._engine, write=True) as conn:
            query = sa.select(jobs.c.id).where(jobs.c.state == _RUNNING, sa.or_(*orphaned)).order_by(jobs.c.id)
            ids = list(conn.execute(query.with_for_update()).scalars())
            if ids:
                conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.id.in_(ids))
                    .values(state=JobState.FAILED.value, error=reason, finished_at=utcnow())
                )
            return ids

    def append_job_events(self, job_id: str, events: Sequence[JobEvent]) -> None:
        check_job_events(job_id, events)
        with session_scope(self._engine, write=True) as conn:
            _job_row(conn, job_id)
            if events:
                stmt = q.insert_or_ignore(conn, job_events).on_conflict_do_nothing(index_elements=["job_id", "seq"])
                conn.execute(stmt, [cv.job_event_values(e) for e in events])

    def list_job_events(self, tenant_id: str, job_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[JobEvent]:
        q.check_limit(limit)
        with session_scope(self._engine) as conn:
            _job_row(conn, job_id, tenant_id)
            rows = conn.execute(
                sa.select(job_events)
                .where(job_events.c.job_id == job_id, job_events.c.seq > after_seq)
                .order_by(job_events.c.seq)
                .limit(limit)
            ).mappings()
            return [cv.to_job_event(r) for r in rows]
