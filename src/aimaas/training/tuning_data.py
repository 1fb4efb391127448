"""Tuning data and metrics: the checked target, the fixed cross-validation folds (or a given validation split)
and the metric each trial is scored with.

Every trial of a study is scored on the same folds, so scores are comparable and fold ``k``'s running mean
can be handed to a pruner. scikit-learn is imported on use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from aimaas.errors import InvalidInput
from aimaas.training.base import TaskKind
from aimaas.training.validation import prepare_target, target_name

if TYPE_CHECKING:
    from aimaas.training.base import Trainer

__all__ = ["DEFAULT_METRICS", "METRICS", "Direction", "TuningData", "metric_direction", "resolve_metric", "score"]

# name -> (task, what the scorer needs: "label" | "proba" | "value", higher is better)
METRICS: dict[str, tuple[TaskKind, str, bool]] = {
    "accuracy": (TaskKind.CLASSIFICATION, "label", True),
    "balanced_accuracy": (TaskKind.CLASSIFICATION, "label", True),
    "f1_macro": (TaskKind.CLASSIFICATION, "label", True),
    "roc_auc": (TaskKind.CLASSIFICATION, "proba", True),
    "log_loss": (TaskKind.CLASSIFICATION, "proba", False),
    "r2": (TaskKind.REGRESSION, "value", True),
    "rmse": (TaskKind.REGRESSION, "value", False),
    "mae": (TaskKind.REGRESSION, "value", False),
}
"""The metrics a study can optimise. Each is also a key of ``evaluate_classification`` /
``evaluate_regression`` output, so the test score is read from the same name."""

DEFAULT_METRICS = {TaskKind.CLASSIFICATION: "f1_macro", TaskKind.REGRESSION: "r2"}
"""f1_macro: every class counts the same (robust to imbalance), defined for binary and multiclass targets
and for any trainer (no probabilities needed). r2: scale-free and higher-is-better; per fold it ranks models
exactly like RMSE."""


def resolve_metric(metric: str | None, task: TaskKind) -> str:
    """``metric`` checked against ``task`` (None gives the task's default); :class:`InvalidInput` otherwise."""
    if task not in DEFAULT_METRICS:
        raise InvalidInput(f"Tuning supports classification and regression, not {task.value}.", param="task")
    if metric is None:
        return DEFAULT_METRICS[task]
    usable = [name for name, (kind, _, _) in METRICS.items() if kind is task]
    if metric not in usable:
        raise InvalidInput(f"Metric {metric!r} does not apply to {task.value}; use one of {', '.join(usable)}.",
                           param="metric")
    return metric


Direction = Literal["maximize", "minimize"]


def metric_direction(metric: str) -> Direction:
    """``"maximize"`` or ``"minimize"``: the Optuna study direction for ``metric``."""
    return "maximize" if METRICS[metric][2] else "minimize"


def score(metric: str, trainer: Trainer, X: pd.DataFrame, y: np.ndarray) -> float:
    """``metric`` of a fitted ``trainer`` on rows ``X`` with normalised target ``y`` (NaN when undefined)."""
    from sklearn import metrics as m

    _, needs, _ = METRICS[metric]
    if needs == "proba":
        labels = list(trainer.classes or [])
        proba = trainer.predict_proba(X)
        if metric == "log_loss":
            return float(m.log_loss(y, proba, labels=labels))
        if len(labels) == 2:
            return float(m.roc_auc_score(y == labels[1], proba[:, 1]))
        return float(m.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels))
    pred = trainer.predict(X)
    functions = {
        "accuracy": lambda: m.accuracy_score(y, pred),
        "balanced_accuracy": lambda: m.balanced_accuracy_score(y, pred),
        "f1_macro": lambda: m.f1_score(y, pred, average="macro", zero_division=0),
        "r2": lambda: m.r2_score(y, pred),
        "rmse": lambda: m.root_mean_squared_error(y, pred),
        "mae": lambda: m.mean_absolute_error(y, pred),
    }
    value = float(functions[metric]())
    return value if math.isfinite(value) else math.nan


