"""scikit-learn trainers: logistic_regression, linear_regression (Ridge), random_forest, hist_gradient_boosting,
kmeans, and ensemble (a weighted average of other trainers, which AutoML builds from its best trials).
scikit-learn is imported when an estimator is built, so registering them costs nothing."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from aimaas.errors import AimaasError, Conflict, InvalidInput
from aimaas.training.base import (
    FitResult,
    Report,
    TaskKind,
    Trainer,
    TrialLike,
    get_trainer,
    register_trainer,
)
from aimaas.training.pipeline import PipelineTrainer, Validation

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

__all__ = [
    "EnsembleTrainer",
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
            # more trees never hurt a forest's accuracy, only its time: at least the default 100
            "n_estimators": trial.suggest_int("n_estimators", 100, 500, log=True),
            "max_depth": trial.suggest_categorical("max_depth", [None, 4, 8, 16]),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2", 0.3, 0.5, 1.0]),
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


@register_trainer("ensemble")
class EnsembleTrainer(Trainer):
    """A weighted average of other trainers fitted on the same rows: soft voting (weighted class probabilities,
    label = their argmax) for classification, the weighted mean for regression.

    ``members`` is a list of ``{"trainer": name, "params": {...}, "weight": w}`` (w > 0; weights are
    normalised) naming pipeline trainers (scikit-learn, LightGBM). AutoML builds one from its best trials;
    it is never searched itself (``search_space`` is empty). The ONNX export joins the members' own graphs
    over shared inputs and averages their outputs inside the graph, so serving needs nothing new.
    """

    tasks = frozenset({CLASSIFICATION, REGRESSION})
    hyperparameters: ClassVar[dict[str, Any]] = {"members": []}

    def __init__(self, *, task: TaskKind | str | None = None, random_state: int = 0, **params: Any) -> None:
        super().__init__(task=task, random_state=random_state, **params)
        self._fitted: list[tuple[Trainer, float]] = []
        self._classes: list[Any] | None = None

    @property
    def classes(self) -> list[Any] | None:
        return self._classes

    def _members(self) -> list[tuple[type[Trainer], dict[str, Any], float]]:
        members = self.params["members"]
        if not isinstance(members, list | tuple) or not members:
            raise InvalidInput("members must be a non-empty list of {trainer, params, weight}.", param="members")
        out = []
        for entry in members:
            name = entry.get("trainer") if isinstance(entry, dict) else None
            weight = entry.get("weight", 1.0) if isinstance(entry, dict) else None
            if not isinstance(name, str) or name == self.name or not isinstance(entry.get("params", {}), dict):
                raise InvalidInput("Each member needs a trainer name (not ensemble) and a params dict.",
                                   param="members")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < float("inf"):
                raise InvalidInput(f"Member weights must be positive numbers; got {weight!r}.", param="members")
            cls = get_trainer(name)
            # pipeline trainers share the column inputs and the ONNX opsets, so their graphs join safely
            if self.task not in cls.tasks or not issubclass(cls, PipelineTrainer):
                raise InvalidInput(f"Trainer {name!r} cannot be a member of a {self.task.value} ensemble; members "
                                   "are scikit-learn or LightGBM pipeline trainers that do the task.",
                                   param="members")
            out.append((cls, dict(entry.get("params", {})), float(weight)))
        total = sum(w for _, _, w in out)
        return [(cls, p, w / total) for cls, p, w in out]

    def fit(self, X: pd.DataFrame, y: Any = None, *, X_valid: pd.DataFrame | None = None, y_valid: Any = None,
            report: Report | None = None, schema: list[dict[str, Any]] | None = None,
            checkpoint_dir: Path | None = None) -> FitResult:
        started = time.perf_counter()
        members = self._members()
        if report is not None:
            report({"event": "fit_started", "trainer": self.name, "task": self.task.value, "rows": len(X),
                    "members": [cls.name for cls, _, _ in members]})
        fitted, results = [], []
        for cls, params, weight in members:
            member = cls(task=self.task, random_state=self.random_state, **params)
            results.append(member.fit(X, y, X_valid=X_valid, y_valid=y_valid, schema=schema))
            fitted.append((member, weight))
        if self.task is CLASSIFICATION and any(m.classes != fitted[0][0].classes for m, _ in fitted):
            raise InvalidInput("The ensemble members learnt different classes.", param="members")
        self._fitted, self._classes = fitted, fitted[0][0].classes
        features = list(dict.fromkeys(f for r in results for f in r.features))
        valid_score = None
        if X_valid is not None and y_valid is not None:
            from sklearn.metrics import accuracy_score, r2_score

            truth = np.asarray(y_valid)
            valid_score = float(accuracy_score(truth.astype(str), self.predict(X_valid).astype(str))
                                if self.task is CLASSIFICATION else r2_score(truth, self.predict(X_valid)))
        seconds = time.perf_counter() - started
        if report is not None:
            report({"event": "fit_finished", "seconds": round(seconds, 4), "valid_score": valid_score})
        return FitResult(
            trainer=self.name, task=self.task, params=self.get_params(), n_rows=len(X), features=features,
            dropped=[d for d in results[0].dropped if d.get("name") not in features],
            notes=list(dict.fromkeys(n for r in results for n in r.notes)), classes=self._classes,
            fit_seconds=seconds, valid_score=valid_score,
            extra={"members": [{"trainer": r.trainer, "weight": round(w, 6), "fit_seconds": round(r.fit_seconds, 4),
                                **{k: v for k, v in r.extra.items() if k in ("n_iter", "best_iteration")}}
                               for r, (_, w) in zip(results, fitted, strict=True)]},
        )

    def _require_fitted(self) -> list[tuple[Trainer, float]]:
        if not self._fitted:
            raise Conflict("The ensemble trainer is not fitted yet; call fit first.", code="not_fitted")
        return self._fitted

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.task is not CLASSIFICATION:
            raise InvalidInput(f"A {self.task.value} model has no class probabilities.", param="task")
        fitted = self._require_fitted()
        out = fitted[0][1] * np.asarray(fitted[0][0].predict_proba(X), dtype=np.float64)
        for member, weight in fitted[1:]:
            out += weight * np.asarray(member.predict_proba(X), dtype=np.float64)
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.task is CLASSIFICATION:
            return np.asarray(self._classes)[np.argmax(self.predict_proba(X), axis=1)]
        fitted = self._require_fitted()
        out = fitted[0][1] * np.asarray(fitted[0][0].predict(X), dtype=np.float64)
        for member, weight in fitted[1:]:
            out += weight * np.asarray(member.predict(X), dtype=np.float64)
        return out

    def export_onnx(self, sample: pd.DataFrame) -> bytes:
        members = [(m.export_onnx(sample), w) for m, w in self._require_fitted()]
        return _join_onnx(members, task=self.task, trainer=self.name, classes=self._classes,
                          params=self.get_params())

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {}


def _join_onnx(members: list[tuple[bytes, float]], *, task: TaskKind, trainer: str, classes: list[Any] | None,
               params: dict[str, Any]) -> bytes:
    """One ONNX graph holding every member graph (names prefixed ``m<i>_``) fed by shared raw-column inputs,
    whose output is the weighted sum of the members' probabilities (plus their argmax label) or predictions."""
    import onnx
    from onnx import TensorProto, compose, helper, numpy_helper

    from aimaas.training.onnx_check import model_metadata
    from aimaas.training.onnx_export import FORMAT_VERSION, METADATA_PREFIX

    role = "probabilities" if task is CLASSIFICATION else "prediction"
    inputs: dict[str, Any] = {}
    plan: dict[str, dict[str, Any]] = {}
    nodes: list[Any] = []
    initializers: list[Any] = []
    opsets: dict[str, int] = {}
    summed: list[str] = []
    for i, (raw, weight) in enumerate(members):
        meta = model_metadata(raw)
        if meta.get("input_kind", "columns") != "columns" or role not in meta.get("outputs", {}):
            raise AimaasError(f"Member {meta.get('trainer')!r} has no column inputs; it cannot join an ensemble.",
                              code="onnx_export_failed")
        for column in meta["inputs"]["columns"]:
            if plan.setdefault(column["input"], column)["dtype"] != column["dtype"]:
                raise AimaasError(f"Members disagree on input {column['input']!r}.", code="onnx_export_failed")
        model = onnx.load_from_string(raw)
        prefix = f"m{i}_"
        for value in model.graph.input:
            inputs.setdefault(value.name, value)
            nodes.append(helper.make_node("Identity", [value.name], [prefix + value.name]))
        model = compose.add_prefix(model, prefix=prefix)
        nodes += list(model.graph.node)
        initializers += list(model.graph.initializer)
        for entry in model.opset_import:
            opsets[entry.domain] = max(opsets.get(entry.domain, 0), entry.version)
        initializers.append(numpy_helper.from_array(np.array(weight, dtype=np.float32), f"w{i}"))
        nodes.append(helper.make_node("Mul", [prefix + meta["outputs"][role], f"w{i}"], [f"weighted{i}"]))
        summed.append(f"weighted{i}")
    nodes.append(helper.make_node("Sum", summed, [role]))
    outputs = {role: role}
    if task is CLASSIFICATION:
        graph_outputs = [helper.make_tensor_value_info(role, TensorProto.FLOAT, [None, len(classes or [])])]
        labels = np.asarray(classes)
        if labels.dtype.kind in "iu" or all(isinstance(c, str) for c in classes or []):
            int_labels = labels.dtype.kind in "iu"
            labels = labels.astype(np.int64) if int_labels else labels.astype(object)
            initializers.append(numpy_helper.from_array(labels, "class_labels"))
            nodes.append(helper.make_node("ArgMax", [role], ["best_class"], axis=1, keepdims=0))
            nodes.append(helper.make_node("Gather", ["class_labels", "best_class"], ["label"], axis=0))
            graph_outputs.insert(0, helper.make_tensor_value_info(
                "label", TensorProto.INT64 if int_labels else TensorProto.STRING, [None]))
            outputs = {"label": "label", role: role}
    else:
        graph_outputs = [helper.make_tensor_value_info(role, TensorProto.FLOAT, [None, 1])]
    graph = helper.make_graph(nodes, f"aimaas_{trainer}", list(inputs.values()), graph_outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                              producer_name="aimaas")
    model.ir_version = max(onnx.load_from_string(raw).ir_version for raw, _ in members)
    first = model_metadata(members[0][0])["inputs"]
    meta = {"format_version": FORMAT_VERSION, "trainer": trainer, "task": task.value,
            "inputs": json.dumps({**first, "columns": list(plan.values())}), "outputs": json.dumps(outputs),
            "classes": json.dumps(classes), "params": json.dumps(params, default=str)}
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = METADATA_PREFIX + key, value
    model.doc_string = f"aimaas {trainer} of {len(members)} models; inputs: one [N, 1] tensor per raw column."
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
