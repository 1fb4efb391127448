"""AutoML trials in worker processes that share one Optuna study through a storage (``tune(n_workers=k)``).

* **Storage.** By default a JournalStorage over a file in the search's private temporary directory: Optuna
  recommends the journal file for several processes on one machine. SQLite through RDBStorage serialises
  every writer on one database lock, and a transaction that must upgrade a read lock while another process
  writes fails at once with "database is locked", whatever the timeout. The journal appends one JSON line per
  operation under a lock; ours is an ``flock``, which the kernel drops when its holder dies, so a worker
  killed mid-write never leaves the others waiting (Optuna's own file locks wait out a 30 s grace period).
  An explicit URL (``sqlite:///…``, ``postgresql+psycopg://…``) is used as given, one RDBStorage per process.
* **Processes.** ``spawn``: a fresh interpreter, safe whatever threads the caller holds, and the caller may
  be a forkserver child itself (our job workers). Each worker caps its OpenMP/BLAS pools (``threads`` in
  the spec: ``cpus // n_workers``, or 1 on small tables), so 2 workers on 2 cores do not oversubscribe them.
* **Data.** The checked rows go to Parquet, the folds to NPZ (read with ``allow_pickle=False``), the rest of the
  spec is JSON: nothing is unpickled from a file. Out-of-fold predictions come back as ``.npy`` files.
* **Budget.** ``n_trials`` is a set of slots claimed by creating a file exclusively, so exactly that many
  trials run, whichever worker runs them. The parent decides the time budget and cancellation (as in one
  process: at the deadline only once a trial completed) and writes a stop file that workers read between
  folds; a worker still running ``GRACE_S`` later is terminated and its running trial recorded as
  interrupted. Workers also stop when their parent dies.
* **Progress.** The parent polls the storage and calls ``report`` for each newly finished trial, with the
  same event as the in-process search.
* **Failures.** A worker that dies (a crash, the OOM killer, SIGKILL) is noticed through its process sentinel:
  its running trial is failed with the exit code, and the others go on; the search ends with what completed.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aimaas.errors import InvalidInput, StorageError
from aimaas.training.base import TaskKind, Trainer, get_trainer

if TYPE_CHECKING:
    import optuna

    from aimaas.training.tuning_objective import Monitor, _Progress

__all__ = ["GRACE_S", "SMALL_TABLE_ROWS", "ParallelOutcome", "open_storage", "run_workers", "trainer_refs",
           "trial_threads", "worker_main"]

POLL_S = 0.2
GRACE_S = {"cancelled": 2.0, "timeout": 5.0}
"""Seconds a worker has to stop by itself after the stop file appears, by reason, before it is terminated."""
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
SMALL_TABLE_ROWS = 10_000
"""Below this many rows a fit gets one native thread: threads cost more than they give on small tables, and
on a shared machine OpenMP threads that spin while waiting for a busy core made HistGradientBoosting 10-18x
slower with 2 threads than with 1 (measured on the 2-core benchmark machine under other work)."""


def trial_threads(rows: int, parallel: int) -> int:
    """Native (OpenMP/BLAS) threads per fit when ``parallel`` fits run at once on a table of ``rows`` rows:
    1 on small tables, else the CPUs shared out."""
    if rows < SMALL_TABLE_ROWS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, parallel))


# -- storage -----------------------------------------------------------------------------------------
class _FlockLock:
    """The journal file's lock, held with ``flock`` (released by the kernel if its process dies)."""

    def __init__(self, path: str) -> None:
        self._path, self._fd, self._thread = path, -1, threading.Lock()

    def acquire(self) -> bool:
        import fcntl

        self._thread.acquire()
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        import fcntl

        fd, self._fd = self._fd, -1
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        finally:
            self._thread.release()


def _journal(path: str) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(path, lock_obj=cast(Any, _FlockLock(path + ".flock"))))


def _rdb(url: str) -> Any:
    import optuna

    kwargs = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as exc:  # the URL may hold a password: never echo it
        raise StorageError(f"Cannot open the Optuna storage ({type(exc).__name__}: {exc})"[:500] + ". Optuna "
                           "needs a database of its own: its tables and its Alembic stamp clash with the "
                           "aimaas metadata tables.", code="tuning_storage") from exc


def open_storage(storage: Any, workdir: Path | None) -> tuple[Any, dict[str, str] | None]:
    """The Optuna storage to use here, and how another process opens the same one (None if it cannot).

    ``storage`` None gives a journal file in ``workdir`` (or, without one, Optuna's in-memory storage); a
    string is an RDB URL; anything else is an Optuna storage used as is."""
    if storage is None:
        if workdir is None:
            return None, None
        path = str(workdir / "journal.log")
        return _journal(path), {"kind": "journal", "path": path}
    if isinstance(storage, str):
        return _rdb(storage), {"kind": "rdb", "url": storage}
    return storage, None


