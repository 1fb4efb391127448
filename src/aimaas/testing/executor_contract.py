"""ExecutorContract: the behaviour every :class:`~aimaas.executors.base.Executor` backend must show.

Subclass it in a test module with an ``executor`` fixture that yields a fresh executor (closed afterwards)::

    class TestMyExecutor(ExecutorContract):
        separate_process = True  # False when jobs run in the caller's thread (tests that need one are skipped)

        @pytest.fixture
        def executor(self, tmp_path):
            ex = MyExecutor(checkpoint_root=tmp_path / "ckpt")
            yield ex
            ex.close()

Timings assume ``grace_s`` around 1 s (the time a job gets to stop on its own before SIGTERM).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aimaas.domain.jobs import JobEvent, JobSpec, JobState
from aimaas.errors import Conflict, InvalidInput, ServiceUnavailable
from aimaas.executors.base import Executor

__all__ = ["ExecutorContract", "collect", "job_spec", "wait_for_file"]

JOBS = "aimaas.testing.executor_jobs"


def job_spec(function: str, *, tenant: str = "ten_a", resume_from: str | None = None, **params: Any) -> JobSpec:
    return JobSpec(
        kind="test", entrypoint=f"{JOBS}:{function}", params=params, tenant_id=tenant, resume_from=resume_from
    )


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.01)
    raise AssertionError(f"{path} did not appear within {timeout} s")


class Collected:
    """Events gathered by :func:`collect`: ``by_job`` per job, ``order`` as polled, ``ended_at`` monotonic time."""

    def __init__(self) -> None:
        self.by_job: dict[str, list[JobEvent]] = defaultdict(list)
        self.order: list[JobEvent] = []
        self.ended_at: dict[str, float] = {}

    def add(self, events: list[JobEvent]) -> None:
        for event in events:
            self.by_job[event.job_id].append(event)
            self.order.append(event)
            if event.terminal_state is not None:
                self.ended_at[event.job_id] = time.monotonic()

    def end(self, job_id: str) -> JobEvent:
        last = self.by_job[job_id][-1]
        assert last.terminal_state is not None, self.by_job[job_id]
        return last


def collect(executor: Executor, job_ids: list[str], timeout: float = 15.0, into: Collected | None = None) -> Collected:
    """Poll until every job in ``job_ids`` has a terminal event (fails after ``timeout`` seconds)."""
    got = into or Collected()
    deadline = time.monotonic() + timeout
    while not all(j in got.ended_at for j in job_ids):
        assert time.monotonic() < deadline, f"jobs did not end within {timeout} s: {dict(got.by_job)}"
        got.add(executor.poll())
        time.sleep(0.01)
    got.add(executor.poll())
    return got


def _cancel_when_running(executor: Executor, job_id: str, marker: Path) -> dict[str, float]:
    """Cancel from another thread once the job touched its marker (inline's ``submit`` blocks the caller)."""
    when: dict[str, float] = {}

    def go() -> None:
        wait_for_file(marker)
        when["at"] = time.monotonic()
        executor.cancel(job_id)

    threading.Thread(target=go, daemon=True).start()
    return when


class ExecutorContract:
    separate_process: ClassVar[bool] = True

    def _needs_process(self) -> None:
        if not self.separate_process:
            pytest.skip("jobs run in the caller's thread here; this needs a separate worker process")

    def _assert_sequence(self, events: list[JobEvent]) -> None:
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert sum(e.terminal_state is not None for e in events) == 1

    # -- results and failures ----------------------------------------------------------------------------
    def test_success_reports_result_and_events_in_order(self, executor: Executor) -> None:
        executor.submit("job-ok", job_spec("succeed", nested={"a": [1, 2]}, n=3))
        events = collect(executor, ["job-ok"]).by_job["job-ok"]
        self._assert_sequence(events)
        kinds = [
            (
                e.type,
                e.payload.get("state")
                or e.payload.get("message")
                or e.payload.get("name")
                or e.payload.get("progress"),
            )
            for e in events
        ]
        assert kinds == [
            ("state", "running"),
            ("log", "starting"),
            ("progress", 0.0),
            ("metric", "loss"),
            ("metric", "loss"),
            ("metric", "loss"),
            ("progress", 50.0),
            ("log", "halfway"),
            ("progress", 100.0),
            ("state", "succeeded"),
        ]
        assert events[1].payload == {"level": "info", "message": "starting", "fields": {"rows": 3}}
        assert events[4].payload == {"name": "loss", "value": 0.5, "step": 1, "labels": {"epoch": 0}}
        end = events[-1].payload
        assert end["result"] == {"echo": {"nested": {"a": [1, 2]}, "n": 3}, "steps": 3}
        assert end["reason"] is None and events[-1].terminal_state is JobState.SUCCEEDED
        assert all(e.time.tzinfo is not None for e in events)
        assert executor.running() == set()

    def test_exception_fails_with_type_message_and_last_logs(self, executor: Executor) -> None:
        executor.submit("job-bad", job_spec("fail", message="column 'x' is missing"))
        end = collect(executor, ["job-bad"]).end("job-bad")
        assert end.terminal_state is JobState.FAILED
        assert end.payload["reason"] == "ValueError: column 'x' is missing"
        assert end.payload["error_type"] == "ValueError"
        assert "raise ValueError" in end.payload["traceback"]
        assert end.payload["last_logs"][-1] == "about to fail" and 5 <= len(end.payload["last_logs"]) <= 20

    def test_bad_entrypoint_or_result_fails_with_a_reason(self, executor: Executor) -> None:
        executor.submit("job-missing", job_spec("no_such_function"))
        executor.submit("job-list", job_spec("not_a_dict"))
        executor.submit("job-module", JobSpec("test", "aimaas.no_such_module:run", {}, "ten_a"))
        got = collect(executor, ["job-missing", "job-list", "job-module"])
        assert "could not load entrypoint" in got.end("job-missing").payload["reason"]
        assert "AttributeError" in got.end("job-missing").payload["reason"]
        assert "ModuleNotFoundError" in got.end("job-module").payload["reason"]
        assert "must return a dict" in got.end("job-list").payload["reason"]
        assert all(got.end(j).terminal_state is JobState.FAILED for j in ("job-missing", "job-list", "job-module"))

    def test_submit_checks_ids_and_refuses_after_close(self, executor: Executor) -> None:
        for bad in ("../etc", "", "a/b", ".hidden", "x" * 200):
            with pytest.raises(InvalidInput):
                executor.submit(bad, job_spec("succeed"))
        executor.close()
        with pytest.raises(ServiceUnavailable):
            executor.submit("job-late", job_spec("succeed"))
        executor.close()  # idempotent

    # -- cancellation ------------------------------------------------------------------------------------
    def test_cooperative_cancel(self, executor: Executor, tmp_path: Path) -> None:
        marker = tmp_path / "coop"
        asked = _cancel_when_running(executor, "job-coop", marker)
        executor.submit("job-coop", job_spec("cooperative", marker=str(marker)))
        got = collect(executor, ["job-coop"])
        end = got.end("job-coop")
        assert end.terminal_state is JobState.CANCELLED, end.payload
        assert got.ended_at["job-coop"] - asked["at"] < 5.0
        assert end.payload["result"]["loops"] >= 0  # a cooperative job may hand back what it has
        self._assert_sequence(got.by_job["job-coop"])

    def test_cancel_job_stuck_in_sleep(self, executor: Executor, tmp_path: Path) -> None:
        self._needs_process()
        marker = tmp_path / "stuck"
        asked = _cancel_when_running(executor, "job-stuck", marker)
        executor.submit("job-stuck", job_spec("stuck", marker=str(marker)))
        got = collect(executor, ["job-stuck"])
        assert got.end("job-stuck").terminal_state is JobState.CANCELLED
        assert got.ended_at["job-stuck"] - asked["at"] < 5.0

    def test_cancel_job_ignoring_sigterm(self, executor: Executor, tmp_path: Path) -> None:
        self._needs_process()
        marker = tmp_path / "stubborn"
        asked = _cancel_when_running(executor, "job-stubborn", marker)
        executor.submit("job-stubborn", job_spec("ignore_sigterm", marker=str(marker)))
        got = collect(executor, ["job-stubborn"])
        end = got.end("job-stubborn")
        assert end.terminal_state is JobState.CANCELLED and "SIGKILL" in end.payload["reason"]
        assert got.ended_at["job-stubborn"] - asked["at"] < 5.0

    def test_cancel_unknown_or_finished_job_does_nothing(self, executor: Executor) -> None:
        executor.cancel("job-never-seen")
        executor.submit("job-done", job_spec("succeed"))
        collect(executor, ["job-done"])
        executor.cancel("job-done")
        time.sleep(0.1)
        assert executor.poll() == []

    def test_cancel_while_waiting_for_a_slot(self, executor: Executor, tmp_path: Path) -> None:
        self._needs_process()
        blockers = [f"job-block-{i}" for i in range(executor.capacity)]
        for i, job_id in enumerate(blockers):
            executor.submit(job_id, job_spec("cooperative", marker=str(tmp_path / f"b{i}")))
        executor.submit("job-waiting", job_spec("succeed"))
        assert "job-waiting" in executor.running()
        executor.cancel("job-waiting")
        for job_id in blockers:
            executor.cancel(job_id)
        got = collect(executor, [*blockers, "job-waiting"])
        waiting = got.by_job["job-waiting"]
        assert len(waiting) == 1 and waiting[0].payload["state"] == "cancelled"
        assert waiting[0].payload["reason"] == "cancelled before it started"

    # -- concurrency and event delivery ------------------------------------------------------------------
    def test_runs_up_to_capacity_at_once(self, executor: Executor) -> None:
        ids = [f"job-par-{i}" for i in range(executor.capacity + 1)]
        got = Collected()
        for job_id in ids:
            executor.submit(job_id, job_spec("sleep_for", seconds=0.4))
            assert len(executor.running()) <= executor.capacity + 1
        collect(executor, ids, into=got)
        active, peak = 0, 0
        for event in got.order:
            if event.type == "state":
                active += 1 if event.payload["state"] == "running" else -1
                peak = max(peak, active)
        assert peak == executor.capacity
        assert all(got.end(j).terminal_state is JobState.SUCCEEDED for j in ids)

    def test_events_are_never_lost_or_duplicated(self, executor: Executor) -> None:
        n = 1500
        executor.submit("job-chatty", job_spec("chatty", n=n))
        executor.submit("job-chatty-2", job_spec("chatty", n=n // 3))
        got = collect(executor, ["job-chatty", "job-chatty-2"], timeout=30)
        for job_id, count in (("job-chatty", n), ("job-chatty-2", n // 3)):
            events = got.by_job[job_id]
            self._assert_sequence(events)
            logs = [e.payload["fields"]["i"] for e in events if e.type == "log" and e.payload["message"] == "line"]
            steps = [e.payload["step"] for e in events if e.type == "metric"]
            assert logs == list(range(count)) and steps == list(range(count))

    def test_checkpoint_dir_persists_for_a_resumed_job(self, executor: Executor) -> None:
        executor.submit("job-first", job_spec("checkpointing", steps=5))
        first = collect(executor, ["job-first"]).end("job-first").payload["result"]
        executor.submit("job-second", job_spec("checkpointing", steps=3, resume_from="job-first"))
        got = collect(executor, ["job-second"])
        second = got.end("job-second").payload["result"]
        assert (first["start"], first["end"]) == (0, 5)
        assert (second["start"], second["end"]) == (5, 8)
        assert second["dir"] != first["dir"] and Path(first["dir"], "state.json").exists()
        notes = [e.payload["message"] for e in got.by_job["job-second"] if e.type == "log"]
        assert any("resuming from the checkpoint of job job-first" in m for m in notes)

    # -- worker processes ---------------------------------------------------------------------------------
    def test_duplicate_active_id_conflicts_and_running_lists_it(self, executor: Executor, tmp_path: Path) -> None:
        self._needs_process()
        executor.submit("job-twice", job_spec("cooperative", marker=str(tmp_path / "m")))
        with pytest.raises(Conflict):
            executor.submit("job-twice", job_spec("succeed"))
        assert executor.running() == {"job-twice"}
        executor.cancel("job-twice")
        collect(executor, ["job-twice"])
        assert executor.running() == set()

    def test_kill_9_of_the_worker_fails_the_job(self, executor: Executor, tmp_path: Path) -> None:
        self._needs_process()
        marker = tmp_path / "victim"
        executor.submit("job-victim", job_spec("stuck", marker=str(marker)))
        os.kill(int(wait_for_file(marker)), signal.SIGKILL)
        killed_at = time.monotonic()
        got = collect(executor, ["job-victim"])
        end = got.end("job-victim")
        assert end.terminal_state is JobState.FAILED
        assert "signal 9 (SIGKILL)" in end.payload["reason"]
        assert got.ended_at["job-victim"] - killed_at < 3.0
        assert "running" in end.payload["last_logs"]

    def test_crash_or_silent_exit_fails_the_job(self, executor: Executor) -> None:
        self._needs_process()
        executor.submit("job-segv", job_spec("segfault"))
        executor.submit("job-exit", job_spec("exit_hard", code=3))
        got = collect(executor, ["job-segv", "job-exit"])
        assert "SIGSEGV" in got.end("job-segv").payload["reason"]
        assert got.end("job-exit").payload["reason"] == "worker process exited with code 3 without reporting a result"
        assert got.end("job-exit").payload["exit_code"] == 3

    def test_close_fails_running_jobs(self, executor: Executor, tmp_path: Path) -> None:
        self._needs_process()
        marker = tmp_path / "closing"
        executor.submit("job-at-close", job_spec("stuck", marker=str(marker)))
        wait_for_file(marker)
        started = time.monotonic()
        executor.close()
        assert time.monotonic() - started < 5.0
        end = Collected()
        end.add(executor.poll())
        assert end.end("job-at-close").terminal_state is JobState.FAILED
        assert "shut down" in end.end("job-at-close").payload["reason"]
        assert executor.running() == set()
