"""Tuning data and metrics: the checked target, the fixed cross-validation folds (or a given validation split),
the metric each trial is scored with, and the out-of-fold predictions the final ensemble is chosen from.

Every trial of a study is scored on the same folds, so scores are comparable and fold ``k``'s running mean
can be handed to a pruner. Small tables repeat the k-fold split with other shuffles (``cv_repeats``): on a
few hundred rows one k-fold mean moves by a row or two per fold with the shuffle, and picking the best of
hundreds of such noisy means rewards luck. Worker processes get the data through Parquet and NPZ files
(:meth:`TuningData.save`). scikit-learn is imported on use.
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
    from pathlib import Path

    from aimaas.training.base import Trainer

__all__ = ["DEFAULT_METRICS", "METRICS", "Direction", "TuningData", "auto_repeats", "metric_direction",
           "prediction_score", "resolve_metric", "score"]

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
    if METRICS[metric][1] == "proba":
        return _proba_score(metric, y, trainer.predict_proba(X), list(trainer.classes or []))
    return _value_score(metric, y, trainer.predict(X))


def prediction_score(metric: str, y: np.ndarray, predictions: np.ndarray, classes: list[Any] | None) -> float:
    """``metric`` of stored predictions: class probabilities ``(n, len(classes))`` (labels are the argmax) for
    classification, values for regression. Used on out-of-fold predictions, single or averaged."""
    if classes is None:
        return _value_score(metric, y, np.asarray(predictions, dtype=np.float64).ravel())
    if METRICS[metric][1] == "proba":  # float32 rows sum to 1 only within ~1e-7: renormalise in float64
        proba = np.asarray(predictions, dtype=np.float64)
        return _proba_score(metric, y, proba / proba.sum(axis=1, keepdims=True), classes)
    return _value_score(metric, y, np.asarray(classes, dtype=object)[np.argmax(predictions, axis=1)])


def _proba_score(metric: str, y: np.ndarray, proba: np.ndarray, labels: list[Any]) -> float:
    from sklearn import metrics as m

    if metric == "log_loss":
        return float(m.log_loss(y, proba, labels=labels))
    if len(labels) == 2:
        return float(m.roc_auc_score(y == labels[1], proba[:, 1]))
    return float(m.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels))


def _value_score(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn import metrics as m

    if pred.dtype == object and y.dtype != object:  # argmax labels of integer classes
        pred = pred.astype(y.dtype)
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


def auto_repeats(n_rows: int) -> int:
    """How many shuffles of the k-fold split a table of ``n_rows`` rows gets when ``cv_repeats`` is None: 3 up
    to 500 rows, 2 up to 1,000, else 1. Trials on such tables take well under a second per fold, so the
    extra fits cost little, and they roughly halve the spread of each trial's score."""
    return 3 if n_rows <= 500 else 2 if n_rows <= 1000 else 1


