"""The Executor interface, the registry of executors by name, and the event log every executor shares.

An executor runs :class:`~aimaas.domain.jobs.JobSpec` s somewhere else than the caller's request path and
reports what happens as :class:`~aimaas.domain.jobs.JobEvent` s. It knows nothing of training: it imports
the spec's ``entrypoint`` (``"module:function"``) where the job runs and calls
``function(params, ctx) -> dict``, where ``ctx`` is a :class:`~aimaas.domain.jobs.JobContext`.

Contract (checked by :class:`aimaas.testing.executor_contract.ExecutorContract` on every backend):

* ``submit`` accepts a job and returns at once (``inline`` is the exception: it runs the job inside
  ``submit``). A job waits inside the executor while ``capacity`` jobs are running.
* Every submitted job ends with exactly one terminal ``state`` event (``succeeded``/``failed``/``cancelled``),
  preceded by a ``running`` state event if it started. Per job, ``seq`` is 1, 2, 3… with no gap and no
  repeat; events of a job arrive in the order the job produced them.
* ``poll`` returns the events produced since the previous ``poll`` and never blocks.
* ``cancel`` sets the cooperative flag (``ctx.cancelled()``); backends that can, then stop the job by force.
  Cancelling an unknown or finished job does nothing.
* ``close`` stops everything; jobs still running end with ``failed``; ``poll`` still returns their events.
* A job id is run at most once per executor: use a new job (with ``resume_from``) to run again.

Executors register by name. ``create_executor("local", workers=4)`` imports the backend's module only
when asked, so a backend with heavy dependencies costs nothing until used. The Ray backend will plug in
the same way: ``register_executor("ray", "aimaas.executors.ray:RayExecutor")``, a module that imports
``ray`` inside ``RayExecutor.__init__`` and maps submit/cancel/poll onto Ray tasks (``ray.cancel``) and an
actor-side event queue; the container picks it when ``AIMAAS_EXECUTOR`` is ``ray://…``.
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar

from aimaas.domain.jobs import EventType, JobContext, JobEvent, JobSpec, JobState, validate_job_id
from aimaas.errors import Conflict, InvalidInput

__all__ = [
    "EventLog",
    "Executor",
    "JobCancelled",
    "JobContext",
    "check_submission",
    "create_executor",
    "executor_names",
    "register_executor",
]

LAST_LOGS = 20  # log messages kept per job for the terminal event of a failure


class JobCancelled(BaseException):  # like KeyboardInterrupt: a signal to stop, not an error
    """Raised inside a job to stop it because it was cancelled (``ctx.raise_if_cancelled()``, or SIGTERM in a
    local worker). It derives from BaseException so that ``except Exception`` in job code does not swallow it."""


class Executor(ABC):
    """Runs jobs and reports their events. See the module docstring for the contract."""

    name: ClassVar[str] = ""
    #: How many jobs run at the same time; the scheduler's free slots are ``capacity - len(running())``.
    capacity: int = 1
    #: Module prefixes a job's entrypoint may come from (None: any); services validate against it before queueing.
    allowed_modules: tuple[str, ...] | None = None

    @abstractmethod
    def submit(self, job_id: str, spec: JobSpec) -> None:
        """Accept a job. Raises InvalidInput for a bad id or a refused entrypoint, Conflict if the id is active,
        ServiceUnavailable after ``close``."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Ask a job to stop; it ends with a ``cancelled`` event (or with its own end if that came first)."""

    @abstractmethod
    def poll(self) -> list[JobEvent]:
        """Events produced since the previous call, in order. Never blocks."""

    @abstractmethod
    def running(self) -> set[str]:
        """Ids of jobs accepted and not yet finished (running or waiting for a slot)."""

    @abstractmethod
    def close(self) -> None:
        """Stop every job and release workers. Idempotent."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_submission(job_id: str, spec: JobSpec, allowed_modules: Iterable[str] | None) -> None:
    """Shared ``submit`` checks: a safe job id, and (when configured) an entrypoint inside an allowed package."""
    validate_job_id(job_id)
    if not isinstance(spec, JobSpec):
        raise InvalidInput("spec must be a JobSpec", param="spec")
    if allowed_modules is not None:
        module = spec.module
        if not any(module == m or module.startswith(m + ".") for m in allowed_modules):
            raise InvalidInput(f"entrypoint module {module!r} is not in the allowed packages", param="entrypoint")


class EventLog:
    """Thread-safe buffer of events with per-job ``seq`` numbering and the last log lines of each job.

    ``open`` a job before its first event; ``finish`` emits its terminal event and forgets it; events for a
    job that is not open (unknown or finished) are dropped, so a job can never have two terminal events.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer: list[JobEvent] = []
        self._seq: dict[str, int] = {}
        self._tails: dict[str, deque[str]] = {}

    def open(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._seq:
                raise Conflict(f"job {job_id} is already submitted and not finished", code="job_active")
            self._seq[job_id] = 0
            self._tails[job_id] = deque(maxlen=LAST_LOGS)

    def is_open(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._seq

    def emit(self, job_id: str, type_: EventType, payload: dict[str, Any], when: datetime | None = None) -> bool:
        """Append an event; False if the job is not open."""
        with self._lock:
            return self._append(job_id, type_, payload, when)

    def finish(self, job_id: str, state: JobState, reason: str | None = None, **extra: Any) -> bool:
        """Emit the terminal ``state`` event (with ``last_logs`` unless it succeeded) and close the job."""
        with self._lock:
            if job_id not in self._seq:
                return False
            payload: dict[str, Any] = {"state": state.value, "reason": reason, "result": None}
            payload.update(extra)
            if state is not JobState.SUCCEEDED:
                payload.setdefault("last_logs", list(self._tails[job_id]))
            self._append(job_id, "state", payload, None)
            del self._seq[job_id], self._tails[job_id]
            return True

    def drain(self) -> list[JobEvent]:
        with self._lock:
            out, self._buffer = self._buffer, []
            return out

    def _append(self, job_id: str, type_: EventType, payload: dict[str, Any], when: datetime | None) -> bool:
        if job_id not in self._seq:
            return False
        self._seq[job_id] += 1
        if type_ == "log":
            self._tails[job_id].append(str(payload.get("message", "")))
        event = JobEvent(job_id, self._seq[job_id], when or datetime.now(UTC), type_, payload)
        self._buffer.append(event)
        return True


_FACTORIES: dict[str, str | Callable[..., Executor]] = {
    "inline": "aimaas.executors.inline:InlineExecutor",
    "local": "aimaas.executors.local:LocalExecutor",
}


def register_executor(name: str, factory: str | Callable[..., Executor]) -> None:
    """Register a backend: a callable returning an Executor, or ``"module:attr"`` imported on first use."""
    _FACTORIES[name] = factory


def executor_names() -> list[str]:
    return sorted(_FACTORIES)


def create_executor(name: str, **options: Any) -> Executor:
    """Build the executor registered as ``name`` with backend-specific ``options``."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        known = ", ".join(executor_names())
        raise InvalidInput(f"unknown executor {name!r}; known executors: {known}", param="executor") from None
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory(**options)
