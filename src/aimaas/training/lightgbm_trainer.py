"""The LightGBM trainer (classifier or regressor). lightgbm is imported when the estimator is built.

With validation rows it evaluates every iteration on them, reports ``{"event": "iteration", ...}`` and, when
``early_stopping_rounds`` > 0, stops early; the exported ONNX model keeps the best iteration.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from aimaas.errors import AimaasError
from aimaas.training.base import Report, TaskKind, TrialLike, register_trainer
from aimaas.training.pipeline import PipelineTrainer, Validation

__all__ = ["LightGBMTrainer"]


@register_trainer("lightgbm")
class LightGBMTrainer(PipelineTrainer):
    """Gradient-boosted trees from LightGBM on imputed numeric + one-hot columns (``deterministic=True``)."""

    tasks = frozenset({TaskKind.CLASSIFICATION, TaskKind.REGRESSION})
    scale_numeric = False
    hyperparameters: ClassVar[dict[str, Any]] = {
        "n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31, "max_depth": -1, "min_child_samples": 20,
        "subsample": 1.0, "subsample_freq": 0, "colsample_bytree": 1.0, "reg_alpha": 0.0, "reg_lambda": 0.0,
        "class_weight": None, "early_stopping_rounds": 0, "n_jobs": 1,
    }

    def _make_estimator(self) -> Any:
        try:
            from lightgbm import LGBMClassifier, LGBMRegressor
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise AimaasError("The lightgbm trainer needs the 'train' extra (pip install 'aimaas[train]').",
                              code="trainer_unavailable") from None
        p = dict(self.params)
        p.pop("max_categories")
        p.pop("early_stopping_rounds")
        if self.task is TaskKind.REGRESSION:
            p.pop("class_weight")
            cls: Any = LGBMRegressor
        else:
            cls = LGBMClassifier
        return cls(random_state=self.random_state, deterministic=True, force_col_wise=True, verbose=-1, **p)

    def _fit_estimator(self, estimator: Any, X: np.ndarray, y: np.ndarray | None, valid: Validation | None,
                       report: Report | None) -> dict[str, Any]:
        import lightgbm

        if valid is None or valid.y is None:
            estimator.fit(X, y)
            return {"n_iter": int(estimator.n_estimators_)}
        callbacks: list[Any] = []
        rounds = int(self.params["early_stopping_rounds"] or 0)
        if rounds > 0:
            callbacks.append(lightgbm.early_stopping(rounds, first_metric_only=True, verbose=False))
        if report is not None:
            callbacks.append(_reporter(report))
        estimator.fit(X, y, eval_set=[(valid.X, valid.y)], eval_names=["valid"], callbacks=callbacks)
        best = int(estimator.best_iteration_ or 0)
        return {"n_iter": int(estimator.n_estimators_), "best_iteration": best or None}

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {
            # 500 rounds at most: with 10 classes a round is 10 trees, and 1000 of them made one trial cost
            # a tenth of a 60 s budget; a low learning rate with few rounds is left for TPE to avoid
            "n_estimators": trial.suggest_int("n_estimators", 50, 500, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "subsample_freq": trial.suggest_categorical("subsample_freq", [0, 1]),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 10.0, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True),
        }


def _reporter(report: Report) -> Any:
    def callback(env: Any) -> None:
        event: dict[str, Any] = {"event": "iteration", "iteration": int(env.iteration) + 1}
        for data_name, metric, value, _ in env.evaluation_result_list:
            event[f"{data_name}_{metric}"] = float(value)
        report(event)

    callback.order = 30  # type: ignore[attr-defined]  # after LightGBM's own evaluation callbacks
    return callback
