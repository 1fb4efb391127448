"""Evaluation metrics as plain JSON-safe dicts (floats, ints, strings, lists; NaN becomes None).

Every function takes arrays from a fitted trainer and the held-out rows; scikit-learn is imported on use.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aimaas.errors import InvalidInput
from aimaas.training.base import TaskKind

if TYPE_CHECKING:
    from aimaas.training.base import Trainer

__all__ = [
    "RESIDUAL_SAMPLE",
    "evaluate_classification",
    "evaluate_clustering",
    "evaluate_regression",
    "permutation_importance_table",
]

RESIDUAL_SAMPLE = 1_000
CALIBRATION_BINS = 10
ROC_POINTS = 200
SILHOUETTE_SAMPLE = 5_000


def _num(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def _label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def evaluate_classification(y_true: Any, y_pred: Any, proba: np.ndarray | None,
                            labels: Sequence[Any]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro/weighted precision-recall-F1, per-class rows, confusion matrix
    (rows = true, columns = predicted, in ``labels`` order), and with ``proba`` (columns in ``labels`` order):
    ROC-AUC (one-vs-rest macro when multiclass; None when undefined), log loss and, for two classes, the
    calibration curve and the ROC curve (``roc_curve``: ``fpr``/``tpr``) of the second label."""
    with warnings.catch_warnings():  # edge cases (a class never predicted or absent) are reported as 0 or None
        warnings.simplefilter("ignore", UserWarning)
        return _classification(np.asarray(y_true), np.asarray(y_pred), proba, list(labels))


def _classification(y_true: np.ndarray, y_pred: np.ndarray, proba: Any, labels: list[Any]) -> dict[str, Any]:
    from sklearn import metrics as m

    out: dict[str, Any] = {
        "rows": int(y_true.size),
        "accuracy": _num(m.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _num(m.balanced_accuracy_score(y_true, y_pred)),
    }
    for avg in ("macro", "weighted"):
        p, r, f, _ = m.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        out.update({f"precision_{avg}": _num(p), f"recall_{avg}": _num(r), f"f1_{avg}": _num(f)})
    p, r, f, s = m.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
    out["per_class"] = [
        {"label": _label(lab), "precision": _num(p[i]), "recall": _num(r[i]), "f1": _num(f[i]), "support": int(s[i])}
        for i, lab in enumerate(labels)
    ]
    matrix = m.confusion_matrix(y_true, y_pred, labels=labels)
    out["confusion_matrix"] = {"labels": [_label(v) for v in labels], "matrix": matrix.astype(int).tolist()}
    out["roc_auc"] = out["log_loss"] = out["calibration"] = None
    if proba is not None:
        proba = _normalised(proba)
        known = np.isin(y_true, labels)
        if known.all():  # a test label the model never saw has no probability column
            out["log_loss"] = _num(m.log_loss(y_true, proba, labels=labels))
        out["roc_auc"] = _roc_auc(y_true, proba, labels)
        if len(labels) == 2:
            out["calibration"] = calibration_points(y_true == labels[1], proba[:, 1], positive_label=labels[1])
            out["roc_curve"] = _roc_points(y_true == labels[1], proba[:, 1])
    return out


def _roc_points(is_positive: np.ndarray, score: np.ndarray, limit: int = ROC_POINTS) -> dict[str, Any] | None:
    """The binary ROC curve (``fpr``/``tpr`` lists, at most ``limit`` points); None with a single class."""
    from sklearn.metrics import roc_curve

    if is_positive.all() or not is_positive.any():
        return None
    fpr, tpr, _ = roc_curve(is_positive, score, drop_intermediate=True)
    if fpr.size > limit:
        keep = np.unique(np.linspace(0, fpr.size - 1, limit).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]}


