"""LocalExecutor: each job in its own worker process, at most ``workers`` at a time, on this machine.

Why one fresh process per job rather than long-lived pool workers: a job that leaks memory, leaves threads
behind, changes global state, segfaults or is killed takes nothing else down and cannot poison the next job;
cancelling by force is just killing that process (group); and "which job was that process running" never has
a stale answer. The cost, tens of milliseconds to start a process, is noise next to a training job.

Processes start with ``forkserver`` (``spawn`` where unavailable): never ``fork`` of the API process, which
would copy its threads' locks and its open sockets. One monitor thread in the API process owns every pipe:
it starts workers, reads their messages into the event buffer, notices exits, and escalates cancels, so
``submit``, ``cancel``, ``poll`` and ``running`` only take a lock for a moment.

Reliability:

* Death (``kill -9``, segfault, OOM killer): noticed at once through the process sentinel, at worst one
  ``heartbeat_s`` later; the job ends ``failed`` with e.g. "worker process exited with signal 9 (SIGKILL)".
* Cancel: the cooperative flag at once; SIGTERM to the job's process group after ``grace_s``; SIGKILL
  ``kill_after_s`` later. The job ends ``cancelled``.
* Death of the API process: each worker notices its pipe break and kills its own process group.
* A worker silent for ``stall_warning_s`` (holding the GIL in native code?) gets a warning log line.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import multiprocessing as mp
import os
import signal
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from aimaas.domain.jobs import JobEvent, JobSpec, JobState
from aimaas.errors import InvalidInput, ServiceUnavailable
from aimaas.executors import _worker
from aimaas.executors._exits import decide_end
from aimaas.executors._runtime import clean_end, clean_payload
from aimaas.executors.base import EventLog, Executor, check_submission

__all__ = ["LocalExecutor"]

MAX_MESSAGE = 8 << 20
_log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Run:
    job_id: str
    spec: JobSpec
    proc: BaseProcess | None = None
    conn: Connection | None = None
    conn_open: bool = False
    last_heard: float = 0.0
    stall_warned: bool = False
    cancel_at: float | None = None
    cancel_sent: bool = False
    signalled: signal.Signals | None = None  # the strongest signal sent so far
    closing: bool = False
    problem: str | None = None  # the worker broke the protocol
    end: dict[str, Any] | None = None


class LocalExecutor(Executor):
    """Options: ``workers`` (default 2), ``checkpoint_root`` (default: a new temporary directory, left in place),
    ``heartbeat_s`` (1.0), ``grace_s`` (2.0), ``kill_after_s`` (1.0), ``stall_warning_s`` (30.0),
    ``start_method`` (``forkserver`` or ``spawn``), ``preload`` (modules the fork server imports once, e.g.
    ``aimaas.training``; only before the fork server first starts; a module that fails to import is skipped),
    ``warm`` (start the fork server now, in the background, so the first job does not wait for the preload),
    ``allowed_modules`` (entrypoint packages; default any)."""

    name = "local"

    def __init__(
        self,
        workers: int = 2,
        *,
        checkpoint_root: str | Path | None = None,
        heartbeat_s: float = 1.0,
        grace_s: float = 2.0,
        kill_after_s: float = 1.0,
        stall_warning_s: float = 30.0,
        start_method: str | None = None,
        preload: Iterable[str] = (),
        warm: bool = False,
        allowed_modules: Iterable[str] | None = None,
    ) -> None:
        if workers < 1 or heartbeat_s <= 0 or grace_s < 0 or kill_after_s < 0:
            raise InvalidInput("workers must be >= 1, heartbeat_s > 0, grace_s and kill_after_s >= 0")
        method = start_method or ("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        if method not in ("forkserver", "spawn"):
            raise InvalidInput("start_method must be 'forkserver' or 'spawn'", param="start_method")
        self._mp: Any = mp.get_context(method)
        if method == "forkserver":  # modules the fork server imports once, so each job starts with them loaded
            self._mp.set_forkserver_preload(["__main__", "aimaas.executors._worker", *preload])
            if warm:
                from multiprocessing import forkserver

                threading.Thread(target=forkserver.ensure_running, name="aimaas-forkserver-warmup",
                                 daemon=True).start()
        self.capacity = workers
        self.checkpoint_root = Path(checkpoint_root or tempfile.mkdtemp(prefix="aimaas-checkpoints-")).resolve()
        self.heartbeat_s, self.grace_s, self.kill_after_s = heartbeat_s, grace_s, kill_after_s
        self.stall_warning_s = stall_warning_s
        self._allowed = self.allowed_modules = None if allowed_modules is None else tuple(allowed_modules)
        self._events = EventLog()
        self._lock = threading.Lock()
        self._pending: deque[_Run] = deque()
        self._runs: dict[str, _Run] = {}
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._atexit = functools.partial(_close_if_alive, weakref.ref(self))
        atexit.register(self._atexit)
        self._thread = threading.Thread(target=self._loop, name="aimaas-local-executor", daemon=True)
        self._thread.start()

    # -- the API side: quick, lock-protected ---------------------------------------------------------------
    def submit(self, job_id: str, spec: JobSpec) -> None:
        check_submission(job_id, spec, self._allowed)
        with self._lock:
            if self._closed:
                raise ServiceUnavailable("the executor is closed")
            self._events.open(job_id)
            self._pending.append(_Run(job_id, spec))
        self._wake()

    def cancel(self, job_id: str) -> None:
        with self._lock:
            for run in self._pending:
                if run.job_id == job_id:
                    self._pending.remove(run)
                    self._events.finish(job_id, JobState.CANCELLED, "cancelled before it started")
                    return
            run_ = self._runs.get(job_id)
            if run_ is not None and run_.cancel_at is None:
                run_.cancel_at = time.monotonic()
        self._wake()

    def poll(self) -> list[JobEvent]:
        return self._events.drain()

    def running(self) -> set[str]:
        with self._lock:
            return set(self._runs) | {r.job_id for r in self._pending}

    def close(self) -> None:
        """Fail jobs still waiting, stop running ones (SIGTERM, then SIGKILL after ``kill_after_s``), wait."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._pending:
                run = self._pending.popleft()
                self._events.finish(run.job_id, JobState.FAILED, "the executor shut down before the job started")
        self._wake()
        self._thread.join()
        atexit.unregister(self._atexit)
        runs = list(self._runs.values())
        for run in runs:
            run.closing = True
            self._signal(run, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_after_s
        for run in runs:
            if run.proc is not None:
                run.proc.join(max(0.0, deadline - time.monotonic()))
                if run.proc.exitcode is None:
                    self._signal(run, signal.SIGKILL)
                    run.proc.join(5)
            self._finish(run)
        with self._lock:  # under the lock: a late _wake must not write to a reused descriptor number
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_w = -1

    def _wake(self) -> None:
        with self._lock, contextlib.suppress(OSError):  # BlockingIOError: a wake-up is already pending
            if self._wake_w >= 0:
                os.write(self._wake_w, b"\0")

    # -- the monitor thread --------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
            try:
                self._step()
            except Exception:  # the monitor must outlive any bug, or every job would hang "running"
                _log.exception("local executor monitor step failed")
                time.sleep(self.heartbeat_s)

    def _step(self) -> None:
        self._start_pending()
        runs = list(self._runs.values())
        handles: list[Any] = [self._wake_r]
        handles += [r.conn for r in runs if r.conn is not None and r.conn_open]
        handles += [r.proc.sentinel for r in runs if r.proc is not None]
        ready = wait(handles, timeout=self._timeout(runs))
        if self._wake_r in ready:
            os.read(self._wake_r, 4096)
        now = time.monotonic()
        for run in runs:
            if run.conn is not None and run.conn in ready:
                self._read(run)
            if run.proc is None:
                continue
            if run.proc.exitcode is not None:
                self._finish(run)
                continue
            self._escalate(run, now)
            if not run.stall_warned and now - run.last_heard > self.stall_warning_s:
                run.stall_warned = True
                message = f"no heartbeat from the worker for {now - run.last_heard:.0f} s"
                self._events.emit(
                    run.job_id, "log", {"level": "warning", "message": message, "fields": {"source": "executor"}}
                )

    def _timeout(self, runs: list[_Run]) -> float:
        timeout, now = self.heartbeat_s, time.monotonic()
        for run in runs:
            if run.cancel_at is not None:
                for at in (run.cancel_at + self.grace_s, run.cancel_at + self.grace_s + self.kill_after_s):
                    if at > now:
                        timeout = min(timeout, at - now)
        return max(0.01, timeout)

    def _start_pending(self) -> None:
        while True:
            with self._lock:
                if not self._pending or len(self._runs) >= self.capacity:
                    return
                run = self._pending.popleft()
                self._runs[run.job_id] = run
            parent_conn, child_conn = self._mp.Pipe(duplex=True)
            try:
                args = (run.job_id, run.spec.to_dict(), child_conn, str(self.checkpoint_root), self.heartbeat_s)
                proc = self._mp.Process(target=_worker.main, args=args, name=f"aimaas-job-{run.job_id}")
                proc.start()
            except Exception as exc:
                parent_conn.close()
                child_conn.close()
                with self._lock:
                    del self._runs[run.job_id]
                self._events.finish(run.job_id, JobState.FAILED, f"could not start a worker process: {exc}")
                continue
            child_conn.close()  # the worker has its copy; ours would hide the worker's end of the pipe
            run.proc, run.conn, run.conn_open, run.last_heard = proc, parent_conn, True, time.monotonic()
            self._events.emit(run.job_id, "state", {"state": JobState.RUNNING.value, "pid": proc.pid})

    def _read(self, run: _Run) -> None:
        assert run.conn is not None
        try:
            while run.conn_open and run.conn.poll(0):
                self._ingest(run, run.conn.recv_bytes(MAX_MESSAGE))
        except EOFError:
            run.conn_open = False
        except OSError as exc:  # oversized or truncated message: the stream can no longer be trusted
            run.conn_open = False
            if run.proc is not None and run.proc.exitcode is None:
                run.problem = f"the worker broke the event protocol ({exc}) and was stopped"
                self._signal(run, signal.SIGKILL)

    def _ingest(self, run: _Run, data: bytes) -> None:
        run.last_heard, run.stall_warned = time.monotonic(), False
        try:
            message = json.loads(data)
            kind, payload = message.get("t"), message.get("p")
        except (ValueError, AttributeError):
            return
        if kind == "end":
            run.end = clean_end(payload)
        elif kind in ("log", "metric", "progress"):
            clean = clean_payload(kind, payload)
            if clean is not None:
                self._events.emit(run.job_id, kind, clean)

    def _escalate(self, run: _Run, now: float) -> None:
        if run.cancel_at is None:
            return
        if not run.cancel_sent and run.conn is not None and run.conn_open:
            run.cancel_sent = True
            with contextlib.suppress(OSError):
                run.conn.send_bytes(b"cancel")
        if now >= run.cancel_at + self.grace_s + self.kill_after_s:
            self._signal(run, signal.SIGKILL)
        elif now >= run.cancel_at + self.grace_s:
            self._signal(run, signal.SIGTERM)

    def _signal(self, run: _Run, sig: signal.Signals) -> None:
        """Signal the job's process group (the worker leads one), or the worker alone before it made it."""
        strength = {signal.SIGTERM: 1, signal.SIGKILL: 2}
        if run.proc is None or run.proc.pid is None:
            return
        if run.signalled is not None and strength[sig] <= strength[run.signalled]:
            return
        run.signalled, pid = sig, run.proc.pid
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError, AttributeError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _finish(self, run: _Run) -> None:
        if run.conn is not None:
            if run.conn_open:
                self._read(run)
            run.conn.close()
        code = run.proc.exitcode if run.proc is not None else None
        if run.proc is not None and run.proc.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError, AttributeError):
                os.killpg(run.proc.pid, signal.SIGKILL)  # whatever the job started dies with it
        state, reason, extra = decide_end(
            run.end,
            exit_code=code,
            cancel_requested=run.cancel_at is not None,
            signalled=run.signalled.name if run.signalled else None,
            closing=run.closing,
            problem=run.problem,
        )
        with self._lock:
            self._runs.pop(run.job_id, None)
        self._events.finish(run.job_id, state, reason, **extra)
        if run.proc is not None and code is not None:
            run.proc.close()


def _close_if_alive(ref: weakref.ReferenceType[LocalExecutor]) -> None:
    executor = ref()
    if executor is not None:
        executor.close()
