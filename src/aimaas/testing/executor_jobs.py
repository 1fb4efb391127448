"""Tiny job functions for :mod:`aimaas.testing.executor_contract`. They live in the package (not in tests/) so
that worker processes started with ``spawn`` or ``forkserver`` can import them by ``module:function``.

Jobs that must be observed mid-run touch ``params["marker"]`` (a file path) once they are running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aimaas.domain.jobs import JobContext

__all__ = [
    "chatty",
    "checkpointing",
    "cooperative",
    "exit_hard",
    "fail",
    "ignore_sigterm",
    "not_a_dict",
    "segfault",
    "sleep_for",
    "spawn_grandchild",
    "stuck",
    "succeed",
]

NOT_CALLABLE = 42


def _mark(params: dict[str, Any], ctx: JobContext) -> None:
    ctx.log("running", pid=os.getpid())
    if params.get("marker"):
        Path(params["marker"]).write_text(str(os.getpid()))


def succeed(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Logs, three metrics with epoch labels, progress 0 → 50 → 100 (and an out-of-range 150), then a result."""
    ctx.log("starting", level="info", rows=3)
    ctx.progress(0)
    for step in range(3):
        ctx.metric("loss", 1.0 / (step + 1), step=step, epoch=step // 2)
    ctx.progress(50)
    ctx.log("halfway", level="debug")
    ctx.progress(150)
    return {"echo": params, "steps": 3}


def fail(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    for i in range(30):
        ctx.log(f"line {i}")
    ctx.log("about to fail")
    raise ValueError(params.get("message", "boom"))


def not_a_dict(params: dict[str, Any], ctx: JobContext) -> Any:
    return [1, 2, 3]


def cooperative(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Loops until ``ctx.cancelled()``, then returns a partial result."""
    _mark(params, ctx)
    deadline = time.monotonic() + params.get("seconds", 30)
    loops = 0
    while not ctx.cancelled() and time.monotonic() < deadline:
        time.sleep(0.02)
        loops += 1
    return {"loops": loops}


def stuck(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Never looks at ``ctx.cancelled()``: sits in ``time.sleep``."""
    _mark(params, ctx)
    time.sleep(params.get("seconds", 60))
    return {}


def ignore_sigterm(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Ignores SIGTERM too: only SIGKILL stops it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _mark(params, ctx)
    deadline = time.monotonic() + params.get("seconds", 60)
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return {}


def sleep_for(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    _mark(params, ctx)
    time.sleep(params.get("seconds", 0.3))
    return {"slept": params.get("seconds", 0.3)}


def chatty(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Emits ``n`` logs and ``n`` metrics as fast as it can."""
    n = params.get("n", 1000)
    for i in range(n):
        ctx.log("line", i=i)
        ctx.metric("value", i, step=i)
    return {"n": n}


def checkpointing(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Continues a counter kept in ``checkpoint_dir/state.json``."""
    path = ctx.checkpoint_dir / "state.json"
    start = json.loads(path.read_text())["step"] if path.exists() else 0
    end = start + params.get("steps", 5)
    path.write_text(json.dumps({"step": end}))
    return {"start": start, "end": end, "dir": str(ctx.checkpoint_dir)}


def exit_hard(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    ctx.log("exiting without a word")
    os._exit(params.get("code", 3))


def segfault(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    import ctypes
    import faulthandler

    faulthandler.disable()  # keep the test output quiet
    ctx.log("about to crash")
    ctypes.string_at(0)
    return {}


def spawn_grandchild(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Starts a ``sleep`` subprocess, writes its pid to the marker, then waits without checking for cancel."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ctx.log("grandchild", pid=child.pid)
    Path(params["marker"]).write_text(str(child.pid))
    time.sleep(params.get("seconds", 60))
    return {}
