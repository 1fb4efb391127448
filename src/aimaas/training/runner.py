"""The training pipeline a job runs: rows and a split in, a registered-ready model out.

:func:`run_training` takes the dataset's rows (a DataFrame in file order), the split assignment (0 train,
1 validation, 2 test per row) and a :class:`TrainingPlan`, then:

1. builds the features and target for the plan's modality (tabular columns, a ``text`` column, an ``image``
   column) and drops rows whose target is missing;
2. searches trainers and hyperparameters with :func:`~aimaas.training.tuning.tune` on the train+validation
   rows (cross-validation), or fits one trainer on train with validation for early stopping (neural trainers,
   or when the plan names a trainer), or picks k for k-means by silhouette;
3. scores the chosen model **once** on the test rows, with permutation importance for tabular models;
4. exports ONNX and checks with ONNX Runtime that it reproduces the trainer on the test rows;
5. renders the plots, and returns everything as a :class:`TrainingOutcome` (bytes and JSON-safe dicts).

It does no I/O of its own: the job wrapper (``aimaas.services.training.job``) loads the data and stores the
outcome. Events go to ``hooks.report`` as small dicts (``phase``, ``trial``, ``epoch``, ``resumed``, ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aimaas.errors import InvalidInput
from aimaas.training.base import TaskKind, Trainer, get_trainer
from aimaas.training.runner_eval import evaluate_trainer, signature_of

__all__ = ["DEFAULT_TRAINERS", "RunHooks", "TrainingOutcome", "TrainingPlan", "run_training"]

#: The trainer a modality uses when the plan names none (tabular data is searched across trainers instead).
DEFAULT_TRAINERS = {"text": "text_embedding", "image": "cnn"}
PARITY_ROWS = 2_000
_PHASES = {"loading": 0.0, "searching": 5.0, "training": 5.0, "refitting": 80.0, "evaluating": 85.0,
           "exporting": 92.0, "rendering": 96.0}


@dataclass(frozen=True)
class TrainingPlan:
    """What to train. ``task`` is classification, regression or clustering; ``modality`` tabular, text or
    image (text reads ``text_column``, image the ``image`` column). ``budget_s``/``max_trials`` bound the
    search (``budget_s`` also caps a neural trainer's training time). ``trainer`` + ``params`` train one
    configuration; otherwise tabular data is searched over ``trainers`` (None: the defaults)."""

    task: TaskKind
    modality: str = "tabular"
    target: str | None = None
    text_column: str | None = None
    metric: str | None = None
    budget_s: float | None = None
    max_trials: int | None = None
    trainer: str | None = None
    trainers: list[str] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    cv_folds: int = 5
    parallel_trials: int = 1
    schema: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class RunHooks:
    """``report(event)`` receives progress dicts; ``should_stop()`` asks a search to wind down gracefully;
    ``check()`` raises (the job's cancellation) when the run must stop now."""

    report: Callable[[dict[str, Any]], None] = lambda event: None
    should_stop: Callable[[], bool] = lambda: False
    check: Callable[[], None] = lambda: None


@dataclass
class TrainingOutcome:
    """A trained, tested, exported model. ``metrics`` are the test scalars; ``report`` the full evaluation
    (JSON-safe); ``files`` extra artifacts (``weights.safetensors``, ``config.json``…); ``plots`` PNG bytes."""

    onnx: bytes
    task: TaskKind
    modality: str
    trainer: str
    params: dict[str, Any]
    metric: str
    score: float | None
    metrics: dict[str, float]
    report: dict[str, Any]
    signature: dict[str, Any]
    parity: dict[str, Any]
    fit: dict[str, Any]
    tuning: dict[str, Any] | None
    counts: dict[str, int]
    files: dict[str, bytes] = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _phase(hooks: RunHooks, phase: str, message: str) -> None:
    hooks.check()
    hooks.report({"event": "phase", "phase": phase, "message": message, "progress": _PHASES[phase]})


def _features(frame: pd.DataFrame, plan: TrainingPlan) -> tuple[pd.DataFrame, pd.Series | None, list[str]]:
    notes: list[str] = []
    target = plan.target
    if plan.task is not TaskKind.CLUSTERING:
        if target is None or target not in frame.columns:
            known = ", ".join(map(str, frame.columns))
            raise InvalidInput(f"The dataset has no column {target!r}; columns are {known}.", param="target")
        y: pd.Series | None = frame[target]
    else:
        y = None
    if plan.modality == "image":
        X = frame[["image"]]
    elif plan.modality == "text":
        column = plan.text_column
        if column is None or column not in frame.columns:
            raise InvalidInput(f"The dataset has no text column {column!r}.", param="text_column")
        X = pd.DataFrame({"text": frame[column].astype(object).where(frame[column].notna(), "").astype(str)})
    else:
        X = frame.drop(columns=[target]) if target is not None and target in frame.columns else frame
    if y is not None:
        missing = y.isna().to_numpy()
        if missing.any():
            notes.append(f"{int(missing.sum())} row(s) without a value in {target!r} were left out")
    return X, y, notes


def _rows(assignment: np.ndarray, keep: np.ndarray, part: int | tuple[int, ...]) -> np.ndarray:
    parts = (part,) if isinstance(part, int) else part
    return np.flatnonzero(np.isin(assignment, parts) & keep)


def run_training(frame: pd.DataFrame, assignment: np.ndarray, plan: TrainingPlan, *, hooks: RunHooks | None = None,
                 checkpoint_dir: Path | None = None) -> TrainingOutcome:
    """Train, test once, export and check a model; see the module docstring. Raises :class:`InvalidInput`
    for data that cannot train the plan (a missing target column, too few rows, ...)."""
    hooks = hooks or RunHooks()
    if len(assignment) != len(frame):
        raise InvalidInput(f"The split covers {len(assignment)} rows but the dataset has {len(frame)}.",
                           param="split_id")
    X, y, notes = _features(frame, plan)
    keep = np.ones(len(frame), dtype=bool) if y is None else y.notna().to_numpy()
    train, valid, test = (_rows(assignment, keep, p) for p in (0, 1, 2))
    tune_rows = np.concatenate([train, valid])
    counts = {"train": int(train.size), "validation": int(valid.size), "test": int(test.size)}
    if test.size == 0:
        raise InvalidInput("The split has no test rows; make a split with a test fraction above 0.", param="split_id")
    if tune_rows.size < 2:
        raise InvalidInput("The split leaves fewer than 2 rows to train on.", param="split_id")

    def part(rows: np.ndarray) -> tuple[pd.DataFrame, pd.Series | None]:
        return X.iloc[rows].reset_index(drop=True), None if y is None else y.iloc[rows].reset_index(drop=True)

    X_test, y_test = part(test)
    tuning: dict[str, Any] | None = None
    epochs: list[dict[str, Any]] = []
    started = time.monotonic()
    if plan.task is TaskKind.CLUSTERING:
        _phase(hooks, "searching", "choosing the number of clusters")
        trainer = _cluster(part(tune_rows)[0], plan, hooks)
    elif plan.trainer is None and plan.modality == "tabular":
        from aimaas.training.tuning import tune

        _phase(hooks, "searching", "searching trainers and hyperparameters")
        X_tune, y_tune = part(tune_rows)
        result = tune(X_tune, y_tune, task=plan.task, schema=plan.schema, metric=plan.metric, trainers=plan.trainers,
                      n_trials=plan.max_trials, timeout_s=plan.budget_s if plan.budget_s or plan.max_trials else 60.0,
                      cv_folds=_folds(plan, y_tune), seed=plan.seed, report=hooks.report,
                      should_stop=hooks.should_stop, **_parallel(plan))
        hooks.check()
        trainer, tuning = result.trainer, result.to_dict()
    else:
        name = plan.trainer or DEFAULT_TRAINERS[plan.modality]
        _phase(hooks, "training", f"training {name}")
        trainer = _single(name, plan, part(train), part(valid), hooks, checkpoint_dir, epochs)
    hooks.check()
    _phase(hooks, "evaluating", "scoring the model once on the test rows")
    metric, evaluation = evaluate_trainer(trainer, plan.metric, X_test, y_test, tabular=plan.modality == "tabular",
                                          seed=plan.seed)
    _phase(hooks, "exporting", "exporting to ONNX and checking it with ONNX Runtime")
    from aimaas.training.onnx_check import model_metadata, parity

    onnx_bytes = trainer.export_onnx(X_test.head(5))
    checked = parity(trainer, onnx_bytes, X_test.head(PARITY_ROWS))
    files: dict[str, bytes] = {}
    export_weights = getattr(trainer, "export_weights", None)
    if callable(export_weights):
        files.update(export_weights())
    _phase(hooks, "rendering", "rendering plots")
    report = {"task": plan.task.value, "modality": plan.modality, "metric": metric, **evaluation,
              "tuning": tuning, "epochs": epochs, "parity": checked, "split_counts": counts}
    plots, plot_notes = _plots(report)
    scalars = {k: float(v) for k, v in evaluation.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    fit = getattr(trainer, "last_fit", None)
    return TrainingOutcome(
        onnx=onnx_bytes, task=plan.task, modality=plan.modality, trainer=trainer.name, params=trainer.get_params(),
        metric=metric, score=scalars.get(metric), metrics=scalars, report=report,
        signature=signature_of(model_metadata(onnx_bytes), onnx_bytes), parity=checked,
        fit=fit.to_dict() if fit is not None else {"seconds": round(time.monotonic() - started, 3)},
        tuning=tuning, counts=counts, files=files, plots=plots, notes=notes + plot_notes,
    )


def _folds(plan: TrainingPlan, y: pd.Series | None) -> int:
    """At most ``plan.cv_folds``, and no more than the smallest class has rows (so stratification works)."""
    if y is None or plan.task is not TaskKind.CLASSIFICATION:
        return plan.cv_folds
    smallest = int(y.value_counts().min()) if len(y) else 2
    return max(2, min(plan.cv_folds, smallest))


def _parallel(plan: TrainingPlan) -> dict[str, Any]:
    """Pass ``n_workers`` only when asked for, so a tuner without process-parallel trials keeps working."""
    return {"n_workers": plan.parallel_trials} if plan.parallel_trials > 1 else {}


def _single(name: str, plan: TrainingPlan, train: tuple[pd.DataFrame, pd.Series | None],
            valid: tuple[pd.DataFrame, pd.Series | None], hooks: RunHooks, checkpoint_dir: Path | None,
            epochs: list[dict[str, Any]]) -> Trainer:
    cls = get_trainer(name)
    if cls.modality != plan.modality:
        raise InvalidInput(f"Trainer {name!r} works on {cls.modality} data, not {plan.modality}.", param="trainer")
    params = dict(plan.params)
    if plan.budget_s is not None and "max_seconds" in cls.hyperparameters and "max_seconds" not in params:
        params["max_seconds"] = plan.budget_s
    trainer = cls(task=plan.task, random_state=plan.seed, **params)

    def report(event: dict[str, Any]) -> None:
        if event.get("event") == "epoch":
            epochs.append({k: event.get(k) for k in ("epoch", "loss", "valid_score")})
        hooks.report(event)
        hooks.check()

    X_valid, y_valid = valid if len(valid[0]) else (None, None)
    fit = trainer.fit(train[0], train[1], X_valid=X_valid, y_valid=y_valid, report=report, schema=plan.schema,
                      checkpoint_dir=checkpoint_dir / "trainer" if checkpoint_dir is not None else None)
    trainer.last_fit = fit  # type: ignore[attr-defined]
    return trainer


def _cluster(X: pd.DataFrame, plan: TrainingPlan, hooks: RunHooks) -> Trainer:
    """k-means; without ``n_clusters`` in the params, the k from 2 to 10 with the best silhouette on the
    training rows (each k reported as a trial)."""
    from aimaas.training.evaluation import evaluate_clustering

    cls = get_trainer(plan.trainer or "kmeans")
    if "n_clusters" in plan.params or "n_clusters" not in cls.hyperparameters:
        trainer = cls(task=TaskKind.CLUSTERING, random_state=plan.seed, **plan.params)
        trainer.last_fit = trainer.fit(X, schema=plan.schema)  # type: ignore[attr-defined]
        return trainer
    best: tuple[float, Trainer] | None = None
    for number, k in enumerate(range(2, min(10, len(X) - 1) + 1)):
        hooks.check()
        candidate = cls(task=TaskKind.CLUSTERING, random_state=plan.seed, **{**plan.params, "n_clusters": k})
        fit = candidate.fit(X, schema=plan.schema)
        candidate.last_fit = fit  # type: ignore[attr-defined]
        score = evaluate_clustering(candidate.preprocess(X), candidate.predict(X), seed=plan.seed)  # type: ignore[attr-defined]
        value = float(score.get("silhouette") or -1.0)
        if best is None or value > best[0]:
            best = (value, candidate)
        hooks.report({"event": "trial", "number": number, "trainer": cls.name, "params": {"n_clusters": k},
                      "score": value, "state": "complete", "best_score": best[0], "finished": number + 1})
        if hooks.should_stop():
            break
    if best is None:
        raise InvalidInput("Clustering needs at least 4 rows.", param="dataset")
    return best[1]


def _plots(report: dict[str, Any]) -> tuple[dict[str, bytes], list[str]]:
    try:
        from aimaas.training.plots import render_plots
    except ImportError:  # matplotlib is part of the train extra; without it the model still registers
        return {}, ["plots were not rendered: matplotlib is not installed"]
    rendered = render_plots(report)
    report["plot_captions"] = dict(rendered.captions)
    return dict(rendered.images), list(rendered.notes)