def _normalised(proba: Any) -> np.ndarray:
    """Rows summing to 1 in float64 (float32 models sum to 1 ± 1e-7, which log_loss warns about)."""
    p = np.asarray(proba, dtype=np.float64)
    return p / p.sum(axis=1, keepdims=True)


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, labels: list[Any]) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(set(y_true.tolist())) < 2:
        return None
    try:
        if len(labels) == 2:
            return _num(roc_auc_score(y_true == labels[1], proba[:, 1]))
        return _num(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels))
    except ValueError:  # a class absent from y_true
        return None


def calibration_points(is_positive: np.ndarray, score: np.ndarray, *, positive_label: Any = 1,
                       n_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability curve on ``n_bins`` uniform bins of the predicted probability (empty bins left out);
    each point gives the mean prediction, the observed positive fraction and the bin's row count (the same
    points as ``sklearn.calibration.calibration_curve(strategy="uniform")``)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], score, side="right")
    points = []
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            points.append({"mean_predicted": _num(score[mask].mean()),
                           "fraction_positive": _num(np.asarray(is_positive)[mask].mean()), "count": int(mask.sum())})
    return {"positive_label": _label(positive_label), "n_bins": n_bins, "points": points}


def evaluate_regression(y_true: Any, y_pred: Any, *, sample: int = RESIDUAL_SAMPLE, seed: int = 0) -> dict[str, Any]:
    """MAE, RMSE, R², a residual summary (residual = true − predicted) and up to ``sample`` ``{"pred",
    "residual"}`` points (a seeded random subset when there are more rows)."""
    from sklearn import metrics as m

    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    residual = y_true - y_pred
    quantiles = np.quantile(residual, [0.05, 0.25, 0.5, 0.75, 0.95]) if residual.size else [math.nan] * 5
    idx = np.arange(residual.size)
    if residual.size > sample:
        idx = np.sort(np.random.default_rng(seed).choice(residual.size, size=sample, replace=False))
    return {
        "rows": int(y_true.size),
        "mae": _num(m.mean_absolute_error(y_true, y_pred)),
        "rmse": _num(m.root_mean_squared_error(y_true, y_pred)),
        "r2": _num(m.r2_score(y_true, y_pred)) if y_true.size > 1 else None,
        "residuals": {
            "mean": _num(residual.mean()), "std": _num(residual.std()),
            "min": _num(residual.min()), "max": _num(residual.max()),
            "quantiles": {k: _num(v) for k, v in zip(("p05", "p25", "p50", "p75", "p95"), quantiles, strict=True)},
        },
        "residual_sample": [{"pred": _num(y_pred[i]), "residual": _num(residual[i])} for i in idx],
    }


