"""The Optuna objective of a tuning study and the callback that runs after each trial.

The search space is hierarchical: a ``trainer`` categorical first, then that trainer's own
``search_space(trial)``. A trainer's hyperparameters are stored in the study as ``"<trainer>.<name>"``, so
two trainers may use one name with different ranges (``n_estimators``, ``learning_rate``) without clashing.
optuna is imported by the functions that need it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from aimaas.training.base import Report, TaskKind, Trainer
from aimaas.training.tuning_data import TuningData, score

if TYPE_CHECKING:
    import optuna

__all__ = ["Monitor", "Objective", "default_params", "prefixed", "unprefixed"]

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
    """State shared by the objective and the monitor across threads."""

    def __init__(self, deadline: float | None, should_stop: Callable[[], bool] | None, completed: int) -> None:
        self.lock = threading.Lock()
        self.deadline, self.should_stop = deadline, should_stop
        self.completed = completed
        self.cancelled = self.timed_out = False
        self.last_error: BaseException | None = None

    def interruption(self) -> str | None:
        """``"cancelled"`` or ``"timeout"`` when the running trial should stop now, else None. A trial is
        stopped at the time budget only once another trial has completed, so there is always a result."""
        if self.cancelled or (self.should_stop is not None and self.should_stop()):
            self.cancelled = True
            return "cancelled"
        if self.deadline is not None and time.monotonic() >= self.deadline and self.completed > 0:
            self.timed_out = True
            return "timeout"
        return None


class Objective:
    """Draws a trainer and its hyperparameters, fits one model per fold and returns the mean fold score.

    After each fold the running mean is reported (``trial.report(mean, folds_done)``) and, except after the
    last fold, the pruner may stop the trial. Between folds the trial also stops (as pruned, with user attr
    ``interrupted``) on cancellation or at the time budget. An exception is recorded in user attr ``error``
    and re-raised; the study marks the trial failed and goes on.
    """

    def __init__(self, data: TuningData, *, task: TaskKind, metric: str, candidates: dict[str, type[Trainer]],
                 seed: int, schema: list[dict[str, Any]] | None, progress: _Progress, prune: bool,
                 openmp_threads: int | None = None) -> None:
        self.data, self.task, self.metric, self.candidates = data, task, metric, candidates
        self.seed, self.schema, self.progress, self.prune = seed, schema, progress, prune
        self.openmp_threads = openmp_threads

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        try:
            if self.openmp_threads is None:
                return self._run(trial, optuna)
            from threadpoolctl import threadpool_limits

            # OpenMP's thread count is per calling thread: this caps only the trials of this worker thread
            with threadpool_limits(limits=self.openmp_threads, user_api="openmp"):
                return self._run(trial, optuna)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            with self.progress.lock:
                self.progress.last_error = exc
            raise

    def _run(self, trial: optuna.Trial, optuna: Any) -> float:
        name = trial.suggest_categorical(TRAINER_PARAM, list(self.candidates))
        cls = self.candidates[str(name)]
        params = cls.search_space(_Prefixed(trial, str(name)))
        scores: list[float] = []
        for step, (X_fit, y_fit, X_score, y_score) in enumerate(self.data.splits(), start=1):
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
            scores.append(value)
            mean = float(np.mean(scores))
            trial.report(mean, step)
            if self.prune and step < self.data.n_steps and trial.should_prune():
                trial.set_user_attr("fold_scores", scores)
                raise optuna.TrialPruned(f"pruned after {step} fold(s)")
        trial.set_user_attr("fold_scores", scores)
        return float(np.mean(scores))


class Monitor:
    """The study callback run after every trial: keeps the best so far, calls ``report`` (serialised with a
    lock, so it may be called from ``n_jobs`` threads) and stops the study on cancellation or at the time
    budget."""

    def __init__(self, progress: _Progress, *, maximize: bool, report: Report | None, started: float,
                 row: Callable[[Any], dict[str, Any]], best: tuple[int, float] | None) -> None:
        self.progress, self.maximize, self.report, self.started, self.row = progress, maximize, report, started, row
        self.best = best
        self.finished = 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
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
        if self.progress.interruption() is not None:
            study.stop()


def new_progress(deadline: float | None, should_stop: Callable[[], bool] | None, completed: int) -> _Progress:
    """Shared state for one ``optimize`` call."""
    return _Progress(deadline, should_stop, completed)
