"""AutoML tuning: one Optuna study over the trainers of a task and their hyperparameters.

:func:`tune` searches a hierarchical space (``trainer`` first, then that trainer's ``search_space``) with a
seeded TPE sampler, scores each trial by cross-validation (or on a given validation split), prunes bad
trials on their running fold scores, refits the best configuration on all tuning rows and returns a
:class:`TuningResult`. The caller then scores it once on the test split with :func:`evaluate_on_test`.
optuna is imported by :func:`tune`, so importing this module stays cheap. See docs/training.md.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from aimaas.errors import AimaasError, Conflict, InvalidInput, StorageError
from aimaas.training.base import FitResult, Report, TaskKind, Trainer, get_trainer, trainers_for
from aimaas.training.tuning_data import (
    DEFAULT_METRICS,
    METRICS,
    Direction,
    TuningData,
    metric_direction,
    resolve_metric,
)
from aimaas.training.tuning_objective import Monitor, Objective, default_params, new_progress, unprefixed
from aimaas.training.tuning_summary import importances, trial_row

if TYPE_CHECKING:
    import optuna

__all__ = ["DEFAULT_METRICS", "METRICS", "PRUNERS", "TuningResult", "evaluate_on_test", "tune"]

PRUNERS = ("median", "successive_halving", "none")
_CHEAP_FIRST = frozenset({"logistic_regression", "linear_regression"})


@dataclass(frozen=True)
class TuningResult:
    """The outcome of :func:`tune`. Everything but ``trainer`` is JSON-safe (``to_dict`` leaves it out).

    ``best_score`` is the best trial's mean cross-validation score (or validation-split score) in
    ``metric``; ``trainer`` is that configuration refitted on every tuning row and ``fit`` its
    :class:`FitResult`. ``trials`` has one row per trial (``number, trainer, params, score, state,
    duration_s, note``); ``stop_reason`` is ``"n_trials"``, ``"timeout"`` or ``"cancelled"``.
    """

    task: TaskKind
    metric: str
    direction: str
    best_trainer: str
    best_params: dict[str, Any]
    best_score: float
    best_trial: int
    trainer: Trainer
    fit: FitResult
    trials: list[dict[str, Any]]
    importances: dict[str, Any]
    cv: dict[str, Any]
    study_name: str
    stop_reason: str
    seed: int
    search_seconds: float
    refit_seconds: float
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-safe dict of everything but the fitted ``trainer``."""
        return {
            "task": self.task.value, "metric": self.metric, "direction": self.direction,
            "best_trainer": self.best_trainer, "best_params": dict(self.best_params), "best_score": self.best_score,
            "best_trial": self.best_trial, "fit": self.fit.to_dict(), "trials": [dict(r) for r in self.trials],
            "importances": self.importances, "cv": dict(self.cv), "study_name": self.study_name,
            "stop_reason": self.stop_reason, "seed": self.seed, "search_seconds": self.search_seconds,
            "refit_seconds": self.refit_seconds, "counts": dict(self.counts),
        }


