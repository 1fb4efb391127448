"""Jobs: states and their allowed transitions, the spec an executor runs, the events it reports, and the
pure scheduling decision that picks which queued jobs start next.

Everything here is pure Python and unit-tested like a table: the service applies these rules, the executors
(:mod:`aimaas.executors`) produce the events, and the stores persist them.

Life cycle::

    queued ──► running ──► succeeded
       │          ├──────► failed      (exception, worker death, executor shut down)
       │          └──────► cancelled   (cancel requested and the worker stopped)
       ├─────────────────► cancelled   (cancelled before it started)
       └─────────────────► failed      (could not be started)

Terminal states never change again; to run a job again, create a new job with ``resume_from`` set.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol

from aimaas.errors import Conflict, InvalidInput

__all__ = [
    "EVENT_TYPES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "EventType",
    "JobContext",
    "JobEvent",
    "JobSpec",
    "JobState",
    "QueuedJob",
    "check_transition",
    "is_terminal",
    "pick_next",
    "validate_job_id",
]


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: The allowed transitions, as data. A state maps to the states it may move to; terminal states map to nothing.
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {
        JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
        JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}),
        JobState.SUCCEEDED: frozenset(),
        JobState.FAILED: frozenset(),
        JobState.CANCELLED: frozenset(),
    }
)

TERMINAL_STATES: frozenset[JobState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def _state(value: JobState | str, param: str) -> JobState:
    try:
        return JobState(value)
    except ValueError:
        known = ", ".join(s.value for s in JobState)
        raise InvalidInput(f"unknown job state {value!r}; expected one of {known}", param=param) from None


def is_terminal(state: JobState | str) -> bool:
    """True for ``succeeded``, ``failed`` and ``cancelled``: states a job never leaves."""
    return _state(state, "state") in TERMINAL_STATES


def check_transition(old: JobState | str, new: JobState | str) -> JobState:
    """Return ``new`` as a :class:`JobState` if a job may move from ``old`` to it; otherwise raise
    :class:`~aimaas.errors.Conflict` (``code="invalid_job_transition"``) saying why.

    Moving to the same state is a conflict too: callers that want idempotence check for it first.
    """
    before, after = _state(old, "old"), _state(new, "new")
    allowed = TRANSITIONS[before]
    if after in allowed:
        return after
    if not allowed:
        msg = f"the job is already {before} and can no longer change (requested: {after})"
    else:
        options = " or ".join(sorted(s.value for s in allowed))
        msg = f"a {before} job cannot become {after}; it can only become {options}"
    raise Conflict(msg, code="invalid_job_transition")


_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ENTRYPOINT_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def validate_job_id(value: str, param: str = "job_id") -> str:
    """A job id doubles as a directory name (its checkpoint directory), so it must be a safe path segment:
    1–128 characters of letters, digits, ``_ . -``, starting with a letter or digit. Raises InvalidInput."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise InvalidInput(
            f"{param} must be 1-128 letters, digits, '_', '.' or '-' starting with a letter or digit; got {value!r}",
            param=param,
        )
    return value


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What to run. Built by the service, never taken from a request as is: ``entrypoint`` is code.

    * ``kind``: what the job is for (``train``, ``tune``, ``evaluate``…), for listings and metering.
    * ``entrypoint``: ``"package.module:function"``; the function is ``run(params, ctx) -> dict``.
    * ``params``: JSON-safe dict given to the function (the function receives a JSON copy, so tuples become
      lists); treat it as read-only.
    * ``resume_from``: id of an earlier job whose checkpoint directory this job starts from.
    """

    kind: str
    entrypoint: str
    params: dict[str, Any]
    tenant_id: str
    priority: int = 0
    resume_from: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind.strip():
            raise InvalidInput("kind must be a non-empty string", param="kind")
        if not isinstance(self.entrypoint, str) or not _ENTRYPOINT_RE.match(self.entrypoint):
            raise InvalidInput(
                f"entrypoint must look like 'package.module:function'; got {self.entrypoint!r}", param="entrypoint"
            )
        if not isinstance(self.tenant_id, str) or not self.tenant_id:
            raise InvalidInput("tenant_id must be a non-empty string", param="tenant_id")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise InvalidInput(f"priority must be an integer; got {self.priority!r}", param="priority")
        if self.resume_from is not None:
            validate_job_id(self.resume_from, "resume_from")
        if not isinstance(self.params, dict):
            raise InvalidInput("params must be a JSON object", param="params")
        try:
            json.dumps(self.params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"params must be JSON-safe: {exc}", param="params") from None

    @property
    def module(self) -> str:
        return self.entrypoint.partition(":")[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "entrypoint": self.entrypoint,
            "params": self.params,
            "tenant_id": self.tenant_id,
            "priority": self.priority,
            "resume_from": self.resume_from,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSpec:
        return cls(
            kind=data["kind"],
            entrypoint=data["entrypoint"],
            params=data["params"],
            tenant_id=data["tenant_id"],
            priority=data.get("priority", 0),
            resume_from=data.get("resume_from"),
        )


EventType = Literal["log", "metric", "progress", "state"]
EVENT_TYPES: frozenset[str] = frozenset({"log", "metric", "progress", "state"})


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One thing a job reported. ``seq`` starts at 1 for each job and grows by one per event, so
    ``(job_id, seq)`` is unique and a gap or a repeat is a bug.

    Payloads (all JSON-safe):

    * ``log``: ``{"level", "message", "fields"}``
    * ``metric``: ``{"name", "value", "step", "labels"}`` (labels such as ``epoch`` or ``trial``)
    * ``progress``: ``{"progress"}``, a float from 0 to 100
    * ``state``: ``{"state", ...}``. ``running`` may carry ``pid``. Terminal states carry ``reason`` (a
      sentence for users, None on success), ``result`` (the job's output dict or None), and, on failure,
      ``error_type``, ``traceback``, ``exit_code``/``signal`` where a process died, and ``last_logs``
      (the last log messages before the end).
    """

    job_id: str
    seq: int
    time: datetime
    type: EventType
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise InvalidInput(f"unknown event type {self.type!r}", param="type")

    @property
    def terminal_state(self) -> JobState | None:
        """The terminal state this event reports, or None."""
        if self.type != "state":
            return None
        state = JobState(self.payload["state"])
        return state if state in TERMINAL_STATES else None


