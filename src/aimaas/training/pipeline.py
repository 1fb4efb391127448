"""The shared implementation of tabular trainers: ``Pipeline([("pre", ColumnTransformer), ("est", estimator)])``.

A subclass only says which estimator to build (:meth:`PipelineTrainer._make_estimator`, importing its
library lazily), whether numeric columns are scaled, and its search space. It may override
:meth:`PipelineTrainer._fit_estimator` to use validation rows (early stopping) or report iterations.
"""

from __future__ import annotations

import re
import time
import warnings
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from aimaas.errors import Conflict, InvalidInput
from aimaas.training.base import FitResult, Report, TaskKind, Trainer
from aimaas.training.preprocessing import (
    MAX_CATEGORIES,
    FeaturePlan,
    build_preprocessor,
    coerce_frame,
    plan_features,
)
from aimaas.training.validation import prepare_target, target_name

if TYPE_CHECKING:
    from pathlib import Path

    from sklearn.pipeline import Pipeline

__all__ = ["PipelineTrainer", "Validation"]

_PARAM_ERROR = re.compile(r"The '(\w+)' parameter")


class Validation:
    """Preprocessed validation rows handed to :meth:`PipelineTrainer._fit_estimator`."""

    def __init__(self, X: np.ndarray, y: np.ndarray | None) -> None:
        self.X = X
        self.y = y


def _emit(report: Report | None, event: dict[str, Any]) -> None:
    if report is not None:
        report(event)