@dataclass(frozen=True)
class TuningData:
    """Checked tuning rows: ``X``/``y`` (y normalised, a Series named after the target), an optional given
    validation split, and the fixed folds (row positions) used when there is none."""

    X: pd.DataFrame
    y: pd.Series
    X_valid: pd.DataFrame | None
    y_valid: pd.Series | None
    folds: list[tuple[np.ndarray, np.ndarray]]
    cv: dict[str, Any]

    @classmethod
    def build(cls, X: Any, y: Any, *, task: TaskKind, schema: list[dict[str, Any]] | None, cv_folds: int,
              seed: int, X_valid: Any = None, y_valid: Any = None) -> TuningData:
        """Check the rows and the target, then fix the folds: stratified k-fold for classification (k capped
        by the smallest class), shuffled k-fold for regression, both seeded; none with a validation split."""
        if not isinstance(X, pd.DataFrame):
            raise InvalidInput("Features must be a table of named columns.", param="features")
        name = target_name(y)
        target = pd.Series(prepare_target(y, task, n_rows=len(X), schema=schema, name=name), name=name)
        X = X.reset_index(drop=True)
        if (X_valid is None) != (y_valid is None):
            raise InvalidInput("Give both X_valid and y_valid, or neither.", param="X_valid")
        if X_valid is not None:
            if not isinstance(X_valid, pd.DataFrame) or list(X_valid.columns) != list(X.columns):
                raise InvalidInput("X_valid must be a table with the same columns as X.", param="X_valid")
            values = prepare_target(y_valid, task, n_rows=len(X_valid), name=name, check_classes=False)
            return cls(X, target, X_valid.reset_index(drop=True), pd.Series(values, name=name), [],
                       {"kind": "holdout", "folds": 1, "rows": len(X), "valid_rows": len(X_valid)})
        if isinstance(cv_folds, bool) or not isinstance(cv_folds, int) or cv_folds < 2:
            raise InvalidInput(f"cv_folds must be an integer >= 2; got {cv_folds!r}.", param="cv_folds")
        folds, cv = _folds(target.to_numpy(), task, cv_folds, seed)
        return cls(X, target, None, None, folds, cv)

    def splits(self) -> Iterator[tuple[pd.DataFrame, pd.Series, pd.DataFrame, np.ndarray]]:
        """``(X_fit, y_fit, X_score, y_score)`` for each fold in order (one split with a validation set)."""
        if self.X_valid is not None and self.y_valid is not None:
            yield self.X, self.y, self.X_valid, self.y_valid.to_numpy()
            return
        for train, valid in self.folds:
            yield (self.X.iloc[train], self.y.iloc[train].reset_index(drop=True), self.X.iloc[valid],
                   self.y.iloc[valid].to_numpy())

    @property
    def n_steps(self) -> int:
        """How many fits one trial makes."""
        return max(1, len(self.folds))

    def all_rows(self) -> tuple[pd.DataFrame, pd.Series]:
        """Every tuning row (train and the given validation split) for the final refit."""
        if self.X_valid is None or self.y_valid is None:
            return self.X, self.y
        return (pd.concat([self.X, self.X_valid], ignore_index=True),
                pd.concat([self.y, self.y_valid], ignore_index=True))


def _folds(y: np.ndarray, task: TaskKind, k: int,
           seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter: Any
    if task is TaskKind.CLASSIFICATION:
        smallest = int(np.unique(y, return_counts=True)[1].min())
        n, why = min(k, smallest), f"the smallest class has {smallest} rows"
        splitter, kind = StratifiedKFold(n_splits=n, shuffle=True, random_state=seed), "stratified_kfold"
    else:
        n, why = min(k, len(y) // 2), f"there are {len(y)} rows"
        if n < 2:
            raise InvalidInput(f"Cross-validation needs at least 4 rows; got {len(y)}.", param="features")
        splitter, kind = KFold(n_splits=n, shuffle=True, random_state=seed), "kfold"
    folds = [(np.asarray(tr), np.asarray(va)) for tr, va in splitter.split(np.zeros(len(y)), y)]
    cv: dict[str, Any] = {"kind": kind, "folds": n, "rows": len(y), "seed": seed}
    if n < k:
        cv["note"] = f"{k} folds were asked for; {n} are used because {why}."
    return folds, cv