def tune(X: pd.DataFrame, y: Any, *, task: TaskKind | str, schema: list[dict[str, Any]] | None = None,
         metric: str | None = None, trainers: Sequence[str | type[Trainer]] | None = None,
         n_trials: int | None = None, timeout_s: float | None = None, cv_folds: int = 5,
         X_valid: pd.DataFrame | None = None, y_valid: Any = None, seed: int = 0, n_jobs: int = 1,
         storage: str | optuna.storages.BaseStorage | None = None, study_name: str | None = None,
         report: Report | None = None, should_stop: Callable[[], bool] | None = None, pruner: str = "median",
         try_defaults: bool = True) -> TuningResult:
    """Search trainers and hyperparameters for ``task`` and refit the best on all tuning rows.

    * Budget: ``n_trials`` and/or ``timeout_s`` (seconds of search; at least one, each > 0). The time budget
      is checked between folds, so the search ends within about one fold fit of it; the refit comes after.
    * Scoring: stratified (classification) or shuffled k-fold with ``cv_folds`` seeded folds on ``X``/``y``,
      or, given ``X_valid``/``y_valid``, fit on ``X`` and score on them. ``metric`` defaults to f1_macro
      (classification) or r2 (regression); see ``tuning_data.METRICS``.
    * ``trainers``: names or Trainer classes (default: every registered trainer for the task). With
      ``try_defaults`` the first trials are each trainer's defaults (where its search space holds them), the
      linear models first.
    * ``pruner``: "median" (MedianPruner after 2 folds, once 5 trials completed), "successive_halving" or
      "none", applied to the running mean of fold scores.
    * ``storage``: None (in memory), an Optuna RDB URL (``sqlite:///...``, ``postgresql+psycopg://...``) or an
      Optuna storage; with ``study_name`` an existing study is resumed. ``n_jobs`` > 1 runs trials in
      threads (not reproducible), each capping its OpenMP pool at ``cpu_count // n_jobs``; processes sharing
      one study through the storage come with the executor.
    * ``report(event)`` gets ``{"event": "trial", number, trainer, params, score, state, duration_s, note,
      best_trial, best_score, finished, elapsed_s}`` after each trial; raising from it aborts the search.
      ``should_stop()`` returning True stops it gracefully: the best completed trial is still refitted.
    * Failing trials are recorded (state "fail", note = the error) and the search goes on; when no trial
      completes, the last error is raised (an :class:`AimaasError` as is; others as ``tuning_failed``).
    """
    kind = _task(task)
    metric = resolve_metric(metric, kind)
    _check_budget(n_trials, timeout_s, n_jobs, pruner)
    candidates = _candidates(trainers, kind)
    data = TuningData.build(X, y, task=kind, schema=schema, cv_folds=cv_folds, seed=seed, X_valid=X_valid,
                            y_valid=y_valid)
    direction = metric_direction(metric)
    study = _study(storage, study_name, direction=direction, seed=seed, pruner=pruner, n_steps=data.n_steps)
    _claim(study, kind, metric)
    if try_defaults:  # cheap linear models first: the first trial always runs to the end, whatever the budget
        for name in sorted(candidates, key=lambda n: n not in _CHEAP_FIRST):
            study.enqueue_trial(default_params(name, candidates[name]), skip_if_exists=True)

    started = time.monotonic()
    existing = _completed(study)
    progress = new_progress(started + timeout_s if timeout_s is not None else None, should_stop, len(existing))
    best = _best(existing, direction)
    objective = Objective(data, task=kind, metric=metric, candidates=candidates, seed=seed, schema=schema,
                          progress=progress, prune=pruner != "none" and data.n_steps > 1,
                          openmp_threads=max(1, (os.cpu_count() or 1) // n_jobs) if n_jobs > 1 else None)
    monitor = Monitor(progress, maximize=direction == "maximize", report=report, started=started, row=trial_row,
                      best=best)
    study.optimize(objective, n_trials=n_trials, timeout=timeout_s, n_jobs=n_jobs, catch=(Exception,),
                   callbacks=[monitor])
    search_seconds = time.monotonic() - started

    from optuna.trial import TrialState

    completed = _completed(study)
    if not completed:
        if progress.cancelled:
            raise Conflict("Tuning was cancelled before any trial completed.", code="tuning_cancelled")
        error = progress.last_error
        if isinstance(error, AimaasError):
            raise error
        if error is None:
            raise AimaasError("No trial completed within the budget.", code="tuning_failed")
        raise AimaasError(f"No trial completed; the last error was {type(error).__name__}: {error}"[:1000],
                          code="tuning_failed") from error
    best_trial = study.best_trial
    name = str(best_trial.params["trainer"])
    params = unprefixed(name, best_trial.params)
    refit_started = time.monotonic()
    cls = candidates[name] if name in candidates else get_trainer(name)  # a resumed study may hold others
    fitted = cls(task=kind, random_state=seed, **params)
    X_all, y_all = data.all_rows()
    fit = fitted.fit(X_all, y_all, schema=schema)
    refit_seconds = time.monotonic() - refit_started
    trials = [trial_row(t) for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    counts: dict[str, int] = {}
    for row in trials:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    stop = "cancelled" if progress.cancelled else "timeout" if progress.timed_out or (
        timeout_s is not None and search_seconds >= timeout_s) else "n_trials"
    return TuningResult(
        task=kind, metric=metric, direction=direction, best_trainer=name, best_params=params,
        best_score=float(best_trial.value or 0.0), best_trial=best_trial.number, trainer=fitted, fit=fit,
        trials=trials, importances=importances(study), cv=data.cv, study_name=study.study_name, stop_reason=stop,
        seed=seed, search_seconds=round(search_seconds, 3), refit_seconds=round(refit_seconds, 3),
        counts=counts,
    )


def evaluate_on_test(result: TuningResult, X_test: pd.DataFrame, y_test: Any) -> dict[str, Any]:
    """Score the refitted model once on the held-out test rows: the full ``evaluate_classification`` /
    ``evaluate_regression`` dict, plus ``"metric"`` (the tuning metric) and ``"score"`` (its test value)."""
    from aimaas.training.evaluation import evaluate_classification, evaluate_regression
    from aimaas.training.validation import prepare_target, target_name

    trainer = result.trainer
    truth = prepare_target(y_test, result.task, n_rows=len(X_test), name=target_name(y_test), check_classes=False)
    if result.task is TaskKind.CLASSIFICATION:
        out = evaluate_classification(truth, trainer.predict(X_test), trainer.predict_proba(X_test),
                                      trainer.classes or [])
    else:
        out = evaluate_regression(truth, trainer.predict(X_test))
    return {"metric": result.metric, "score": out.get(result.metric), **out}


# -- helpers ---------------------------------------------------------------------------------------
def _task(task: TaskKind | str) -> TaskKind:
    try:
        return TaskKind(task)
    except ValueError:
        raise InvalidInput(f"Unknown task {task!r}; use classification or regression.", param="task") from None


def _check_budget(n_trials: int | None, timeout_s: float | None, n_jobs: int, pruner: str) -> None:
    if n_trials is None and timeout_s is None:
        raise InvalidInput("Give a budget: n_trials, timeout_s or both.", param="n_trials")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise InvalidInput(f"n_trials must be a positive integer; got {n_trials!r}.", param="n_trials")
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float)
                                  or not timeout_s > 0):
        raise InvalidInput(f"timeout_s must be a positive number of seconds; got {timeout_s!r}.", param="timeout_s")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise InvalidInput(f"n_jobs must be a positive integer; got {n_jobs!r}.", param="n_jobs")
    if pruner not in PRUNERS:
        raise InvalidInput(f"Unknown pruner {pruner!r}; use one of {', '.join(PRUNERS)}.", param="pruner")


def _candidates(trainers: Sequence[str | type[Trainer]] | None, task: TaskKind) -> dict[str, type[Trainer]]:
    entries: Sequence[str | type[Trainer]] = trainers_for(task) if trainers is None else trainers
    if isinstance(entries, str) or not entries:
        raise InvalidInput("trainers must be a non-empty list of trainer names.", param="trainers")
    out: dict[str, type[Trainer]] = {}
    for entry in entries:
        cls = get_trainer(entry) if isinstance(entry, str) else entry
        name = cls.name or cls.__name__
        if task not in cls.tasks:
            raise InvalidInput(f"Trainer {name!r} does not do {task.value}.", param="trainers")
        if name in out:
            raise InvalidInput(f"Trainer {name!r} is listed twice.", param="trainers")
        out[name] = cls
    return out


def _study(storage: Any, study_name: str | None, *, direction: Direction, seed: int, pruner: str,
           n_steps: int) -> optuna.Study:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group=True
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    pruners: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min(2, n_steps)),
        "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        "none": optuna.pruners.NopPruner,
    }
    if isinstance(storage, str):
        kwargs = {"connect_args": {"timeout": 30}} if storage.startswith("sqlite") else {}
        try:
            storage = optuna.storages.RDBStorage(storage, engine_kwargs=kwargs)
        except Exception as exc:  # the URL may hold a password: never echo it
            raise StorageError(f"Cannot open the Optuna storage ({type(exc).__name__}: {exc})"[:500] + ". Optuna "
                               "needs a database of its own: its tables and its Alembic stamp clash with the "
                               "aimaas metadata tables.", code="tuning_storage") from exc
    return optuna.create_study(storage=storage, sampler=sampler, pruner=pruners[pruner](), study_name=study_name,
                               direction=direction, load_if_exists=True)


def _claim(study: optuna.Study, task: TaskKind, metric: str) -> None:
    """Tag a new study with its task and metric; refuse to resume a study made for others."""
    attrs = study.user_attrs
    known = attrs.get("aimaas.task"), attrs.get("aimaas.metric")
    if known == (None, None):
        study.set_user_attr("aimaas.task", task.value)
        study.set_user_attr("aimaas.metric", metric)
    elif known != (task.value, metric):
        raise InvalidInput(f"Study {study.study_name!r} tunes {known[0]} on {known[1]}, not {task.value} on "
                           f"{metric}; use another study_name.", param="study_name")


def _completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _best(trials: list[optuna.trial.FrozenTrial], direction: str) -> tuple[int, float] | None:
    scored = [(t.number, float(t.value)) for t in trials if t.value is not None]
    if not scored:
        return None
    pick = max if direction == "maximize" else min
    return pick(scored, key=lambda item: item[1])

