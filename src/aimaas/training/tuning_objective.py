"""The Optuna objective of a tuning study and the callback that runs after each trial.

The search space is hierarchical: a ``trainer`` categorical first, then that trainer's own
``search_space(trial)``. A trainer's hyperparameters are stored in the study as ``"<trainer>.<name>"``, so
two trainers may use one name with different ranges (``n_estimators``, ``learning_rate``) without clashing.
optuna is imported by the functions that need it.
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from aimaas.errors import AimaasError
from aimaas.training.base import Report, TaskKind, Trainer
from aimaas.training.tuning_data import TuningData, score

if TYPE_CHECKING:
    import optuna

__all__ = ["PRUNERS", "Monitor", "Objective", "OofSink", "RemoteError", "default_params", "error_info",
           "make_pruner", "make_sampler", "new_progress", "prefixed", "rebuild_error", "unprefixed"]

TRAINER_PARAM = "trainer"


def prefixed(trainer: str, name: str) -> str:
    """The study's name for hyperparameter ``name`` of ``trainer``."""
    return f"{trainer}.{name}"


def unprefixed(trainer: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """A study trial's params back as the trainer's own keyword arguments (``trainer`` left out)."""
    head = f"{trainer}."
    return {k[len(head):]: v for k, v in params.items() if trainer is not None and k.startswith(head)}


class _Prefixed:
    """A ``TrialLike`` that forwards every suggestion to the Optuna trial under ``"<trainer>.<name>"``."""

    def __init__(self, trial: Any, trainer: str) -> None:
        self._trial, self._trainer = trial, trainer

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return int(self._trial.suggest_int(prefixed(self._trainer, name), low, high, step=step, log=log))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return float(self._trial.suggest_float(prefixed(self._trainer, name), low, high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._trial.suggest_categorical(prefixed(self._trainer, name), list(choices))


class _DefaultsProbe:
    """A ``TrialLike`` that answers each suggestion with the trainer's default when the search space can hold
    it (numbers are clipped into range: ``l2_regularization=0`` becomes the lowest value, 1e-6), recording
    those answers; defaults outside a categorical's choices are left for the sampler."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.params: dict[str, Any] = {}

    def _number(self, name: str, low: float, high: float) -> float | None:
        value = self.defaults.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        return min(max(value, low), high)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        value = self._number(name, low, high)
        if value is None:
            return low
        self.params[name] = out = int(low + round((value - low) / step) * step)
        return out

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        value = self._number(name, low, high)
        if value is None:
            return low
        self.params[name] = out = float(value if step is None else low + round((value - low) / step) * step)
        return out

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self.defaults.get(name)
        if any(value is c or (type(value) is type(c) and value == c) for c in choices):
            self.params[name] = value
            return value
        return choices[0]


def default_params(name: str, cls: type[Trainer]) -> dict[str, Any]:
    """The study params (``trainer`` included) of ``cls``'s defaults, for ``study.enqueue_trial``."""
    probe = _DefaultsProbe(dict(cls.hyperparameters))
    cls.search_space(probe)
    return {TRAINER_PARAM: name, **{prefixed(name, k): v for k, v in probe.params.items()}}


class _Progress:
    """State shared by the objective and the monitor across threads. ``external()`` (optional) names a stop
    decided elsewhere (``"cancelled"`` or ``"timeout"``: a worker process reads its parent's stop file)."""

    def __init__(self, deadline: float | None, should_stop: Callable[[], bool] | None, completed: int,
                 external: Callable[[], str | None] | None = None) -> None:
        self.lock = threading.Lock()
        self.deadline, self.should_stop, self.external = deadline, should_stop, external
        self.completed = completed
        self.cancelled = self.timed_out = False
        self.last_error: BaseException | None = None

    def interruption(self) -> str | None:
        """``"cancelled"`` or ``"timeout"`` when the running trial should stop now, else None. A trial is
        stopped at the time budget only once another trial has completed, so there is always a result."""
        if self.cancelled or (self.should_stop is not None and self.should_stop()):
            self.cancelled = True
            return "cancelled"
        if self.timed_out:
            return "timeout"
        if self.external is not None:
            reason = self.external()
            if reason is not None:
                self.cancelled, self.timed_out = reason == "cancelled", reason == "timeout"
                return reason
        if self.deadline is not None and time.monotonic() >= self.deadline and self.completed > 0:
            self.timed_out = True
            return "timeout"
        return None


OofSink = Callable[[int, np.ndarray], None]
"""Receives ``(trial number, out-of-fold predictions)`` of each trial that completes every fold."""


class Objective:
    """Draws a trainer and its hyperparameters, fits one model per fold and returns the mean fold score.

    After each fold the running mean is reported (``trial.report(mean, folds_done)``) and, except after the
    last fold, the pruner may stop the trial. Between folds the trial also stops (as pruned, with user attr
    ``interrupted``) on cancellation or at the time budget. An exception is recorded in user attrs ``error``
    (text) and ``aimaas.error`` (type, message, code, param) and re-raised; the study marks the trial failed
    and goes on. Each trial first records ``aimaas.worker`` = ``{"run", "pid"}``: which ``tune`` call and
    which process ran it. With ``oof_sink``, a completed trial's out-of-fold predictions are handed to it.
    ``openmp_threads`` caps the trial's OpenMP pool (``all_pools``: its BLAS pools too).
    """

    def __init__(self, data: TuningData, *, task: TaskKind, metric: str, candidates: dict[str, type[Trainer]],
                 seed: int, schema: list[dict[str, Any]] | None, progress: _Progress, prune: bool,
                 openmp_threads: int | None = None, all_pools: bool = False, run: str = "",
                 oof_sink: OofSink | None = None) -> None:
        self.data, self.task, self.metric, self.candidates = data, task, metric, candidates
        self.seed, self.schema, self.progress, self.prune = seed, schema, progress, prune
        self.openmp_threads, self.all_pools, self.run, self.oof_sink = openmp_threads, all_pools, run, oof_sink

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        trial.set_user_attr("aimaas.worker", {"run": self.run, "pid": os.getpid()})
        try:
            if self.openmp_threads is None:
                return self._run(trial, optuna)
            from threadpoolctl import threadpool_limits

            # OpenMP's thread count is per calling thread: this caps only the trials of this worker thread. BLAS
            # pools are process-wide, so they are capped only when trials do not run in several threads.
            with threadpool_limits(limits=self.openmp_threads, user_api=None if self.all_pools else "openmp"):
                return self._run(trial, optuna)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            trial.set_user_attr("aimaas.error", error_info(exc))
            with self.progress.lock:
                self.progress.last_error = exc
            raise

    def _run(self, trial: optuna.Trial, optuna: Any) -> float:
        name = trial.suggest_categorical(TRAINER_PARAM, list(self.candidates))
        cls = self.candidates[str(name)]
        params = cls.search_space(_Prefixed(trial, str(name)))
        scores: list[float] = []
        oof = self.data.new_oof() if self.oof_sink is not None else None
        for step, (X_fit, y_fit, X_score, y_score, rows) in enumerate(self.data.splits(), start=1):
            reason = self.progress.interruption()
            if reason is not None:
                trial.set_user_attr("interrupted", reason)
                trial.set_user_attr("fold_scores", scores)
                raise optuna.TrialPruned(f"stopped: {reason}")
            trainer = cls(task=self.task, random_state=self.seed, **params)
            trainer.fit(X_fit, y_fit, schema=self.schema)
            value = score(self.metric, trainer, X_score, y_score)
            if not math.isfinite(value):
                raise ValueError(f"{self.metric} is undefined on fold {step}.")
            if oof is not None:
                oof.add(trainer, X_score, rows)
            scores.append(value)
            mean = float(np.mean(scores))
            trial.report(mean, step)
            if self.prune and step < self.data.n_steps and trial.should_prune():
                trial.set_user_attr("fold_scores", scores)
                raise optuna.TrialPruned(f"pruned after {step} fold(s)")
        trial.set_user_attr("fold_scores", scores)
        if oof is not None and self.oof_sink is not None:
            self.oof_sink(trial.number, oof.result())
        return float(np.mean(scores))


def error_info(exc: BaseException) -> dict[str, Any]:
    """A JSON-safe description of an error, enough to raise it again in another process
    (:func:`rebuild_error`)."""
    return {"type": type(exc).__name__, "message": str(exc)[:1000], "code": getattr(exc, "code", None),
            "param": getattr(exc, "param", None), "aimaas": isinstance(exc, AimaasError)}


class RemoteError(Exception):
    """An error raised in a worker process that is not an :class:`AimaasError`; ``kind`` is its type name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def rebuild_error(info: dict[str, Any]) -> BaseException:
    """The exception :func:`error_info` described: the same :class:`AimaasError` class (code and param
    kept) when it is one, else a :class:`RemoteError`."""
    import aimaas.errors

    cls = getattr(aimaas.errors, str(info.get("type")), None)
    if info.get("aimaas") and isinstance(cls, type) and issubclass(cls, AimaasError):
        return cls(str(info.get("message")), code=info.get("code"), param=info.get("param"))
    return RemoteError(str(info.get("type")), str(info.get("message")))


class Monitor:
    """The study callback run after every trial: keeps the best so far, calls ``report`` (serialised with a
    lock, so it may be called from ``n_jobs`` threads) and stops the study on cancellation or at the time
    budget. A parent process that only watches the storage calls :meth:`observe` for each finished trial."""

    def __init__(self, progress: _Progress, *, maximize: bool, report: Report | None, started: float,
                 row: Callable[[Any], dict[str, Any]], best: tuple[int, float] | None,
                 after: Callable[[], None] | None = None) -> None:
        self.progress, self.maximize, self.report, self.started, self.row = progress, maximize, report, started, row
        self.best, self.after = best, after
        self.finished = 0

    def observe(self, trial: optuna.trial.FrozenTrial) -> None:
        """Count one finished trial, keep the best and call ``report``; then ``after()`` (housekeeping)."""
        from optuna.trial import TrialState

        with self.progress.lock:
            self.finished += 1
            if trial.state == TrialState.COMPLETE and trial.value is not None:
                self.progress.completed += 1
                value = float(trial.value)
                if self.best is None or (value > self.best[1] if self.maximize else value < self.best[1]):
                    self.best = (trial.number, value)
            if self.report is not None:
                event = {"event": "trial", **self.row(trial), "best_trial": self.best[0] if self.best else None,
                         "best_score": self.best[1] if self.best else None, "finished": self.finished,
                         "elapsed_s": round(time.monotonic() - self.started, 3)}
                self.report(event)
            if self.after is not None:
                self.after()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.observe(trial)
        if self.progress.interruption() is not None:
            study.stop()


PRUNERS = ("median", "successive_halving", "none")


def make_sampler(seed: int, *, parallel: bool = False) -> optuna.samplers.BaseSampler:
    """The study's sampler: seeded multivariate TPE with group decomposition (which models a conditional
    space well). ``parallel`` adds the constant liar: a running trial counts as a bad one, so processes
    sampling at the same moment do not all propose the same point."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group=True, constant_liar
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=parallel)


def make_pruner(name: str, n_steps: int) -> optuna.pruners.BasePruner:
    """The pruner called ``name`` (one of :data:`PRUNERS`) for trials of ``n_steps`` folds."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min(2, n_steps))
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def new_progress(deadline: float | None, should_stop: Callable[[], bool] | None, completed: int,
                 external: Callable[[], str | None] | None = None) -> _Progress:
    """Shared state for one search (one ``optimize`` call, or one worker process)."""
    return _Progress(deadline, should_stop, completed, external)
