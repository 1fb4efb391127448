"""The inside of a local worker process: one job, then exit.

Protocol on the duplex pipe (``multiprocessing.Pipe``), worker → executor, one JSON object per message (never
pickle: the API process must not unpickle what a worker sends): ``{"t": "hb"}`` every heartbeat,
``{"t": "log"|"metric"|"progress", "ts", "p": payload}``, and last ``{"t": "end", "ts", "p": end payload}``.
Executor → worker: ``b"cancel"``.

* The worker makes itself a process-group leader (``setsid``), so the executor can signal the job *and* any
  process the job starts, and nothing it starts outlives it.
* A thread sends heartbeats and listens for ``cancel`` (which sets ``ctx.cancelled()``). When the pipe breaks,
  the API process is gone: the worker kills its process group rather than run on unobserved.
* SIGTERM sets the flag and raises :class:`JobCancelled` in the job (so ``time.sleep`` and most blocking
  calls end at once and ``finally`` blocks run); never in the middle of writing a message.
* Sends are synchronous: an event the job emitted is in the pipe before ``ctx.log`` returns, so it survives a
  ``kill -9`` that comes after.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

from aimaas.domain.jobs import EventType, JobSpec
from aimaas.executors._runtime import run_job
from aimaas.executors.base import JobCancelled

__all__ = ["main"]

SIGTERM_REASON = "stopped by SIGTERM after the cancel grace period"


class _Channel:
    """Serialised sends from two threads, and SIGTERM deferred while the main thread is writing."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._main = threading.main_thread()
        self.main_busy = False
        self.term_pending = False

    def emit(self, type_: EventType, payload: dict[str, Any]) -> None:
        self.send({"t": type_, "ts": time.time(), "p": payload})

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, default=str).encode()
        is_main = threading.current_thread() is self._main
        if is_main:
            self.main_busy = True
        try:
            with self._lock:
                self._conn.send_bytes(data)
        finally:
            if is_main:
                self.main_busy = False
        if is_main and self.term_pending:
            self.term_pending = False
            raise JobCancelled(SIGTERM_REASON)


def _own_process_group() -> bool:
    try:
        os.setsid()
    except (AttributeError, OSError):
        return False
    return True


def _orphaned(own_group: bool) -> None:
    """The API process is gone: stop the job and everything it started."""
    if own_group:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(70)


def _io_loop(
    conn: Connection,
    channel: _Channel,
    flag: threading.Event,
    stop: threading.Event,
    heartbeat_s: float,
    own_group: bool,
) -> None:
    next_beat = 0.0
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                channel.send({"t": "hb"})
                next_beat = now + heartbeat_s
            if conn.poll(max(0.0, next_beat - time.monotonic())) and conn.recv_bytes(64) == b"cancel":
                flag.set()
    except (EOFError, OSError):
        if not stop.is_set():
            _orphaned(own_group)


def main(job_id: str, spec_data: dict[str, Any], conn: Connection, checkpoint_root: str, heartbeat_s: float) -> None:
    """Process target: run one job, report its end, exit (``os._exit``: threads the job left do not hold the
    slot)."""
    own_group = _own_process_group()
    faulthandler.enable()  # a segfault prints the Python stack to the worker's stderr
    channel = _Channel(conn)
    flag, stop = threading.Event(), threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        flag.set()
        if channel.main_busy:
            channel.term_pending = True
            return
        raise JobCancelled(SIGTERM_REASON)

    signal.signal(signal.SIGTERM, on_sigterm)
    threading.Thread(
        target=_io_loop, args=(conn, channel, flag, stop, heartbeat_s, own_group), name="aimaas-job-io", daemon=True
    ).start()
    try:
        end = run_job(job_id, JobSpec.from_dict(spec_data), Path(checkpoint_root), channel.emit, flag)
    except JobCancelled as exc:  # SIGTERM outside the job function (while loading or preparing)
        end = {"state": "cancelled", "reason": str(exc), "result": None}
    except BaseException as exc:
        end = {"state": "failed", "reason": f"worker error: {type(exc).__name__}: {exc}", "result": None}
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the job is over; SIGKILL still ends us if the send hangs
    with contextlib.suppress(OSError, JobCancelled):
        channel.send({"t": "end", "ts": time.time(), "p": end})
    stop.set()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    os._exit(0)
