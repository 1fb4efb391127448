"""JobService: the persistent job queue, between the metadata store and an executor.

The store is the source of truth; the executor only runs what this service hands it. :meth:`JobService.tick`
is one reconcile step, pure enough to call from a server loop (every ~200 ms) or from a test:

1. store ``executor.poll()`` events (duplicates ignored), then apply them: progress, and the terminal state
   with its ``reason`` as ``error`` and its ``result`` (checked by ``check_transition``; a job already ended
   by someone else, e.g. failed as an orphan, keeps its state);
2. send ``executor.cancel`` for jobs of this server whose ``cancel_requested_at`` is set (once each);
3. claim queued jobs up to ``capacity - len(running())`` (:meth:`MetadataStore.claim_jobs`: atomic, so two
   servers never run one job) and submit them; a job the executor refuses ends ``failed``;
4. refresh ``heartbeat_at`` of this server's running jobs, and fail other servers' jobs whose heartbeat is
   older than ``heartbeat_stale_s`` (their server died).

Finishers (:meth:`JobService.add_finisher`): a job kind may register a function called when one of its jobs
succeeds, before the success is stored, with the job and its result; what it returns becomes the stored result
(the ``train`` kind registers the model version there). If it raises, the job ends ``failed`` with the reason.

Restart policy (:meth:`recover`, called once at start): jobs left ``running`` by this owner id, or with a stale
heartbeat, are failed with a reason, never re-queued; a new job can resume with ``resume_from``. Events are
stored before the state they imply, so a crash in between leaves a running job that ``recover`` fails.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aimaas.domain import Job, JobEvent, JobSpec, JobState, Principal, utcnow
from aimaas.errors import AimaasError, Conflict, InvalidInput, NotFound
from aimaas.executors import Executor, check_submission
from aimaas.storage.base import MetadataStore

__all__ = ["RESTART_REASON", "STALE_REASON", "JobService", "TickReport"]

log = logging.getLogger(__name__)

RESTART_REASON = "the server restarted while the job was running; start a new job (resume_from) to run it again"
STALE_REASON = "the server running the job stopped sending heartbeats; start a new job (resume_from) to run it again"
_SPEC_FIELDS = frozenset({"kind", "entrypoint", "params", "priority", "resume_from"})
Finisher = Callable[[Job, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TickReport:
    """What one :meth:`JobService.tick` did: events stored, jobs started, jobs finished, cancels sent."""

    events: int = 0
    started: tuple[str, ...] = ()
    finished: tuple[str, ...] = ()
    cancels: tuple[str, ...] = ()


class JobService:
    """Creates, lists and cancels a tenant's jobs, and runs the queue on ``executor``.

    ``owner`` identifies this server instance (unique per process start is safest). ``limit_per_tenant``
    caps a tenant's running jobs across all servers (None: no cap). ``allowed_modules`` restricts
    entrypoints at create time (default: the executor's own ``allowed_modules`` setting, if any). Call
    ``tick`` from one loop; ``cancel``, ``tick`` and ``close`` hold one lock, so request threads may cancel
    while the loop runs.
    """

    def __init__(
        self,
        store: MetadataStore,
        executor: Executor,
        *,
        owner: str,
        limit_per_tenant: int | None = None,
        heartbeat_stale_s: float = 30.0,
        allowed_modules: Iterable[str] | None = None,
    ) -> None:
        if not owner:
            raise InvalidInput("owner must be a non-empty string", param="owner")
        if heartbeat_stale_s <= 0:
            raise InvalidInput("heartbeat_stale_s must be positive", param="heartbeat_stale_s")
        self._store, self._executor, self.owner = store, executor, owner
        self.limit_per_tenant, self.heartbeat_stale_s = limit_per_tenant, heartbeat_stale_s
        if allowed_modules is None:  # executors keep their setting private; read it as a default only
            allowed_modules = executor.allowed_modules
        self._allowed = None if allowed_modules is None else tuple(allowed_modules)
        self._active: dict[str, str] = {}  # job id → tenant id, for the jobs this service submitted
        self._cancel_sent: set[str] = set()
        self._lock = threading.RLock()
        self._finishers: dict[str, Finisher] = {}
        self._last_beat = self._last_sweep = utcnow() - timedelta(days=1)

    def add_finisher(self, kind: str, finisher: Finisher) -> None:
        """Call ``finisher(job, result)`` when a job of ``kind`` succeeds (see the module docstring)."""
        self._finishers[kind] = finisher

    # -- tenant-facing use cases ----------------------------------------------------------------
    def create(
        self, principal: Principal, spec_fields: Mapping[str, Any], idempotency_key: str | None = None
    ) -> tuple[Job, bool]:
        """Queue a job for the principal's tenant; ``(job, created)``. A retry with the same
        ``idempotency_key`` returns the first job with ``created=False``. InvalidInput for unknown fields
        (``tenant_id`` included: ownership comes from the principal) or a refused entrypoint; NotFound when
        ``resume_from`` is not one of the tenant's jobs."""
        unknown = set(spec_fields) - _SPEC_FIELDS
        if unknown:
            raise InvalidInput(f"unknown job fields: {', '.join(sorted(unknown))}", param=sorted(unknown)[0])
        spec = JobSpec(**{**spec_fields, "tenant_id": principal.tenant_id})
        job = Job.new(spec, idempotency_key=idempotency_key)
        check_submission(job.id, spec, self._allowed)
        if spec.resume_from is not None:
            self._store.get_job(principal.tenant_id, spec.resume_from)
        return self._store.create_job(job)

    def retry(self, principal: Principal, job_id: str) -> Job:
        """A new job with the same spec, resuming from ``job_id``'s checkpoint folder. Conflict while the job
        has not ended (cancel it first)."""
        old = self._store.get_job(principal.tenant_id, job_id)
        if old.state in (JobState.QUEUED, JobState.RUNNING):
            raise Conflict(f"job {job_id} is still {old.state.value}; cancel it or wait for it to end before retrying",
                           code="job_active")
        spec = old.spec
        job, _ = self.create(principal, {"kind": spec.kind, "entrypoint": spec.entrypoint, "params": spec.params,
                                         "priority": spec.priority, "resume_from": old.id})
        return job

    def get(self, principal: Principal, job_id: str) -> Job:
        return self._store.get_job(principal.tenant_id, job_id)

    def list(
        self, principal: Principal, *, limit: int = 100, after: str | None = None, state: str | None = None
    ) -> list[Job]:
        return self._store.list_jobs(principal.tenant_id, limit=limit, after=after, state=state)

    def events(
        self, principal: Principal, job_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> builtins.list[JobEvent]:
        return self._store.list_job_events(principal.tenant_id, job_id, after_seq=after_seq, limit=limit)

    def cancel(self, principal: Principal, job_id: str) -> Job:
        """Cancel: a queued job ends ``cancelled`` now; a running one is flagged, and stopped by the server
        running it (at once when that is this one). A finished job is returned unchanged."""
        job = self._store.request_job_cancel(principal.tenant_id, job_id, utcnow())
        with self._lock:
            if job.state is JobState.RUNNING and job.id in self._active:
                self._send_cancel(job.id)
        return job

    # -- the loop ----------------------------------------------------------------------------
    def recover(self) -> builtins.list[str]:
        """At start: fail the jobs this owner left running and those whose server stopped beating."""
        failed = self._store.fail_orphaned_jobs(owner=self.owner, reason=RESTART_REASON)
        failed += self._sweep(force=True)
        for job_id in failed:
            log.warning("failed orphaned job", extra={"job_id": job_id})
        return failed

    def tick(self) -> TickReport:
        """One reconcile step (see the module docstring). Never raises for one job's trouble."""
        with self._lock:
            events, finished = self._store_events(self._executor.poll())
            cancels = self._send_requested_cancels()
            started = self._start_jobs()
            self._beat()
            self._sweep()
        return TickReport(len(events), tuple(started), tuple(finished), tuple(cancels))

    def close(self) -> None:
        """Stop the executor (running jobs end ``failed``) and store its last events."""
        with self._lock:
            self._executor.close()
            self._store_events(self._executor.poll())

    # -- steps -------------------------------------------------------------------------------
    def _store_events(self, events: builtins.list[JobEvent]) -> tuple[builtins.list[JobEvent], builtins.list[str]]:
        by_job: dict[str, list[JobEvent]] = {}
        for event in events:
            by_job.setdefault(event.job_id, []).append(event)
        finished: builtins.list[str] = []
        for job_id, batch in by_job.items():
            try:
                self._store.append_job_events(job_id, batch)
                self._apply(job_id, batch)
            except AimaasError as error:
                log.warning("could not store job events: %s", error.message, extra={"job_id": job_id})
            if any(e.terminal_state is not None for e in batch):
                finished.append(job_id)
                self._active.pop(job_id, None)
                self._cancel_sent.discard(job_id)
        return events, finished

    def _apply(self, job_id: str, batch: builtins.list[JobEvent]) -> None:
        progress = [float(e.payload.get("progress", 0)) for e in batch if e.type == "progress"]
        end = next((e for e in batch if e.terminal_state is not None), None)
        changes: dict[str, Any] = {}
        if progress:
            changes["progress"] = min(max(progress[-1], 0.0), 100.0)
        if end is not None:
            state = end.terminal_state
            changes["state"] = state
            if end.payload.get("reason"):
                changes["error"] = str(end.payload["reason"])
            if isinstance(end.payload.get("result"), dict):
                changes["result"] = end.payload["result"]
            if state is JobState.SUCCEEDED:
                changes["progress"] = 100.0
                self._finish(job_id, changes)
        if not changes:
            return
        try:
            self._store.update_job(job_id, **changes)
        except Conflict:  # already ended elsewhere (orphan sweep): keep that ending
            log.info("job already ended; its late end is ignored", extra={"job_id": job_id})

    def _finish(self, job_id: str, changes: dict[str, Any]) -> None:
        """Run the kind's finisher on a succeeded job; its failure turns the job ``failed``."""
        tenant_id = self._active.get(job_id)
        if tenant_id is None:
            return
        try:
            job = self._store.get_job(tenant_id, job_id)
        except NotFound:
            return
        finisher = self._finishers.get(job.spec.kind)
        if finisher is None or job.state is not JobState.RUNNING:
            return
        try:
            changes["result"] = finisher(job, dict(changes.get("result") or {}))
        except Exception as exc:  # any failure of the finisher fails the job, with its reason
            message = exc.message if isinstance(exc, AimaasError) else f"{type(exc).__name__}: {exc}"
            log.warning("job finisher failed: %s", message, extra={"job_id": job_id})
            changes.pop("progress", None)
            changes.update(state=JobState.FAILED, error=f"the job finished but its output could not be kept: {message}",
                           result=None)

    def _send_cancel(self, job_id: str) -> None:
        if job_id not in self._cancel_sent:
            self._cancel_sent.add(job_id)
            self._executor.cancel(job_id)

    def _send_requested_cancels(self) -> builtins.list[str]:
        sent: builtins.list[str] = []
        for job_id, tenant_id in list(self._active.items()):
            if job_id in self._cancel_sent:
                continue
            try:
                job = self._store.get_job(tenant_id, job_id)
            except NotFound:
                continue
            if job.cancel_requested_at is not None or job.state is not JobState.RUNNING:
                self._send_cancel(job_id)  # also stops a job the store already ended (e.g. failed as stale)
                sent.append(job_id)
        return sent

    def _start_jobs(self) -> builtins.list[str]:
        free = self._executor.capacity - len(self._executor.running())
        if free <= 0:
            return []
        started: builtins.list[str] = []
        for job in self._store.claim_jobs(self.owner, free, self.limit_per_tenant):
            self._active[job.id] = job.tenant_id
            try:
                self._executor.submit(job.id, job.spec)
            except AimaasError as error:
                self._active.pop(job.id, None)
                try:
                    self._store.update_job(job.id, state=JobState.FAILED, error=f"could not start: {error.message}")
                except AimaasError:
                    log.warning("could not mark unstartable job failed", extra={"job_id": job.id})
                continue
            started.append(job.id)
        return started

    def _beat(self) -> None:
        now = utcnow()
        if (now - self._last_beat).total_seconds() < self.heartbeat_stale_s / 4:
            return
        self._last_beat = now
        for job_id in list(self._active):
            try:
                self._store.update_job(job_id, heartbeat_at=now)
            except AimaasError:
                log.warning("could not refresh heartbeat", extra={"job_id": job_id})

    def _sweep(self, *, force: bool = False) -> builtins.list[str]:
        now = utcnow()
        if not force and (now - self._last_sweep).total_seconds() < self.heartbeat_stale_s:
            return []
        self._last_sweep = now
        stale_before = now - timedelta(seconds=self.heartbeat_stale_s)
        return self._store.fail_orphaned_jobs(stale_before=stale_before, reason=STALE_REASON)