def evaluate_clustering(X_transformed: np.ndarray, labels: Any, *, seed: int = 0) -> dict[str, Any]:
    """Silhouette score on the preprocessed features (on a seeded sample of at most 5,000 rows; None with a
    single cluster or one row per cluster), the number of clusters and their sizes."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels).ravel()
    values, counts = np.unique(labels, return_counts=True)
    silhouette = None
    if 2 <= values.size < labels.size:
        size = min(labels.size, SILHOUETTE_SAMPLE)
        silhouette = _num(silhouette_score(X_transformed, labels, sample_size=size if size < labels.size else None,
                                           random_state=seed))
    return {
        "rows": int(labels.size),
        "n_clusters": int(values.size),
        "silhouette": silhouette,
        "cluster_sizes": {str(_label(v)): int(c) for v, c in zip(values, counts, strict=True)},
    }


_Scorer = tuple[Callable[[np.ndarray, Any, list[Any] | None], float], str, bool]  # fn, input kind, higher better


def _scorers() -> dict[str, _Scorer]:
    from sklearn import metrics as m

    return {
        "accuracy": (lambda y, p, _: m.accuracy_score(y, p), "label", True),
        "balanced_accuracy": (lambda y, p, _: m.balanced_accuracy_score(y, p), "label", True),
        "f1_macro": (lambda y, p, _: m.f1_score(y, p, average="macro", zero_division=0), "label", True),
        "log_loss": (lambda y, p, labels: m.log_loss(y, _normalised(p), labels=labels), "proba", False),
        "r2": (lambda y, p, _: m.r2_score(y, p), "value", True),
        "mae": (lambda y, p, _: m.mean_absolute_error(y, p), "value", False),
        "rmse": (lambda y, p, _: m.root_mean_squared_error(y, p), "value", False),
        "cluster_agreement": (lambda y, p, _: float(np.mean(np.asarray(y) == np.asarray(p))), "label", True),
    }


_DEFAULT_METRIC = {TaskKind.CLASSIFICATION: "accuracy", TaskKind.REGRESSION: "r2",
                   TaskKind.CLUSTERING: "cluster_agreement"}


def permutation_importance_table(trainer: Trainer, X: pd.DataFrame, y: Any, metric: str | None = None,
                                 n_repeats: int = 5, seed: int = 0, *, max_rows: int = 5_000) -> dict[str, Any]:
    """Permutation importance of each raw column the model uses: the drop in ``metric`` when that column's
    values are shuffled (positive = the model relies on it), mean and std over ``n_repeats`` seeded shuffles.

    ``metric`` is one of accuracy, balanced_accuracy, f1_macro, log_loss (classification), r2, mae, rmse
    (regression) or cluster_agreement (clustering: the fraction of rows keeping their cluster; ``y`` is
    ignored); None picks accuracy / r2 / cluster_agreement. At most ``max_rows`` seeded rows are used.
    Returns ``{"metric", "baseline", "n_repeats", "rows", "features": [{"feature", "importance_mean",
    "importance_std"}]}`` sorted by importance, highest first.
    """
    metric = metric or _DEFAULT_METRIC[trainer.task]
    scorers = _scorers()
    if metric not in scorers:
        raise InvalidInput(f"Unknown metric {metric!r}; use one of {', '.join(scorers)}.", param="metric")
    fn, kind, higher = scorers[metric]
    if (kind == "value") != (trainer.task is TaskKind.REGRESSION) or (
            (metric == "cluster_agreement") != (trainer.task is TaskKind.CLUSTERING)):
        raise InvalidInput(f"Metric {metric!r} does not apply to {trainer.task.value}.", param="metric")
    rng = np.random.default_rng(seed)
    rows = np.arange(len(X))
    if len(X) > max_rows:
        rows = np.sort(rng.choice(len(X), size=max_rows, replace=False))
    X = X.iloc[rows].reset_index(drop=True)
    labels = trainer.classes

    def predict(frame: pd.DataFrame) -> Any:
        return trainer.predict_proba(frame) if kind == "proba" else trainer.predict(frame)

    truth = trainer.predict(X) if trainer.task is TaskKind.CLUSTERING else _truth(trainer, y, rows)
    baseline = float(fn(truth, predict(X), labels))
    plan = getattr(trainer, "plan", None)
    features = [c.name for c in plan.columns] if plan is not None else [str(c) for c in X.columns]
    table: list[dict[str, Any]] = []
    for name in features:
        scores = []
        for _ in range(n_repeats):
            shuffled = X.copy()
            shuffled[name] = X[name].to_numpy()[rng.permutation(len(X))]
            scores.append(float(fn(truth, predict(shuffled), labels)))
        drops = (baseline - np.array(scores)) if higher else (np.array(scores) - baseline)
        table.append({"feature": name, "importance_mean": _num(drops.mean()), "importance_std": _num(drops.std())})
    table.sort(key=lambda r: -float(r["importance_mean"] or 0.0))
    return {"metric": metric, "baseline": _num(baseline), "n_repeats": n_repeats, "rows": int(len(X)),
            "features": table}


def _truth(trainer: Trainer, y: Any, rows: np.ndarray) -> np.ndarray:
    from aimaas.training.validation import prepare_target

    values = prepare_target(y, trainer.task, n_rows=len(y), check_classes=False)
    return values[rows]
