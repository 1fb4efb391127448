"""What runs around a job function, shared by the inline executor and the local worker process so that both
give the same events: the job context, entrypoint loading, checkpoint preparation, the end payload, and the
cleaning of payloads that come from a worker (which the API process does not trust)."""

from __future__ import annotations

import importlib
import json
import math
import shutil
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aimaas.domain.jobs import TERMINAL_STATES, EventType, JobSpec, JobState, validate_job_id
from aimaas.executors.base import JobCancelled

__all__ = [
    "RunContext",
    "clean_end",
    "clean_payload",
    "jsonable",
    "load_entrypoint",
    "prepare_checkpoint_dir",
    "run_job",
]

Emit = Callable[[EventType, dict[str, Any]], None]

LEVELS = frozenset({"debug", "info", "warning", "error"})
MAX_TEXT = 8192  # characters of a log message or a reason
MAX_FIELDS = 16384  # JSON bytes of a log's fields or a metric's labels
MAX_RESULT = 1 << 20  # JSON bytes of a job's result
MAX_TRACEBACK = 8192


def jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-safe copy: dict keys become strings, tuples lists, numpy scalars numbers, anything else ``str``."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if _depth > 32:
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, _depth + 1) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return jsonable(item(), _depth + 1)
    return str(value)


def _bounded(value: dict[str, Any]) -> dict[str, Any]:
    return value if len(json.dumps(value, default=str)) <= MAX_FIELDS else {"truncated": True}


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RunContext:
    """The :class:`~aimaas.domain.jobs.JobContext` a job function receives. ``emit`` carries each event to the
    executor (directly for inline, over the worker's pipe for local); ``cancel_flag`` is set on cancel."""

    def __init__(self, job_id: str, checkpoint_dir: Path, emit: Emit, cancel_flag: threading.Event) -> None:
        self._job_id = job_id
        self._checkpoint_dir = checkpoint_dir
        self._emit = emit
        self._flag = cancel_flag
        self._last_progress: float | None = None

    @property
    def job_id(self) -> str:
        return self._job_id

    @property
    def checkpoint_dir(self) -> Path:
        """A directory kept after the job ends; a job started with ``resume_from`` finds a copy of it."""
        return self._checkpoint_dir

    def log(self, msg: str, /, *, level: str = "info", **fields: Any) -> None:
        """A structured log line; ``fields`` are made JSON-safe and dropped if they exceed 16 KiB."""
        self._emit(
            "log",
            {
                "level": level if level in LEVELS else "info",
                "message": _text(msg),
                "fields": _bounded(jsonable(fields)),
            },
        )

    def metric(self, name: str, value: float, step: int | None = None, **labels: Any) -> None:
        """A number for ``name`` at ``step``; ``labels`` say where (``epoch=``, ``trial=``, ``split=``)."""
        if not isinstance(name, str) or not name:
            raise ValueError("a metric name must be a non-empty string")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise ValueError(f"metric step must be an integer or None; got {step!r}")
        self._emit(
            "metric",
            {"name": _text(name, 200), "value": float(value), "step": step, "labels": _bounded(jsonable(labels))},
        )

    def progress(self, pct: float) -> None:
        """Progress from 0 to 100 (clamped). Repeating the last value sends nothing."""
        value = float(pct)
        if not math.isfinite(value):
            raise ValueError(f"progress must be a finite number; got {pct!r}")
        value = min(100.0, max(0.0, value))
        if value != self._last_progress:
            self._last_progress = value
            self._emit("progress", {"progress": value})

    def cancelled(self) -> bool:
        """True once the job was asked to stop: check it between steps and return (or raise) soon."""
        return self._flag.is_set()

    def raise_if_cancelled(self) -> None:
        if self._flag.is_set():
            raise JobCancelled("cancelled by request")


def load_entrypoint(entrypoint: str) -> Callable[..., Any]:
    module_name, _, attr = entrypoint.partition(":")
    fn = getattr(importlib.import_module(module_name), attr)
    if not callable(fn):
        raise TypeError(f"{entrypoint} is not callable")
    return fn  # type: ignore[no-any-return]


