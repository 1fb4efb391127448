"""scikit-learn trainers: logistic_regression, linear_regression (Ridge), random_forest, hist_gradient_boosting,
kmeans. scikit-learn is imported when an estimator is built, so registering them costs nothing."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from aimaas.errors import InvalidInput
from aimaas.training.base import Report, TaskKind, TrialLike, register_trainer
from aimaas.training.pipeline import PipelineTrainer, Validation

__all__ = [
    "HistGradientBoostingTrainer",
    "KMeansTrainer",
    "LinearRegressionTrainer",
    "LogisticRegressionTrainer",
    "RandomForestTrainer",
]

CLASSIFICATION, REGRESSION, CLUSTERING = TaskKind.CLASSIFICATION, TaskKind.REGRESSION, TaskKind.CLUSTERING


@register_trainer("logistic_regression")
class LogisticRegressionTrainer(PipelineTrainer):
    """Multinomial logistic regression on scaled numeric + one-hot columns. ``l1_ratio`` > 0 switches the
    solver from lbfgs to saga (elastic net)."""

    tasks = frozenset({CLASSIFICATION})
    hyperparameters: ClassVar[dict[str, Any]] = {"C": 1.0, "l1_ratio": 0.0, "class_weight": None, "max_iter": 1000}

    def _make_estimator(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        p = self.params
        solver = "lbfgs" if not p["l1_ratio"] else "saga"
        return LogisticRegression(C=p["C"], l1_ratio=p["l1_ratio"], class_weight=p["class_weight"],
                                  max_iter=p["max_iter"], solver=solver, random_state=self.random_state)

    def _fit_estimator(self, estimator: Any, X: np.ndarray, y: np.ndarray | None, valid: Validation | None,
                       report: Report | None) -> dict[str, Any]:
        estimator.fit(X, y)
        return {"n_iter": int(np.max(estimator.n_iter_))}

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {
            "C": trial.suggest_float("C", 1e-3, 1e2, log=True),
            "class_weight": trial.suggest_categorical("class_weight", [None, "balanced"]),
        }


@register_trainer("linear_regression")
class LinearRegressionTrainer(PipelineTrainer):
    """Ridge regression (L2-regularised least squares) on scaled numeric + one-hot columns."""

    tasks = frozenset({REGRESSION})
    hyperparameters: ClassVar[dict[str, Any]] = {"alpha": 1.0, "fit_intercept": True}

    def _make_estimator(self) -> Any:
        from sklearn.linear_model import Ridge

        return Ridge(alpha=self.params["alpha"], fit_intercept=self.params["fit_intercept"],
                     random_state=self.random_state)

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {"alpha": trial.suggest_float("alpha", 1e-4, 1e3, log=True)}


@register_trainer("random_forest")
class RandomForestTrainer(PipelineTrainer):
    """Random forest classifier or regressor. ``max_features=None`` means the task's usual default
    (``"sqrt"`` for classification, all features for regression)."""

    tasks = frozenset({CLASSIFICATION, REGRESSION})
    scale_numeric = False
    hyperparameters: ClassVar[dict[str, Any]] = {
        "n_estimators": 100, "max_depth": None, "min_samples_leaf": 1, "max_features": None, "n_jobs": None,
    }

    def _make_estimator(self) -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        p = dict(self.params)
        p.pop("max_categories")
        classify = self.task is CLASSIFICATION
        if p["max_features"] is None:
            p["max_features"] = "sqrt" if classify else 1.0
        cls = RandomForestClassifier if classify else RandomForestRegressor
        return cls(random_state=self.random_state, **p)

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 400, log=True),
            "max_depth": trial.suggest_categorical("max_depth", [None, 4, 8, 16]),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2", 0.5, 1.0]),
        }


@register_trainer("hist_gradient_boosting")
class HistGradientBoostingTrainer(PipelineTrainer):
    """scikit-learn's histogram gradient boosting. With validation rows and ``early_stopping`` not False,
    boosting stops on them (instead of an internal split)."""

    tasks = frozenset({CLASSIFICATION, REGRESSION})
    scale_numeric = False
    hyperparameters: ClassVar[dict[str, Any]] = {
        "learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "max_depth": None, "min_samples_leaf": 20,
        "l2_regularization": 0.0, "early_stopping": "auto", "n_iter_no_change": 10,
    }

    def _make_estimator(self) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        p = dict(self.params)
        p.pop("max_categories")
        cls = HistGradientBoostingClassifier if self.task is CLASSIFICATION else HistGradientBoostingRegressor
        return cls(random_state=self.random_state, **p)

    def _fit_estimator(self, estimator: Any, X: np.ndarray, y: np.ndarray | None, valid: Validation | None,
                       report: Report | None) -> dict[str, Any]:
        if valid is not None and valid.y is not None and self.params["early_stopping"] is not False:
            estimator.set_params(early_stopping=True)
            estimator.fit(X, y, X_val=valid.X, y_val=valid.y)
        else:
            estimator.fit(X, y)
        return {"n_iter": int(estimator.n_iter_)}

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_iter": trial.suggest_int("max_iter", 50, 500, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True),
        }


@register_trainer("kmeans")
class KMeansTrainer(PipelineTrainer):
    """k-means clustering on scaled numeric + one-hot columns; ``predict`` gives cluster ids."""

    tasks = frozenset({CLUSTERING})
    hyperparameters: ClassVar[dict[str, Any]] = {"n_clusters": 8, "n_init": "auto", "max_iter": 300}

    def _make_estimator(self) -> Any:
        from sklearn.cluster import KMeans

        p = self.params
        return KMeans(n_clusters=p["n_clusters"], n_init=p["n_init"], max_iter=p["max_iter"],
                      random_state=self.random_state)

    def _fit_estimator(self, estimator: Any, X: np.ndarray, y: np.ndarray | None, valid: Validation | None,
                       report: Report | None) -> dict[str, Any]:
        k = self.params["n_clusters"]
        if isinstance(k, int) and k > X.shape[0]:
            raise InvalidInput(f"n_clusters={k} is more than the {X.shape[0]} rows.", param="n_clusters")
        estimator.fit(X)
        sizes = np.bincount(estimator.labels_, minlength=estimator.n_clusters)
        return {"inertia": float(estimator.inertia_), "n_iter": int(estimator.n_iter_),
                "cluster_sizes": [int(n) for n in sizes]}

    def cluster_distances(self, X: Any) -> np.ndarray:
        """Distance of each raw row to every cluster centre (the ONNX ``distances`` output)."""
        return np.asarray(self._run("transform", X), dtype=np.float64)

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {"n_clusters": trial.suggest_int("n_clusters", 2, 20)}