class PipelineTrainer(Trainer):
    """A :class:`Trainer` over a scikit-learn pipeline; see :class:`Trainer` for the contract."""

    scale_numeric: ClassVar[bool] = True
    common_hyperparameters: ClassVar[dict[str, Any]] = {"max_categories": MAX_CATEGORIES}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.hyperparameters = {**cls.common_hyperparameters, **cls.hyperparameters}

    def __init__(self, *, task: TaskKind | str | None = None, random_state: int = 0, **params: Any) -> None:
        super().__init__(task=task, random_state=random_state, **params)
        self._pipeline: Pipeline | None = None
        self._plan: FeaturePlan | None = None
        self._classes: list[Any] | None = None

    # -- what subclasses provide ------------------------------------------------------------------
    @abstractmethod
    def _make_estimator(self) -> Any:
        """A fresh, unfitted estimator for ``self.task`` built from ``self.params`` and ``self.random_state``."""

    def _fit_estimator(self, estimator: Any, X: np.ndarray, y: np.ndarray | None, valid: Validation | None,
                       report: Report | None) -> dict[str, Any]:
        """Fit ``estimator`` on preprocessed rows; return trainer-specific facts for ``FitResult.extra``."""
        estimator.fit(X) if y is None else estimator.fit(X, y)
        return {}

    # -- the contract ------------------------------------------------------------------------------
    @property
    def classes(self) -> list[Any] | None:
        return self._classes

    @property
    def plan(self) -> FeaturePlan:
        """The column plan learnt by the last ``fit``."""
        self._require_fitted()
        assert self._plan is not None
        return self._plan

    @property
    def pipeline(self) -> Pipeline:
        """The fitted scikit-learn pipeline (its input is :func:`coerce_frame` output)."""
        self._require_fitted()
        assert self._pipeline is not None
        return self._pipeline

    def fit(self, X: pd.DataFrame, y: Any = None, *, X_valid: pd.DataFrame | None = None, y_valid: Any = None,
            report: Report | None = None, schema: list[dict[str, Any]] | None = None,
            checkpoint_dir: Path | None = None) -> FitResult:
        from sklearn.pipeline import Pipeline

        started = time.perf_counter()
        if not isinstance(X, pd.DataFrame):
            raise InvalidInput("Features must be a table of named columns.", param="features")
        if len(X) < 2:
            raise InvalidInput(f"Training needs at least 2 rows; got {len(X)}.", param="features")
        supervised = self.task is not TaskKind.CLUSTERING
        name = target_name(y)
        target = prepare_target(y, self.task, n_rows=len(X), schema=schema, name=name) if supervised else None
        plan = plan_features(X, schema, max_categories=int(self.params["max_categories"]))
        _emit(report, {"event": "fit_started", "trainer": self.name, "task": self.task.value, "rows": len(X),
                       "features": [c.name for c in plan.columns]})
        pre = build_preprocessor(plan, scale=self.scale_numeric)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Xt = pre.fit_transform(coerce_frame(X, plan))
            valid = None
            if X_valid is not None:
                yv = None
                if supervised:
                    yv = prepare_target(y_valid, self.task, n_rows=len(X_valid), name=name, check_classes=False)
                valid = Validation(pre.transform(coerce_frame(X_valid, plan)), yv)
            estimator = self._make_estimator()
            try:
                extra = self._fit_estimator(estimator, Xt, target, valid, report)
            except (ValueError, TypeError) as exc:
                invalid = self._as_invalid_input(exc)
                if invalid is None:
                    raise
                raise invalid from exc
        self._pipeline = Pipeline([("pre", pre), ("est", estimator)])
        self._plan = plan
        self._classes = [_plain(c) for c in estimator.classes_] if self.task is TaskKind.CLASSIFICATION else None
        valid_score = None
        if valid is not None and valid.y is not None:
            valid_score = float(self._score(estimator.predict(valid.X), valid.y))
        seconds = time.perf_counter() - started
        _emit(report, {"event": "fit_finished", "seconds": round(seconds, 4), "valid_score": valid_score})
        return FitResult(
            trainer=self.name, task=self.task, params=self.get_params(), n_rows=len(X),
            features=[c.name for c in plan.columns], dropped=[dict(d) for d in plan.dropped],
            notes=list(plan.notes) + _warning_notes(caught), classes=self._classes, fit_seconds=seconds,
            valid_score=valid_score, extra=extra,
        )

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class labels, values (float64) or cluster ids (int64) for raw rows ``X``."""
        out = self._run("predict", X)
        if self.task is TaskKind.REGRESSION:
            return np.asarray(out, dtype=np.float64).ravel()
        if self.task is TaskKind.CLUSTERING:
            return np.asarray(out, dtype=np.int64).ravel()
        return np.asarray(out).ravel()

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.task is not TaskKind.CLASSIFICATION:
            raise InvalidInput(f"A {self.task.value} model has no class probabilities.", param="task")
        proba = np.asarray(self._run("predict_proba", X), dtype=np.float64)
        return proba / proba.sum(axis=1, keepdims=True)  # float32 models sum to 1 ± 1e-7

    def preprocess(self, X: pd.DataFrame) -> np.ndarray:
        """The numeric matrix the estimator sees for raw rows ``X`` (e.g. for silhouette scores)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(self.pipeline[0].transform(coerce_frame(X, self.plan)), dtype=np.float64)

    def export_onnx(self, sample: pd.DataFrame) -> bytes:
        from aimaas.training.onnx_export import export_pipeline

        coerce_frame(sample, self.plan)  # the sample must carry every input column
        return export_pipeline(self.pipeline, self.plan, task=self.task, trainer=self.name,
                               classes=self._classes, params=self.get_params())

    # -- helpers -----------------------------------------------------------------------------------
    def _run(self, method: str, X: pd.DataFrame) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # unknown categories encode as zeros, by design
            return getattr(self.pipeline, method)(coerce_frame(X, self.plan))

    def _require_fitted(self) -> None:
        if self._pipeline is None:
            raise Conflict(f"The {self.name} trainer is not fitted yet; call fit first.", code="not_fitted")

    def _score(self, predicted: np.ndarray, truth: np.ndarray) -> float:
        if self.task is TaskKind.CLASSIFICATION:
            return float(np.mean(np.asarray(predicted).ravel() == truth))
        from sklearn.metrics import r2_score

        return float(r2_score(truth, np.asarray(predicted, dtype=np.float64).ravel()))

    def _as_invalid_input(self, exc: Exception) -> InvalidInput | None:
        match = _PARAM_ERROR.search(str(exc))
        if match and match.group(1) in self.params:
            return InvalidInput(f"Invalid hyperparameter for {self.name}: {exc}", param=match.group(1))
        return None


def _warning_notes(caught: list[warnings.WarningMessage], limit: int = 5) -> list[str]:
    """Distinct library warnings raised while fitting (convergence and the like), for ``FitResult.notes``."""
    seen: list[str] = []
    for w in caught:
        if issubclass(w.category, DeprecationWarning | FutureWarning):
            continue
        text = f"{w.category.__name__}: {w.message}"[:300]
        if text not in seen:
            seen.append(text)
    return seen[:limit]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
