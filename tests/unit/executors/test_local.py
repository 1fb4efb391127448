"""LocalExecutor behaviour beyond the contract: process groups, death of the API process, stalls, no blocking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from aimaas.domain.jobs import JobState
from aimaas.errors import InvalidInput
from aimaas.executors import LocalExecutor
from aimaas.testing.executor_contract import collect, job_spec, wait_for_file

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups need a POSIX system")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float) -> float:
    started = time.monotonic()
    while not gone(pid):
        assert time.monotonic() - started < timeout, f"process {pid} still alive after {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    ex = LocalExecutor(
        workers=1,
        checkpoint_root=tmp_path / "ckpt",
        heartbeat_s=0.2,
        grace_s=0.5,
        kill_after_s=0.5,
        stall_warning_s=0.6,
    )
    yield ex
    ex.close()


def test_cancel_kills_what_the_job_started(executor: LocalExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "grandchild"
    executor.submit("job-parent", job_spec("spawn_grandchild", marker=str(marker)))
    grandchild = int(wait_for_file(marker))
    executor.cancel("job-parent")
    assert collect(executor, ["job-parent"]).end("job-parent").terminal_state is JobState.CANCELLED
    wait_gone(grandchild, 2.0)


def test_workers_die_with_the_api_process(tmp_path: Path) -> None:
    """kill -9 of the API process: each worker sees its pipe break and kills its process group."""
    marker = tmp_path / "grandchild"
    script = (
        "import sys, time\n"
        "from aimaas.executors import LocalExecutor\n"
        "from aimaas.testing.executor_contract import job_spec\n"
        "ex = LocalExecutor(workers=1, heartbeat_s=0.2, checkpoint_root=sys.argv[2])\n"
        "ex.submit('job-orphan', job_spec('spawn_grandchild', marker=sys.argv[1]))\n"
        "while True:\n"
        "    for e in ex.poll():\n"
        "        if e.type == 'state': print(e.payload.get('pid'), flush=True)\n"
        "    time.sleep(0.05)\n"
    )
    api = subprocess.Popen(
        [sys.executable, "-c", script, str(marker), str(tmp_path / "ckpt")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert api.stdout is not None
        worker = int(api.stdout.readline())
        grandchild = int(wait_for_file(marker))
        api.kill()
        api.wait()
        assert wait_gone(worker, 3.0) < 3.0
        wait_gone(grandchild, 3.0)
    finally:
        api.kill()


def test_a_silent_worker_gets_a_warning(executor: LocalExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "frozen"
    executor.submit("job-frozen", job_spec("stuck", marker=str(marker)))
    pid = int(wait_for_file(marker))
    os.kill(pid, signal.SIGSTOP)
    try:
        deadline, warnings = time.monotonic() + 5, []
        while not warnings and time.monotonic() < deadline:
            warnings = [e for e in executor.poll() if e.type == "log" and e.payload["level"] == "warning"]
            time.sleep(0.05)
        assert warnings and "no heartbeat from the worker" in warnings[0].payload["message"]
        assert executor.running() == {"job-frozen"}  # a warning, not a verdict
    finally:
        os.kill(pid, signal.SIGCONT)
    executor.cancel("job-frozen")
    collect(executor, ["job-frozen"])


def test_submit_poll_and_cancel_never_block(executor: LocalExecutor) -> None:
    ids = [f"job-q{i}" for i in range(40)]
    slowest = 0.0
    for job_id in ids:
        started = time.perf_counter()
        executor.submit(job_id, job_spec("sleep_for", seconds=5))
        executor.poll()
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 0.05 and executor.running() == set(ids)
    for job_id in ids:
        executor.cancel(job_id)
    got = collect(executor, ids)
    reasons = {got.end(j).payload["reason"] for j in ids[1:]}
    assert reasons == {"cancelled before it started"}
    assert all(len(got.by_job[j]) == 1 for j in ids[1:])


def test_close_fails_jobs_still_waiting(tmp_path: Path) -> None:
    ex = LocalExecutor(workers=1, checkpoint_root=tmp_path)
    ex.submit("job-a", job_spec("sleep_for", seconds=5))
    ex.submit("job-b", job_spec("sleep_for", seconds=5))
    ex.close()
    ends = {e.job_id: e for e in ex.poll() if e.terminal_state}
    assert ends["job-b"].payload["reason"] == "the executor shut down before the job started"
    assert ends["job-a"].terminal_state is JobState.FAILED


def test_spawn_start_method_works(tmp_path: Path) -> None:
    with LocalExecutor(workers=1, start_method="spawn", checkpoint_root=tmp_path) as ex:
        ex.submit("job-spawned", job_spec("succeed"))
        assert collect(ex, ["job-spawned"]).end("job-spawned").terminal_state is JobState.SUCCEEDED


def test_options_are_checked_and_entrypoints_can_be_restricted(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        LocalExecutor(workers=0)
    with pytest.raises(InvalidInput):
        LocalExecutor(start_method="fork")
    with LocalExecutor(workers=1, checkpoint_root=tmp_path, allowed_modules=["aimaas.training"]) as ex:
        with pytest.raises(InvalidInput) as info:
            ex.submit("job-x", job_spec("succeed"))
        assert info.value.param == "entrypoint"