class JobContext(Protocol):
    """What a job function receives as ``ctx``: ``def run(params: dict, ctx: JobContext) -> dict``.

    Defined here (not in executors) so job code, such as the training runner, can be typed against it
    without importing an executor.
    """

    @property
    def job_id(self) -> str: ...

    @property
    def checkpoint_dir(self) -> Path: ...

    def log(self, msg: str, /, *, level: str = "info", **fields: Any) -> None: ...

    def metric(self, name: str, value: float, step: int | None = None, **labels: Any) -> None: ...

    def progress(self, pct: float) -> None: ...

    def cancelled(self) -> bool: ...

    def raise_if_cancelled(self) -> None: ...


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """The facts :func:`pick_next` needs about a queued job."""

    job_id: str
    tenant_id: str
    priority: int
    created_at: datetime


def pick_next(
    queued: Iterable[QueuedJob],
    running_per_tenant: Mapping[str, int],
    limit_per_tenant: int | None,
    free_slots: int,
) -> list[str]:
    """Which queued jobs to start now, in start order.

    Highest ``priority`` first, then oldest ``created_at``, then smallest id (so the answer is deterministic).
    A tenant never has more than ``limit_per_tenant`` jobs running (``None``: no limit); a tenant at its limit
    is skipped, it does not block the others. At most ``free_slots`` ids are returned.
    """
    if limit_per_tenant is not None and limit_per_tenant < 1:
        raise InvalidInput("limit_per_tenant must be at least 1 (or None for no limit)", param="limit_per_tenant")
    if free_slots <= 0:
        return []
    counts = dict(running_per_tenant)
    chosen: list[str] = []
    seen: set[str] = set()
    for job in sorted(queued, key=lambda j: (-j.priority, j.created_at, j.job_id)):
        if job.job_id in seen:
            continue
        if limit_per_tenant is not None and counts.get(job.tenant_id, 0) >= limit_per_tenant:
            continue
        seen.add(job.job_id)
        chosen.append(job.job_id)
        counts[job.tenant_id] = counts.get(job.tenant_id, 0) + 1
        if len(chosen) == free_slots:
            break
    return chosen