def _reopen(spec: dict[str, str]) -> Any:
    return _journal(spec["path"]) if spec["kind"] == "journal" else _rdb(spec["url"])


# -- trainers ----------------------------------------------------------------------------------------
def _resolve(ref: str) -> type[Trainer]:
    if ":" not in ref:
        return get_trainer(ref)
    module, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return cast(type[Trainer], obj)


def trainer_refs(candidates: dict[str, type[Trainer]]) -> dict[str, str]:
    """How a worker finds each candidate: its registered name, or ``"module:QualName"`` for a class defined at
    module level; :class:`InvalidInput` for a class a fresh interpreter cannot import (defined in a function)."""
    out: dict[str, str] = {}
    for name, cls in candidates.items():
        with contextlib.suppress(InvalidInput):
            if get_trainer(name) is cls:
                out[name] = name
                continue
        ref = f"{cls.__module__}:{cls.__qualname__}"
        try:
            found = "<locals>" not in cls.__qualname__ and _resolve(ref) is cls
        except (ImportError, AttributeError):
            found = False
        if not found:
            raise InvalidInput(f"Trainer class {cls.__qualname__} cannot be loaded by a worker process: register it "
                               "or define it at module level, or use n_workers=1.", param="trainers")
        out[name] = ref
    return out


# -- the worker --------------------------------------------------------------------------------------
class _Slots:
    """``limit`` trial slots shared by the workers: a slot is taken by creating its file exclusively."""

    def __init__(self, directory: Path, limit: int | None) -> None:
        directory.mkdir(exist_ok=True)
        self.directory, self.limit, self.next = directory, limit, 0

    def claim(self) -> bool:
        if self.limit is None:
            return True
        while self.next < self.limit:
            self.next += 1
            try:
                os.close(os.open(self.directory / str(self.next - 1), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                return True
            except FileExistsError:
                continue
        return False


def _stop_check(path: Path, parent: int) -> Any:
    def reason() -> str | None:
        if os.getppid() != parent:  # orphaned: nobody reads our trials any more
            return "cancelled"
        try:
            return path.read_text().strip() or "cancelled"
        except FileNotFoundError:
            return None

    return reason


def worker_main(spec_text: str) -> None:
    """Entry point of one worker process: run trials of the shared study until the slots run out, the stop
    file appears or the parent dies. An error before the trials is written to ``error-<index>.json``."""
    spec = json.loads(spec_text)
    for name in _THREAD_VARS:  # for native libraries loaded from now on; threadpoolctl caps those already loaded
        os.environ[name] = str(spec["threads"])
    workdir = Path(spec["dir"])
    try:
        _work(spec, workdir)
    except BaseException as exc:
        from aimaas.training.tuning_objective import error_info

        with contextlib.suppress(OSError):
            (workdir / f"error-{spec['index']}.json").write_text(json.dumps(error_info(exc)))
        raise SystemExit(1) from None


def _work(spec: dict[str, Any], workdir: Path) -> None:
    import optuna
    from threadpoolctl import threadpool_limits

    from aimaas.training.tuning_data import TuningData
    from aimaas.training.tuning_objective import Objective, make_pruner, make_sampler, new_progress
    from aimaas.training.tuning_summary import OofStore

    optuna.logging.set_verbosity(spec["verbosity"])
    data = TuningData.load(workdir, spec)
    candidates = {name: _resolve(ref) for name, ref in spec["trainers"].items()}
    for module in ("sklearn.ensemble", "lightgbm"):  # load their OpenMP runtimes, so the cap below reaches them
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    threadpool_limits(limits=spec["threads"])
    study = optuna.load_study(study_name=spec["study_name"], storage=_reopen(spec["storage"]),
                              sampler=make_sampler(spec["seed"] + 1 + spec["index"], parallel=True),
                              pruner=make_pruner(spec["pruner"], data.n_steps))
    progress = new_progress(None, None, 0, external=_stop_check(workdir / "stop", spec["parent"]))
    store = OofStore(workdir / "oof") if spec["oof"] else None
    objective = Objective(data, task=TaskKind(spec["task"]), metric=spec["metric"], candidates=candidates,
                          seed=spec["seed"], schema=spec["schema"], progress=progress, prune=spec["prune"],
                          openmp_threads=spec["threads"], run=spec["run"],
                          oof_sink=store.save if store is not None else None)
    slots = _Slots(workdir / "slots", spec["n_trials"])
    while progress.interruption() is None and slots.claim():
        study.optimize(objective, n_trials=1, catch=(Exception,))


# -- the parent --------------------------------------------------------------------------------------
@dataclass
class ParallelOutcome:
    """How a multi-process search ended: ``stop`` is ``"cancelled"``, ``"timeout"``, ``"workers_lost"`` (every
    worker died before the budget was spent) or None (the trial budget was spent); ``workers`` has one
    ``{"index", "pid", "exitcode", "note"}`` per process; ``errors`` are the workers' own start-up errors."""

    stop: str | None = None
    workers: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def _settle(study: optuna.Study, storage: Any, run: str, pids: set[int | None], *, pruned: str | None,
            error: str | None = None) -> None:
    """Finish the trials that dead or stopped workers of this run left running: pruned with user attr
    ``interrupted`` (a stop we asked for), or failed with ``error``."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("aimaas.worker") or {}
        if owner.get("run") != run or owner.get("pid") not in pids:
            continue
        if pruned is not None:
            storage.set_trial_user_attr(trial._trial_id, "interrupted", pruned)
            study.tell(trial.number, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            storage.set_trial_user_attr(trial._trial_id, "error", error)
            storage.set_trial_user_attr(trial._trial_id, "aimaas.error", {"type": "WorkerLost", "message": error})
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)


def _stop_process(process: Any) -> None:
    process.terminate()
    process.join(1.0)
    if process.is_alive():
        process.kill()
        process.join(1.0)


def _exit_note(code: int | None) -> str:
    return f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"


def run_workers(study: optuna.Study, storage: Any, *, spec: dict[str, Any], n_workers: int, workdir: Path,
                progress: _Progress, monitor: Monitor,
                prune_oof: Callable[[set[int]], None] | None = None) -> ParallelOutcome:
    """Run the search in ``n_workers`` spawned processes and watch it from here until every worker is gone.

    ``spec`` is the JSON worker spec without ``index`` (``threads``: each worker's native thread cap);
    ``progress`` decides cancellation and the time budget
    (``should_stop`` and the deadline are checked here); ``monitor.observe`` gets each newly finished trial;
    ``prune_oof(finished)`` trims stored out-of-fold predictions. Raising from ``report`` stops every worker at
    once and propagates."""
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("spawn")
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    outcome = ParallelOutcome()
    spec = {**spec, "parent": os.getpid(), "dir": str(workdir)}
    processes = [ctx.Process(target=worker_main, args=(json.dumps({**spec, "index": i}),), name=f"aimaas-tune-{i}")
                 for i in range(n_workers)]
    running: dict[int, Any] = {}
    lost = 0

    def observe() -> None:
        fresh = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.number not in seen]
        fresh.sort(key=lambda t: (t.datetime_complete.timestamp() if t.datetime_complete else 0.0, t.number))
        for trial in fresh:
            seen.add(trial.number)
            monitor.observe(trial)
        if fresh and prune_oof is not None:
            prune_oof(seen)

    def ended(index: int, process: Any, note: str | None) -> None:
        nonlocal lost
        running.pop(index)
        outcome.workers.append({"index": index, "pid": process.pid, "exitcode": process.exitcode, "note": note})
        error_file = workdir / f"error-{index}.json"
        if error_file.exists():
            from aimaas.training.tuning_objective import rebuild_error

            outcome.errors.append(rebuild_error(json.loads(error_file.read_text())))
        if process.exitcode and note is None:  # it ended on its own, badly: its running trial is failed
            lost += 1
            message = f"worker process {process.pid} {_exit_note(process.exitcode)}"
            _settle(study, storage, spec["run"], {process.pid}, pruned=None, error=message)
            outcome.workers[-1]["note"] = message

    stop_at = 0.0
    try:
        for index, process in enumerate(processes):
            process.start()
            running[index] = process
        while running:
            observe()
            if outcome.stop is None:
                reason = progress.interruption()
                if reason is not None:
                    (workdir / "stop.tmp").write_text(reason)
                    os.replace(workdir / "stop.tmp", workdir / "stop")
                    outcome.stop, stop_at = reason, time.monotonic()
            for index, process in list(running.items()):
                if not process.is_alive():
                    process.join()
                    ended(index, process, None)
            if running and outcome.stop is not None and time.monotonic() - stop_at > GRACE_S[outcome.stop]:
                for index, process in list(running.items()):
                    _stop_process(process)
                    _settle(study, storage, spec["run"], {process.pid}, pruned=outcome.stop)
                    ended(index, process, f"terminated after the {outcome.stop} grace period")
            if running:
                wait([p.sentinel for p in running.values()], timeout=POLL_S)
        observe()
    except BaseException:
        with contextlib.suppress(OSError):
            (workdir / "stop").write_text("cancelled")
        for process in running.values():
            _stop_process(process)
        with contextlib.suppress(Exception):
            _settle(study, storage, spec["run"], {p.pid for p in processes}, pruned="cancelled")
        raise
    if outcome.stop is None and lost:
        claimed = len(list((workdir / "slots").glob("*")))
        if spec["n_trials"] is None or claimed < spec["n_trials"]:
            outcome.stop = "workers_lost"
    return outcome
