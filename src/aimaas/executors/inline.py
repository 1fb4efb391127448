"""InlineExecutor: runs each job inside ``submit``, in the calling thread. For tests and tiny deployments.

Same events as the other executors (``running``, the job's logs/metrics/progress, one terminal state), but:

* ``submit`` returns only when the job has ended, and one job runs at a time (``capacity`` 1);
* ``cancel`` (from another thread) only sets the cooperative flag: a job that never checks
  ``ctx.cancelled()`` runs to its end;
* a job that crashes the interpreter crashes the caller. Untrusted or heavy work belongs in ``local``.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aimaas.domain.jobs import JobEvent, JobSpec, JobState
from aimaas.errors import Conflict, ServiceUnavailable
from aimaas.executors._runtime import run_job
from aimaas.executors.base import EventLog, Executor, check_submission

__all__ = ["InlineExecutor"]


class InlineExecutor(Executor):
    """Options: ``checkpoint_root`` (default: a new temporary directory, left in place) and
    ``allowed_modules`` (packages an entrypoint may come from; default: any)."""

    name = "inline"
    capacity = 1

    def __init__(self, *, checkpoint_root: str | Path | None = None, allowed_modules: Iterable[str] | None = None):
        root = checkpoint_root or tempfile.mkdtemp(prefix="aimaas-checkpoints-")
        self.checkpoint_root = Path(root).resolve()
        self._allowed = self.allowed_modules = None if allowed_modules is None else tuple(allowed_modules)
        self._events = EventLog()
        self._lock = threading.Lock()
        self._current: tuple[str, threading.Event] | None = None
        self._closed = False

    def submit(self, job_id: str, spec: JobSpec) -> None:
        check_submission(job_id, spec, self._allowed)
        flag = threading.Event()
        with self._lock:
            if self._closed:
                raise ServiceUnavailable("the executor is closed")
            if self._current is not None:
                raise Conflict("the inline executor runs one job at a time", code="executor_busy")
            self._events.open(job_id)
            self._current = (job_id, flag)
        try:
            self._events.emit(job_id, "state", {"state": JobState.RUNNING.value})

            def emit(type_: Any, payload: dict[str, Any]) -> None:
                self._events.emit(job_id, type_, payload)

            end = run_job(job_id, spec, self.checkpoint_root, emit, flag)
            self._events.finish(job_id, JobState(end.pop("state")), **end)
        except BaseException as exc:  # KeyboardInterrupt and the like: end the job, then let it through
            self._events.finish(job_id, JobState.FAILED, f"interrupted: {type(exc).__name__}")
            raise
        finally:
            with self._lock:
                self._current = None

    def cancel(self, job_id: str) -> None:
        with self._lock:
            if self._current is not None and self._current[0] == job_id:
                self._current[1].set()

    def poll(self) -> list[JobEvent]:
        return self._events.drain()

    def running(self) -> set[str]:
        with self._lock:
            return {self._current[0]} if self._current else set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._current is not None:
                self._current[1].set()
