"""EventLog numbering, the registry, submission checks, and the pure end decision."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aimaas.domain.jobs import JobSpec, JobState
from aimaas.errors import Conflict, InvalidInput
from aimaas.executors import EventLog, InlineExecutor, LocalExecutor, create_executor, executor_names, register_executor
from aimaas.executors import base as base_module
from aimaas.executors._exits import SHUTDOWN, decide_end, describe_exit


def test_event_log_numbers_each_job_and_ends_it_once() -> None:
    log = EventLog()
    log.open("a")
    log.open("b")
    with pytest.raises(Conflict):
        log.open("a")
    log.emit("a", "log", {"message": "one"})
    log.emit("b", "progress", {"progress": 10.0})
    log.emit("a", "log", {"message": "two"})
    assert log.finish("a", JobState.FAILED, "boom", error_type="ValueError")
    assert not log.finish("a", JobState.SUCCEEDED)
    assert not log.emit("a", "log", {"message": "late"})
    events = log.drain()
    assert [(e.job_id, e.seq) for e in events] == [("a", 1), ("b", 1), ("a", 2), ("a", 3)]
    end = events[-1]
    assert end.terminal_state is JobState.FAILED
    assert end.payload == {
        "state": "failed",
        "reason": "boom",
        "result": None,
        "error_type": "ValueError",
        "last_logs": ["one", "two"],
    }
    assert log.drain() == []
    log.finish("b", JobState.SUCCEEDED, result={"ok": 1})
    assert "last_logs" not in log.drain()[0].payload


def test_last_logs_keep_the_most_recent_twenty() -> None:
    log = EventLog()
    log.open("a")
    for i in range(50):
        log.emit("a", "log", {"message": f"m{i}"})
    log.finish("a", JobState.FAILED, "x")
    assert log.drain()[-1].payload["last_logs"] == [f"m{i}" for i in range(30, 50)]


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = dict(base_module._FACTORIES)
    yield
    base_module._FACTORIES.clear()
    base_module._FACTORIES.update(saved)


def test_registry_creates_by_name(tmp_path: Any, restore_registry: None) -> None:
    assert {"inline", "local"} <= set(executor_names())
    assert isinstance(create_executor("inline", checkpoint_root=tmp_path), InlineExecutor)
    with create_executor("local", workers=3, checkpoint_root=tmp_path) as ex:
        assert isinstance(ex, LocalExecutor) and ex.capacity == 3
    register_executor("fake", lambda **options: InlineExecutor(**options))
    assert isinstance(create_executor("fake"), InlineExecutor)
    register_executor("lazy", "aimaas.executors.inline:InlineExecutor")
    assert isinstance(create_executor("lazy"), InlineExecutor)
    with pytest.raises(InvalidInput) as info:
        create_executor("ray-without-ray")
    assert "known executors" in info.value.message and info.value.param == "executor"


def test_inline_checks_entrypoint_packages(tmp_path: Any) -> None:
    ex = InlineExecutor(checkpoint_root=tmp_path, allowed_modules=["aimaas.testing"])
    ex.submit("ok", JobSpec("test", "aimaas.testing.executor_jobs:succeed", {}, "t"))
    with pytest.raises(InvalidInput):
        ex.submit("no", JobSpec("test", "aimaas.testingx.jobs:run", {}, "t"))
    with pytest.raises(InvalidInput):
        ex.submit("no", JobSpec("test", "os:system", {}, "t"))


@pytest.mark.parametrize(
    ("end", "facts", "expected"),
    [
        ({"state": "succeeded", "reason": None, "result": {"a": 1}}, {}, (JobState.SUCCEEDED, None)),
        ({"state": "failed", "reason": "ValueError: x", "result": None}, {}, (JobState.FAILED, "ValueError: x")),
        (
            {"state": "cancelled", "reason": "stopped", "result": None},
            {"cancel_requested": True},
            (JobState.CANCELLED, "stopped"),
        ),
        ({"state": "cancelled", "reason": "stopped", "result": None}, {"closing": True}, (JobState.FAILED, SHUTDOWN)),
        ({"state": "succeeded", "reason": None, "result": {}}, {"closing": True}, (JobState.SUCCEEDED, None)),
        (None, {"exit_code": -9}, (JobState.FAILED, describe_exit(-9))),
        (None, {"exit_code": 3}, (JobState.FAILED, "worker process exited with code 3 without reporting a result")),
        (
            None,
            {"exit_code": -9, "cancel_requested": True, "signalled": "SIGKILL"},
            (JobState.CANCELLED, "cancelled by request; the worker was stopped by SIGKILL"),
        ),
        (None, {"exit_code": -9, "closing": True, "signalled": "SIGKILL"}, (JobState.FAILED, SHUTDOWN)),
        (None, {"exit_code": -9, "problem": "broke the protocol"}, (JobState.FAILED, "broke the protocol")),
    ],
)
def test_decide_end(end: dict[str, Any] | None, facts: dict[str, Any], expected: tuple[JobState, str]) -> None:
    args: dict[str, Any] = {"exit_code": 0, "cancel_requested": False, "signalled": None, "closing": False} | facts
    state, reason, extra = decide_end(end, **args)
    assert (state, reason) == expected
    if end is None:
        assert extra["exit_code"] == args["exit_code"]
    else:
        assert extra["result"] == end["result"]


def test_describe_exit_names_signals() -> None:
    assert describe_exit(-9).startswith("worker process exited with signal 9 (SIGKILL)")
    assert describe_exit(-11) == "worker process exited with signal 11 (SIGSEGV)"
    assert "unknown signal" in describe_exit(-200)