@dataclass(frozen=True)
class TuningData:
    """Checked tuning rows: ``X``/``y`` (y normalised, a Series named after the target), an optional given
    validation split, and the fixed folds (row positions; every repeat of the k-fold split in turn) used
    when there is none. ``classes`` is the sorted class list (classification) or None."""

    X: pd.DataFrame
    y: pd.Series
    X_valid: pd.DataFrame | None
    y_valid: pd.Series | None
    folds: list[tuple[np.ndarray, np.ndarray]]
    cv: dict[str, Any]
    classes: list[Any] | None = None

    @classmethod
    def build(cls, X: Any, y: Any, *, task: TaskKind, schema: list[dict[str, Any]] | None, cv_folds: int,
              seed: int, X_valid: Any = None, y_valid: Any = None, cv_repeats: int | None = None) -> TuningData:
        """Check the rows and the target, then fix the folds: stratified k-fold for classification (k capped
        by the smallest class), shuffled k-fold for regression, both seeded and repeated ``cv_repeats``
        times with other shuffles (None: :func:`auto_repeats`); none with a validation split."""
        if not isinstance(X, pd.DataFrame):
            raise InvalidInput("Features must be a table of named columns.", param="features")
        name = target_name(y)
        target = pd.Series(prepare_target(y, task, n_rows=len(X), schema=schema, name=name), name=name)
        classes = _classes(target.to_numpy()) if task is TaskKind.CLASSIFICATION else None
        X = X.reset_index(drop=True)
        if (X_valid is None) != (y_valid is None):
            raise InvalidInput("Give both X_valid and y_valid, or neither.", param="X_valid")
        if X_valid is not None:
            if not isinstance(X_valid, pd.DataFrame) or list(X_valid.columns) != list(X.columns):
                raise InvalidInput("X_valid must be a table with the same columns as X.", param="X_valid")
            values = prepare_target(y_valid, task, n_rows=len(X_valid), name=name, check_classes=False)
            return cls(X, target, X_valid.reset_index(drop=True), pd.Series(values, name=name), [],
                       {"kind": "holdout", "folds": 1, "rows": len(X), "valid_rows": len(X_valid)}, classes)
        if isinstance(cv_folds, bool) or not isinstance(cv_folds, int) or cv_folds < 2:
            raise InvalidInput(f"cv_folds must be an integer >= 2; got {cv_folds!r}.", param="cv_folds")
        if cv_repeats is not None and (isinstance(cv_repeats, bool) or not isinstance(cv_repeats, int)
                                       or not 1 <= cv_repeats <= 10):
            raise InvalidInput(f"cv_repeats must be an integer from 1 to 10 (or None); got {cv_repeats!r}.",
                               param="cv_repeats")
        repeats = auto_repeats(len(X)) if cv_repeats is None else cv_repeats
        folds, cv = _folds(target.to_numpy(), task, cv_folds, seed, repeats)
        return cls(X, target, None, None, folds, cv, classes)

    def splits(self) -> Iterator[tuple[pd.DataFrame, pd.Series, pd.DataFrame, np.ndarray, np.ndarray]]:
        """``(X_fit, y_fit, X_score, y_score, rows)`` for each fold in order (one split with a validation set);
        ``rows`` are the scored rows' positions in :meth:`oof_target`."""
        if self.X_valid is not None and self.y_valid is not None:
            yield self.X, self.y, self.X_valid, self.y_valid.to_numpy(), np.arange(len(self.X_valid))
            return
        for train, valid in self.folds:
            yield (self.X.iloc[train], self.y.iloc[train].reset_index(drop=True), self.X.iloc[valid],
                   self.y.iloc[valid].to_numpy(), valid)

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

    def oof_target(self) -> np.ndarray:
        """The truth that out-of-fold predictions line up with: every tuning row, or the validation rows."""
        return (self.y_valid if self.y_valid is not None else self.y).to_numpy()

    def oof_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of one trial's out-of-fold predictions (a column per class, or one value)."""
        return len(self.oof_target()), len(self.classes) if self.classes is not None else 1

    def new_oof(self) -> OutOfFold:
        """An empty accumulator for one trial's out-of-fold predictions."""
        return OutOfFold(self)

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the rows (Parquet) and folds (NPZ) for worker processes; returns the JSON-safe rest, which
        :meth:`load` needs with them. Nothing is pickled: a worker reads them with ``allow_pickle=False``."""
        columns = list(self.X.columns)
        if not all(isinstance(c, str | int) and not isinstance(c, bool) for c in columns):
            raise InvalidInput("With n_workers > 1, column names must be strings.", param="features")
        _write_rows(self.X, self.y, directory / "rows.parquet")
        if self.X_valid is not None and self.y_valid is not None:
            _write_rows(self.X_valid, self.y_valid, directory / "valid.parquet")
        arrays: dict[str, Any] = {}
        for i, (fit_rows, score_rows) in enumerate(self.folds):
            arrays[f"fit_{i}"], arrays[f"score_{i}"] = fit_rows, score_rows
        np.savez(directory / "folds.npz", allow_pickle=False, **arrays)
        return {"columns": columns, "target": self.y.name, "valid": self.X_valid is not None, "cv": self.cv,
                "classes": self.classes, "n_folds": len(self.folds)}

    @classmethod
    def load(cls, directory: Path, spec: dict[str, Any]) -> TuningData:
        """The data :meth:`save` wrote to ``directory`` (``spec`` is what it returned)."""

        def rows(path: Path) -> tuple[pd.DataFrame, pd.Series]:
            frame = pd.read_parquet(path)
            y = frame.pop("y").rename(spec["target"])
            frame.columns = spec["columns"]
            return frame, y

        X, y = rows(directory / "rows.parquet")
        X_valid, y_valid = rows(directory / "valid.parquet") if spec["valid"] else (None, None)
        with np.load(directory / "folds.npz", allow_pickle=False) as arrays:
            folds = [(arrays[f"fit_{i}"], arrays[f"score_{i}"]) for i in range(spec["n_folds"])]
        return cls(X, y, X_valid, y_valid, folds, spec["cv"], spec["classes"])


def _write_rows(X: pd.DataFrame, y: pd.Series, path: Path) -> None:
    import pyarrow as pa

    # columns renamed c0, c1, ...: Parquet wants unique string names; the real ones travel in the spec
    frame = pd.DataFrame({f"c{i}": X.iloc[:, i] for i in range(X.shape[1])} | {"y": y.to_numpy()},
                         index=range(len(X)))
    for column in [c for c in frame.columns if frame[c].dtype == object]:
        try:
            pa.array(frame[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # mixed Python types
            frame[column] = frame[column].map(lambda v: v if v is None or v != v else str(v))
    frame.to_parquet(path, index=False)


class OutOfFold:
    """One trial's predictions on the rows each fold scores, averaged over the repeats of the split.

    Classification stores probabilities in :attr:`TuningData.classes` order (a fold's trainer may know a
    subset of the classes); regression stores values. float32 halves the memory; the rounding (~1e-7) is
    far below what moves a metric."""

    def __init__(self, data: TuningData) -> None:
        rows, width = data.oof_shape()
        self.classes = data.classes
        self.total = np.zeros((rows, width), dtype=np.float64)
        self.count = np.zeros(rows, dtype=np.int64)

    def add(self, trainer: Trainer, X: pd.DataFrame, rows: np.ndarray) -> None:
        """Predict ``X`` (the scored rows at positions ``rows``) with a fitted trainer and accumulate."""
        if self.classes is None:
            self.total[rows, 0] += np.asarray(trainer.predict(X), dtype=np.float64).ravel()
        else:
            proba = np.asarray(trainer.predict_proba(X), dtype=np.float64)
            columns = np.array([self.classes.index(c) for c in trainer.classes or []], dtype=np.int64)
            self.total[np.ix_(rows, columns)] += proba
        self.count[rows] += 1

    def result(self) -> np.ndarray:
        """The averaged predictions (float32)."""
        return (self.total / np.maximum(self.count, 1)[:, None]).astype(np.float32)


def _classes(y: np.ndarray) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in np.unique(y)]


def _folds(y: np.ndarray, task: TaskKind, k: int, seed: int,
           repeats: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    if task is TaskKind.CLASSIFICATION:
        smallest = int(np.unique(y, return_counts=True)[1].min())
        n, why = min(k, smallest), f"the smallest class has {smallest} rows"
        kind = "stratified_kfold"
    else:
        n, why = min(k, len(y) // 2), f"there are {len(y)} rows"
        if n < 2:
            raise InvalidInput(f"Cross-validation needs at least 4 rows; got {len(y)}.", param="features")
        kind = "kfold"
    folds: list[tuple[np.ndarray, np.ndarray]] = []
    for repeat in range(repeats):  # repeat r shuffles with seed + r: the first repeat is the plain k-fold split
        splitter: Any = (StratifiedKFold if task is TaskKind.CLASSIFICATION else KFold)(
            n_splits=n, shuffle=True, random_state=seed + repeat)
        folds += [(np.asarray(tr), np.asarray(va)) for tr, va in splitter.split(np.zeros(len(y)), y)]
    cv: dict[str, Any] = {"kind": kind, "folds": n, "repeats": repeats, "rows": len(y), "seed": seed}
    if n < k:
        cv["note"] = f"{k} folds were asked for; {n} are used because {why}."
    return folds, cv
