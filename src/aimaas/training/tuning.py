"""AutoML tuning: one Optuna study over the trainers of a task and their hyperparameters.

:func:`tune` searches a hierarchical space (``trainer`` first, then that trainer's ``search_space``) with a
seeded TPE sampler, scores each trial by cross-validation (or on a given validation split), prunes bad
trials on their running fold scores, then builds the final model: the best trial refitted on all tuning rows,
or, when averaging several trials' out-of-fold predictions scores better, an ``ensemble`` of them. The trials
run in this process (``n_jobs`` threads) or in ``n_workers`` processes sharing the study (tuning_parallel).
The caller scores the result once on the test split with :func:`evaluate_on_test`. optuna is imported by
:func:`tune`, so importing this module stays cheap. See docs/training.md.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from aimaas.errors import AimaasError, Conflict, InvalidInput
from aimaas.training.base import FitResult, Report, TaskKind, Trainer, get_trainer, trainers_for
from aimaas.training.tuning_data import (
    DEFAULT_METRICS,
    METRICS,
    Direction,
    TuningData,
    metric_direction,
    resolve_metric,
)
from aimaas.training.tuning_objective import (
    PRUNERS,
    Monitor,
    Objective,
    default_params,
    make_pruner,
    make_sampler,
    new_progress,
    rebuild_error,
    unprefixed,
)
from aimaas.training.tuning_parallel import ParallelOutcome, open_storage, run_workers, trainer_refs, trial_threads
from aimaas.training.tuning_summary import (
    POOL_LIMIT,
    SIMPLE_TRAINERS,
    OofStore,
    ensemble_pool,
    final_model,
    importances,
    trial_row,
)

if TYPE_CHECKING:
    import optuna

__all__ = ["AUTO_EXCLUDED", "DEFAULT_METRICS", "METRICS", "PRUNERS", "TuningResult", "evaluate_on_test",
           "trial_threads", "tune"]

AUTO_EXCLUDED = frozenset({"mlp", "ensemble"})
"""Trainers left out when ``trainers`` is None: ``mlp`` (a neural net: one trial costs as much as dozens of
tree or linear ones, and on tables it rarely wins) and ``ensemble`` (built from the trials, never searched).
Name ``mlp`` in ``trainers`` to search it too."""
_OOF_MAX_VALUES = 4_000_000  # out-of-fold predictions kept per trial (16 MB): above, no ensemble


@dataclass(frozen=True)
class TuningResult:
    """The outcome of :func:`tune`. Everything but ``trainer`` is JSON-safe (``to_dict`` leaves it out).

    ``best_*`` describe the best trial: ``best_score`` is its mean cross-validation score (or validation-split
    score) in ``metric``. ``trainer`` is the final model refitted on every tuning row and ``fit`` its
    :class:`FitResult`: the configuration of trial ``final_trial`` (the best one, or a simpler one within one
    standard error of it: ``tuning_summary.choose_single``), or an ``ensemble`` trainer when ``ensemble``
    says one was used (``{"used", "members": [{"trial", "trainer", "params", "weight"}], "score",
    "single_score", "confidence", "candidates"}``: out-of-fold scores of the ensemble and of the single
    model, and the share of bootstrap resamples the ensemble won). ``trials`` has one row per trial
    (``number, trainer, params, score, state, duration_s, note``); ``stop_reason`` is ``"n_trials"``,
    ``"timeout"``, ``"cancelled"`` or ``"workers_lost"``. ``startup_seconds`` runs from the call to the first
    trial starting; ``workers`` lists the worker processes (``n_workers`` > 1).
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
    final_trial: int | None = None
    ensemble: dict[str, Any] | None = None
    startup_seconds: float | None = None
    workers: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-safe dict of everything but the fitted ``trainer``."""
        return {
            "task": self.task.value, "metric": self.metric, "direction": self.direction,
            "best_trainer": self.best_trainer, "best_params": dict(self.best_params), "best_score": self.best_score,
            "best_trial": self.best_trial, "fit": self.fit.to_dict(), "trials": [dict(r) for r in self.trials],
            "importances": self.importances, "cv": dict(self.cv), "study_name": self.study_name,
            "stop_reason": self.stop_reason, "seed": self.seed, "search_seconds": self.search_seconds,
            "refit_seconds": self.refit_seconds, "counts": dict(self.counts), "final_trial": self.final_trial,
            "ensemble": self.ensemble,
            "startup_seconds": self.startup_seconds, "workers": [dict(w) for w in self.workers],
        }


def tune(X: pd.DataFrame, y: Any, *, task: TaskKind | str, schema: list[dict[str, Any]] | None = None,
         metric: str | None = None, trainers: Sequence[str | type[Trainer]] | None = None,
         n_trials: int | None = None, timeout_s: float | None = None, cv_folds: int = 5,
         cv_repeats: int | None = None, X_valid: pd.DataFrame | None = None, y_valid: Any = None, seed: int = 0,
         n_jobs: int = 1, n_workers: int = 1, storage: str | optuna.storages.BaseStorage | None = None,
         study_name: str | None = None, report: Report | None = None,
         should_stop: Callable[[], bool] | None = None, pruner: str = "median", try_defaults: bool = True,
         ensemble: bool = True) -> TuningResult:
    """Search trainers and hyperparameters for ``task`` and refit the best (or an ensemble) on all tuning rows.

    * Budget: ``n_trials`` and/or ``timeout_s`` (seconds of search; at least one, each > 0). The time budget
      is checked between folds, so the search ends within about one fold fit of it; the final fit comes after.
    * Scoring: stratified (classification) or shuffled k-fold with ``cv_folds`` seeded folds on ``X``/``y``,
      repeated ``cv_repeats`` times with other shuffles (None: 3 up to 500 rows, 2 up to 1,000, else 1),
      or, given ``X_valid``/``y_valid``, fit on ``X`` and score on them. ``metric`` defaults to f1_macro
      (classification) or r2 (regression); see ``tuning_data.METRICS``.
    * ``trainers``: names or Trainer classes (default: every registered tabular trainer for the task but
      :data:`AUTO_EXCLUDED`). With ``try_defaults`` the first trials are each trainer's defaults (where its
      search space holds them), the linear models first.
    * ``pruner``: "median" (MedianPruner after 2 folds, once 5 trials completed), "successive_halving" or
      "none", applied to the running mean of fold scores.
    * Final model: the simplest trial within one standard error of the best (defaults before tuned
      configurations, linear models first); with ``ensemble``, each completed trial's out-of-fold predictions
      are kept and a weighted average of the best trials (greedy ensemble selection, at most 3 per trainer,
      12 in all; registered trainers only) replaces that trial when it beats it out of fold on at least 90%
      of bootstrap resamples.
    * ``storage``: None (in memory; with workers a journal file in a temporary directory), an Optuna RDB URL
      (``sqlite:///...``, ``postgresql+psycopg://...``; a database of its own) or an Optuna storage (one
      process only); with ``study_name`` an existing study is resumed.
    * Parallelism: ``n_jobs`` > 1 runs trials in threads, each capping its OpenMP pool at ``cpu_count //
      n_jobs``; ``n_workers`` > 1 runs them in that many processes sharing the study (not both). Neither is
      reproducible: the order in which trials finish steers the sampler.
    * ``report(event)`` gets ``{"event": "trial", number, trainer, params, score, state, duration_s, note,
      best_trial, best_score, finished, elapsed_s}`` after each trial (with workers, from this process as it
      sees trials finish); raising from it aborts the search. ``should_stop()`` returning True stops it
      gracefully: the best completed trial is still refitted (workers stop within ~2 s).
    * Failing trials are recorded (state "fail", note = the error) and the search goes on; so does a worker
      process that dies (its running trial fails). When no trial completes, the last error is raised (an
      :class:`AimaasError` as is; others as ``tuning_failed``).
    """
    called = dt.datetime.now()
    kind = _task(task)
    metric = resolve_metric(metric, kind)
    _check_budget(n_trials, timeout_s, n_jobs, n_workers, pruner)
    if n_workers > 1 and storage is not None and not isinstance(storage, str):
        raise InvalidInput("With n_workers > 1, give storage as a database URL (or None): the worker processes "
                           "open it themselves.", param="storage")
    candidates = _candidates(trainers, kind)
    data = TuningData.build(X, y, task=kind, schema=schema, cv_folds=cv_folds, seed=seed, X_valid=X_valid,
                            y_valid=y_valid, cv_repeats=cv_repeats)
    direction = metric_direction(metric)
    maximize = direction == "maximize"
    workers = min(n_workers, n_trials or n_workers)
    refs = trainer_refs(candidates) if workers > 1 else {}  # before any study exists: a class may not travel
    threads = trial_threads(len(data.X), n_jobs * workers)
    with tempfile.TemporaryDirectory(prefix="aimaas-tune-") as tmp:
        workdir = Path(tmp)
        store, reopen = open_storage(storage, workdir if workers > 1 else None)
        study = _study(store, study_name, direction=direction, seed=seed, pruner=pruner, n_steps=data.n_steps)
        _claim(study, kind, metric)
        if try_defaults:  # cheap linear models first: the first trial always runs to the end, whatever the budget
            for name in sorted(candidates, key=lambda n: n not in SIMPLE_TRAINERS):
                study.enqueue_trial(default_params(name, candidates[name]), skip_if_exists=True)
        oof = OofStore(workdir / "oof") if ensemble and math.prod(data.oof_shape()) <= _OOF_MAX_VALUES else None

        def prune_oof(finished: set[int]) -> None:  # bounds the disk: at most about twice the pool's files
            if oof is not None and len(oof.numbers()) > 2 * POOL_LIMIT:
                done = _completed(study)  # the pool, and the defaults (choose_single may pick one)
                keep = set(ensemble_pool(done, maximize=maximize)) | {
                    t.number for t in done if t.system_attrs.get("fixed_params")}
                oof.prune(keep, finished)

        started = time.monotonic()
        existing = _completed(study)
        before = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
        progress = new_progress(started + timeout_s if timeout_s is not None else None, should_stop, len(existing))
        monitor = Monitor(progress, maximize=maximize, report=report, started=started, row=trial_row,
                          best=_best(existing, direction))
        run = uuid.uuid4().hex[:12]
        outcome = ParallelOutcome()
        if workers > 1:
            assert reopen is not None
            spec = {"run": run, "storage": reopen, "study_name": study.study_name, "seed": seed, "pruner": pruner,
                    "prune": pruner != "none" and data.n_steps > 1, "task": kind.value, "metric": metric,
                    "schema": schema, "trainers": refs, "n_trials": n_trials,
                    "oof": oof is not None, "verbosity": _verbosity(), "threads": threads, **data.save(workdir)}
            outcome = run_workers(study, store, spec=spec, n_workers=workers, workdir=workdir, progress=progress,
                                  monitor=monitor, prune_oof=prune_oof)
        else:
            objective = Objective(data, task=kind, metric=metric, candidates=candidates, seed=seed, schema=schema,
                                  progress=progress, prune=pruner != "none" and data.n_steps > 1,
                                  openmp_threads=threads, all_pools=n_jobs == 1, run=run,
                                  oof_sink=oof.save if oof is not None else None)
            monitor.after = (lambda: prune_oof({t.number for t in study.get_trials(deepcopy=False)
                                                if t.state.is_finished()})) if oof is not None else None
            study.optimize(objective, n_trials=n_trials, timeout=timeout_s, n_jobs=n_jobs, catch=(Exception,),
                           callbacks=[monitor])
        search_seconds = time.monotonic() - started
        _raise_without_result(study, progress, outcome, run)
        refit_started = time.monotonic()
        fitted, fit, final_trial, chosen = final_model(study, data, candidates, task=kind, metric=metric,
                                                       seed=seed, schema=schema, oof=oof, maximize=maximize,
                                                       threads=trial_threads(len(data.X), 1))
        refit_seconds = time.monotonic() - refit_started
        return _result(study, data, kind=kind, metric=metric, direction=direction, fitted=fitted, fit=fit,
                       final_trial=final_trial, chosen=chosen, progress=progress, outcome=outcome,
                       timeout_s=timeout_s, seed=seed, search_seconds=search_seconds, refit_seconds=refit_seconds,
                       before=before, called=called)


def _raise_without_result(study: optuna.Study, progress: Any, outcome: ParallelOutcome, run: str) -> None:
    """Raise the reason no trial completed: cancellation, else the last trial (or worker) error."""
    if _completed(study):
        return
    if progress.cancelled or outcome.stop == "cancelled":
        raise Conflict("Tuning was cancelled before any trial completed.", code="tuning_cancelled")
    error = progress.last_error
    if error is None:  # a worker's trial: rebuilt from what it recorded
        failed = [t for t in study.get_trials(deepcopy=False) if "aimaas.error" in t.user_attrs
                  and (t.user_attrs.get("aimaas.worker") or {}).get("run") == run]
        failed.sort(key=lambda t: (t.datetime_complete or dt.datetime.min, t.number))
        error = rebuild_error(failed[-1].user_attrs["aimaas.error"]) if failed else (
            outcome.errors[-1] if outcome.errors else None)
    if isinstance(error, AimaasError):
        raise error
    if error is None:
        lost = "; ".join(f"worker {w['index']} {w['note']}" for w in outcome.workers if w["note"])
        raise AimaasError(f"No trial completed {f'({lost})' if lost else 'within the budget'}."[:1000],
                          code="tuning_failed")
    kind = getattr(error, "kind", type(error).__name__)
    raise AimaasError(f"No trial completed; the last error was {kind}: {error}"[:1000],
                      code="tuning_failed") from error


def _result(study: optuna.Study, data: TuningData, *, kind: TaskKind, metric: str, direction: str, fitted: Trainer,
            fit: FitResult, final_trial: int, chosen: dict[str, Any] | None, progress: Any, outcome: ParallelOutcome,
            timeout_s: float | None, seed: int, search_seconds: float, refit_seconds: float, before: set[int],
            called: dt.datetime) -> TuningResult:
    from optuna.trial import TrialState

    best = study.best_trial
    name = str(best.params["trainer"])
    all_trials = study.get_trials(deepcopy=False)
    trials = [trial_row(t) for t in all_trials if t.state != TrialState.WAITING]
    counts: dict[str, int] = {}
    for row in trials:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    starts = [t.datetime_start for t in all_trials if t.number not in before and t.datetime_start is not None]
    if progress.cancelled or outcome.stop == "cancelled":
        stop = "cancelled"
    elif progress.timed_out or outcome.stop == "timeout" or (timeout_s is not None and search_seconds >= timeout_s):
        stop = "timeout"
    else:
        stop = outcome.stop or "n_trials"
    return TuningResult(
        task=kind, metric=metric, direction=direction, best_trainer=name, best_params=unprefixed(name, best.params),
        best_score=float(best.value or 0.0), best_trial=best.number, trainer=fitted, fit=fit, trials=trials,
        importances=importances(study), cv=data.cv, study_name=study.study_name, stop_reason=stop, seed=seed,
        search_seconds=round(search_seconds, 3), refit_seconds=round(refit_seconds, 3), counts=counts,
        final_trial=final_trial, ensemble=chosen,
        startup_seconds=round((min(starts) - called).total_seconds(), 3) if starts else None,
        workers=outcome.workers,
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


def _check_budget(n_trials: int | None, timeout_s: float | None, n_jobs: int, n_workers: int, pruner: str) -> None:
    if n_trials is None and timeout_s is None:
        raise InvalidInput("Give a budget: n_trials, timeout_s or both.", param="n_trials")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise InvalidInput(f"n_trials must be a positive integer; got {n_trials!r}.", param="n_trials")
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float)
                                  or not timeout_s > 0):
        raise InvalidInput(f"timeout_s must be a positive number of seconds; got {timeout_s!r}.", param="timeout_s")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise InvalidInput(f"n_jobs must be a positive integer; got {n_jobs!r}.", param="n_jobs")
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or not 1 <= n_workers <= 64:
        raise InvalidInput(f"n_workers must be an integer from 1 to 64; got {n_workers!r}.", param="n_workers")
    if n_workers > 1 and n_jobs > 1:
        raise InvalidInput("Use n_workers (processes) or n_jobs (threads), not both.", param="n_jobs")
    if pruner not in PRUNERS:
        raise InvalidInput(f"Unknown pruner {pruner!r}; use one of {', '.join(PRUNERS)}.", param="pruner")


def _candidates(trainers: Sequence[str | type[Trainer]] | None, task: TaskKind) -> dict[str, type[Trainer]]:
    entries: Sequence[str | type[Trainer]] = (
        [n for n in trainers_for(task, "tabular") if n not in AUTO_EXCLUDED] if trainers is None else trainers)
    if isinstance(entries, str) or not entries:
        raise InvalidInput("trainers must be a non-empty list of trainer names.", param="trainers")
    out: dict[str, type[Trainer]] = {}
    for entry in entries:
        cls = get_trainer(entry) if isinstance(entry, str) else entry
        name = cls.name or cls.__name__
        if task not in cls.tasks:
            raise InvalidInput(f"Trainer {name!r} does not do {task.value}.", param="trainers")
        if cls.modality != "tabular" or name == "ensemble":
            why = "it is built from the trials (see ensemble=)" if name == "ensemble" else f"it takes {cls.modality}"
            raise InvalidInput(f"Trainer {name!r} cannot be tuned on a table: {why}.", param="trainers")
        if name in out:
            raise InvalidInput(f"Trainer {name!r} is listed twice.", param="trainers")
        out[name] = cls
    return out


def _study(storage: Any, study_name: str | None, *, direction: Direction, seed: int, pruner: str,
           n_steps: int) -> optuna.Study:
    import optuna

    return optuna.create_study(storage=storage, sampler=make_sampler(seed), pruner=make_pruner(pruner, n_steps),
                               study_name=study_name, direction=direction, load_if_exists=True)


def _verbosity() -> int:
    import optuna

    return int(optuna.logging.get_verbosity())


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