def prepare_checkpoint_dir(root: Path, job_id: str, resume_from: str | None) -> tuple[Path, str | None]:
    """Create ``root/<job_id>`` (0700). With ``resume_from``, copy that job's directory into a new, empty one
    (a copy, not a link: the earlier checkpoint stays intact for another try). Returns the path and a note."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = root / validate_job_id(job_id)
    target.mkdir(mode=0o700, exist_ok=True)
    if resume_from is None:
        return target, None
    source = root / validate_job_id(resume_from, "resume_from")
    if not source.is_dir():
        return target, f"job {resume_from} left no checkpoint; starting from scratch"
    if any(target.iterdir()):
        return target, f"checkpoint directory already holds files; not copying job {resume_from}'s again"
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    count = sum(1 for p in target.rglob("*") if p.is_file())
    return target, f"resuming from the checkpoint of job {resume_from} ({count} files)"


def _failure(exc: BaseException, prefix: str = "") -> dict[str, Any]:
    detail = str(exc)
    reason = f"{prefix}{type(exc).__name__}: {detail}" if detail else f"{prefix}{type(exc).__name__}"
    tb = "".join(traceback.format_exception(exc, limit=-20))
    return {
        "state": "failed",
        "reason": _text(reason),
        "result": None,
        "error_type": type(exc).__name__,
        "traceback": tb[-MAX_TRACEBACK:],
    }


def _strict(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    raise TypeError(f"a value of type {type(value).__name__} is not JSON-safe")


def _check_result(result: Any) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(result, dict):
        return None, f"the job returned {type(result).__name__}; a job must return a dict"
    try:
        text = json.dumps(result, default=_strict)
    except (TypeError, ValueError) as exc:
        return None, f"the job's result is not JSON-safe: {exc}"
    if len(text) > MAX_RESULT:
        return None, f"the job's result is {len(text)} bytes (limit {MAX_RESULT}); write large outputs to files"
    return json.loads(text), None


def run_job(job_id: str, spec: JobSpec, root: Path, emit: Emit, cancel_flag: threading.Event) -> dict[str, Any]:
    """Prepare the checkpoint directory, load and call the job function, and return the end payload:
    ``{"state", "reason", "result"}`` plus ``error_type`` and ``traceback`` on failure."""
    try:
        checkpoint_dir, note = prepare_checkpoint_dir(root, job_id, spec.resume_from)
    except OSError as exc:
        return _failure(exc, "could not prepare the checkpoint directory: ")
    ctx = RunContext(job_id, checkpoint_dir, emit, cancel_flag)
    if note:
        ctx.log(note, source="executor")
    try:
        fn = load_entrypoint(spec.entrypoint)
    except Exception as exc:
        return _failure(exc, f"could not load entrypoint {spec.entrypoint!r}: ")
    try:
        returned = fn(jsonable(spec.params), ctx)
    except JobCancelled as exc:
        return {"state": "cancelled", "reason": str(exc) or "cancelled by request", "result": None}
    except (Exception, SystemExit) as exc:  # a job calling sys.exit() has failed too
        end = _failure(exc)
        if ctx.cancelled():
            end.update(state="cancelled", reason=f"cancelled by request (while stopping: {end['reason']})")
        return end
    result, problem = _check_result(returned)
    if ctx.cancelled():
        return {"state": "cancelled", "reason": "cancelled by request; the job stopped on its own", "result": result}
    if problem:
        return {"state": "failed", "reason": problem, "result": None, "error_type": "InvalidResult"}
    return {"state": "succeeded", "reason": None, "result": result}


def clean_payload(type_: str, payload: Any) -> dict[str, Any] | None:
    """Rebuild a worker's log/metric/progress payload from the expected fields only; None if malformed."""
    if not isinstance(payload, dict):
        return None
    try:
        if type_ == "log":
            fields = payload.get("fields")
            level = payload.get("level")
            return {
                "level": level if level in LEVELS else "info",
                "message": _text(payload.get("message", "")),
                "fields": _bounded(jsonable(fields)) if isinstance(fields, dict) else {},
            }
        if type_ == "metric":
            name, step, labels = payload["name"], payload.get("step"), payload.get("labels")
            if not isinstance(name, str) or (step is not None and type(step) is not int):
                return None
            return {
                "name": _text(name, 200),
                "value": float(payload["value"]),
                "step": step,
                "labels": _bounded(jsonable(labels)) if isinstance(labels, dict) else {},
            }
        if type_ == "progress":
            value = float(payload["progress"])
            return {"progress": min(100.0, max(0.0, value))} if math.isfinite(value) else None
    except (KeyError, TypeError, ValueError):
        return None
    return None


def clean_end(payload: Any) -> dict[str, Any] | None:
    """Rebuild a worker's end payload; None if it does not name a terminal state."""
    if not isinstance(payload, dict) or payload.get("state") not in {s.value for s in TERMINAL_STATES}:
        return None
    out: dict[str, Any] = {"state": JobState(payload["state"]).value, "result": None, "reason": None}
    if isinstance(payload.get("result"), dict):
        out["result"] = jsonable(payload["result"])
    if payload.get("reason") is not None:
        out["reason"] = _text(payload["reason"])
    if isinstance(payload.get("error_type"), str):
        out["error_type"] = _text(payload["error_type"], 200)
    if isinstance(payload.get("traceback"), str):
        out["traceback"] = payload["traceback"][-MAX_TRACEBACK:]
    return out
