"""The persisted job: what the metadata store keeps about one run of a :class:`~aimaas.domain.jobs.JobSpec`.

A :class:`Job` is a frozen snapshot. Stores create and update it (``create_job``, ``claim_jobs``,
``update_job``…); services never mutate one, they ask the store for the next snapshot. State changes always
go through :func:`~aimaas.domain.jobs.check_transition`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aimaas.domain.ids import new_id
from aimaas.domain.jobs import JobSpec, JobState, validate_job_id
from aimaas.domain.models import utcnow
from aimaas.errors import InvalidInput

__all__ = ["MAX_IDEMPOTENCY_KEY", "Job"]

MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True, slots=True)
class Job:
    """One job as stored.

    * ``id`` doubles as the executor's job id and the checkpoint directory name (see ``validate_job_id``).
    * ``tenant_id`` and ``priority`` repeat ``spec.tenant_id`` / ``spec.priority`` (they must agree): they are
      the columns the scheduler and the tenant-scoped reads use.
    * ``progress`` is 0–100; ``error`` is the sentence shown to users when the job failed or was cancelled;
      ``result`` is the job function's returned dict once it succeeded.
    * ``idempotency_key``: a retried create with the same key (same tenant) returns this job.
    * ``owner`` is the server instance that claimed the job; ``heartbeat_at`` is the last time that server
      said it is still looking after it. ``cancel_requested_at`` is set while a cancel is pending.
    """

    id: str
    tenant_id: str
    spec: JobSpec
    state: JobState
    created_at: datetime
    priority: int = 0
    progress: float = 0.0
    error: str | None = None
    result: dict[str, Any] | None = None
    idempotency_key: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    owner: str | None = None
    heartbeat_at: datetime | None = None

    def __post_init__(self) -> None:
        validate_job_id(self.id, "id")
        if not isinstance(self.spec, JobSpec):
            raise InvalidInput("spec must be a JobSpec", param="spec")
        if self.spec.tenant_id != self.tenant_id:
            raise InvalidInput("spec.tenant_id must be the job's tenant_id", param="tenant_id")
        if self.spec.priority != self.priority:
            raise InvalidInput("spec.priority must be the job's priority", param="priority")
        object.__setattr__(self, "state", JobState(self.state))
        if not isinstance(self.progress, int | float) or not math.isfinite(self.progress):
            raise InvalidInput("progress must be a finite number", param="progress")
        if self.idempotency_key is not None and not (0 < len(self.idempotency_key) <= MAX_IDEMPOTENCY_KEY):
            raise InvalidInput(f"idempotency key must be 1-{MAX_IDEMPOTENCY_KEY} characters", param="idempotency_key")

    @property
    def kind(self) -> str:
        return self.spec.kind

    @classmethod
    def new(
        cls,
        spec: JobSpec,
        *,
        idempotency_key: str | None = None,
        job_id: str | None = None,
        now: datetime | None = None,
    ) -> Job:
        """A fresh ``queued`` job for ``spec`` (a new time-ordered id unless ``job_id`` is given)."""
        return cls(
            id=job_id or new_id("job"),
            tenant_id=spec.tenant_id,
            spec=spec,
            state=JobState.QUEUED,
            created_at=now or utcnow(),
            priority=spec.priority,
            idempotency_key=idempotency_key,
        )
