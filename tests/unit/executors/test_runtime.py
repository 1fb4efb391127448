"""The shared job runtime: context, checkpoint preparation, end payloads, and cleaning of worker messages."""

from __future__ import annotations

import math
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from aimaas.domain.jobs import JobSpec
from aimaas.errors import InvalidInput
from aimaas.executors import JobCancelled
from aimaas.executors._runtime import (
    RunContext,
    clean_end,
    clean_payload,
    jsonable,
    prepare_checkpoint_dir,
    run_job,
)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, type_: Any, payload: dict[str, Any]) -> None:
        self.events.append((type_, payload))


def make_ctx(tmp_path: Path) -> tuple[RunContext, Recorder, threading.Event]:
    rec, flag = Recorder(), threading.Event()
    return RunContext("job", tmp_path, rec, flag), rec, flag


def test_context_builds_clean_payloads(tmp_path: Path) -> None:
    ctx, rec, flag = make_ctx(tmp_path)
    ctx.log("hi", level="shout", obj=object, nums=(1, 2), big="x" * 20000)
    ctx.log("y" * 10000)
    ctx.metric("acc", 1, step=2, trial=3)
    for pct in (10, 10, -5, 250):
        ctx.progress(pct)
    assert rec.events[0] == ("log", {"level": "info", "message": "hi", "fields": {"truncated": True}})
    assert len(rec.events[1][1]["message"]) == 8192
    assert rec.events[2] == ("metric", {"name": "acc", "value": 1.0, "step": 2, "labels": {"trial": 3}})
    assert [p["progress"] for t, p in rec.events if t == "progress"] == [10.0, 0.0, 100.0]
    with pytest.raises(ValueError):
        ctx.progress(math.nan)
    with pytest.raises(ValueError):
        ctx.metric("", 1.0)
    with pytest.raises(ValueError):
        ctx.metric("x", 1.0, step=1.5)  # type: ignore[arg-type]
    assert not ctx.cancelled()
    ctx.raise_if_cancelled()
    flag.set()
    assert ctx.cancelled()
    with pytest.raises(JobCancelled):
        ctx.raise_if_cancelled()


def test_jsonable_copies_to_plain_json() -> None:
    np = pytest.importorskip("numpy")
    value = {1: (np.float64(0.5), np.int64(3)), "s": {1, 2} - {1}, "o": Path("/x"), "n": None, "b": True}
    assert jsonable(value) == {"1": [0.5, 3], "s": [2], "o": "/x", "n": None, "b": True}


def test_checkpoint_dirs_are_copied_for_a_resume(tmp_path: Path) -> None:
    first, note = prepare_checkpoint_dir(tmp_path, "a", None)
    assert note is None and first == tmp_path / "a" and (first.stat().st_mode & 0o777) == 0o700
    (first / "sub").mkdir()
    (first / "sub" / "w.bin").write_bytes(b"1")
    second, note = prepare_checkpoint_dir(tmp_path, "b", "a")
    assert (second / "sub" / "w.bin").read_bytes() == b"1" and "(1 files)" in (note or "")
    (second / "sub" / "w.bin").write_bytes(b"2")
    assert (first / "sub" / "w.bin").read_bytes() == b"1"  # a copy: the earlier checkpoint stays intact
    again, note = prepare_checkpoint_dir(tmp_path, "b", "a")
    assert "already holds files" in (note or "") and (again / "sub" / "w.bin").read_bytes() == b"2"
    _, note = prepare_checkpoint_dir(tmp_path, "c", "never-ran")
    assert "starting from scratch" in (note or "")
    for bad in ("..", "../x", "a/b"):
        with pytest.raises(InvalidInput):
            prepare_checkpoint_dir(tmp_path, bad, None)


def spec(function: str, **params: Any) -> JobSpec:
    return JobSpec("test", f"{__name__}:{function}", params, "t")


def job_exits(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    sys.exit(2)


def job_fails_while_cancelled(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    raise RuntimeError("interrupted mid-write")


def job_returns_object(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"model": object()}


def job_returns_numpy(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    np = pytest.importorskip("numpy")
    return {"acc": np.float32(0.5), "n": np.int64(3)}


def test_run_job_outcomes(tmp_path: Path) -> None:
    rec = Recorder()
    end = run_job("j1", spec("job_exits"), tmp_path, rec, threading.Event())
    assert end["state"] == "failed" and end["reason"] == "SystemExit: 2"
    end = run_job("j2", spec("job_returns_object"), tmp_path, rec, threading.Event())
    assert end["state"] == "failed" and "not JSON-safe" in end["reason"]
    assert run_job("j3", spec("job_returns_numpy"), tmp_path, rec, threading.Event())["result"] == {"acc": 0.5, "n": 3}
    cancelled = threading.Event()
    cancelled.set()
    end = run_job("j4", spec("job_fails_while_cancelled"), tmp_path, rec, cancelled)
    assert end["state"] == "cancelled" and "RuntimeError: interrupted mid-write" in end["reason"]


def test_clean_payload_rebuilds_or_refuses_worker_messages() -> None:
    assert clean_payload("log", {"level": "error", "message": 5, "fields": {"a": 1}, "extra": "dropped"}) == {
        "level": "error",
        "message": "5",
        "fields": {"a": 1},
    }
    assert clean_payload("log", {"level": "<script>", "fields": "nope"}) == {
        "level": "info",
        "message": "",
        "fields": {},
    }
    assert clean_payload("metric", {"name": "l", "value": "1.5", "step": None}) == {
        "name": "l",
        "value": 1.5,
        "step": None,
        "labels": {},
    }
    assert clean_payload("metric", {"name": "l", "value": "x"}) is None
    assert clean_payload("metric", {"name": "l", "value": 1, "step": True}) is None
    assert clean_payload("progress", {"progress": 1e9}) == {"progress": 100.0}
    assert clean_payload("progress", {"progress": float("nan")}) is None
    assert clean_payload("state", {"state": "succeeded"}) is None
    assert clean_payload("log", ["not", "a", "dict"]) is None


def test_clean_end_keeps_only_known_fields() -> None:
    assert clean_end({"state": "running"}) is None
    assert clean_end("x") is None
    end = clean_end({"state": "failed", "reason": "r" * 9000, "result": [1], "error_type": "E", "pid": 1})
    assert end is not None and end["result"] is None and len(end["reason"]) == 8192 and "pid" not in end
