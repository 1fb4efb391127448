"""Evaluation metrics match sklearn.metrics computed directly, and everything is JSON-safe."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as m
from sklearn.calibration import calibration_curve

from aimaas.errors import InvalidInput
from aimaas.training import (
    evaluate_classification,
    evaluate_clustering,
    evaluate_regression,
    get_trainer,
    permutation_importance_table,
)

from .conftest import Split


def roundtrip(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    return out


def fitted(name: str, task: str, data: Split, **params: Any) -> Any:
    trainer = get_trainer(name)(task=task, random_state=0, **params)
    trainer.fit(data.X_train, data.y_train, schema=data.schema)
    return trainer


def test_binary_classification_metrics(breast_cancer: Split) -> None:
    trainer = fitted("logistic_regression", "classification", breast_cancer)
    y, pred = breast_cancer.y_test.to_numpy(), trainer.predict(breast_cancer.X_test)
    proba = trainer.predict_proba(breast_cancer.X_test)
    out = roundtrip(evaluate_classification(y, pred, proba, trainer.classes))
    assert out["accuracy"] == pytest.approx(m.accuracy_score(y, pred))
    assert out["balanced_accuracy"] == pytest.approx(m.balanced_accuracy_score(y, pred))
    for avg in ("macro", "weighted"):
        assert out[f"precision_{avg}"] == pytest.approx(m.precision_score(y, pred, average=avg))
        assert out[f"recall_{avg}"] == pytest.approx(m.recall_score(y, pred, average=avg))
        assert out[f"f1_{avg}"] == pytest.approx(m.f1_score(y, pred, average=avg))
    per_class = m.precision_recall_fscore_support(y, pred, labels=[0, 1])
    assert [r["label"] for r in out["per_class"]] == [0, 1]
    for i, row in enumerate(out["per_class"]):
        assert row["precision"] == pytest.approx(per_class[0][i])
        assert row["recall"] == pytest.approx(per_class[1][i])
        assert row["f1"] == pytest.approx(per_class[2][i])
        assert row["support"] == per_class[3][i]
    assert out["roc_auc"] == pytest.approx(m.roc_auc_score(y, proba[:, 1]))
    assert out["log_loss"] == pytest.approx(m.log_loss(y, proba))
    assert out["confusion_matrix"] == {"labels": [0, 1], "matrix": m.confusion_matrix(y, pred).tolist()}
    calib = out["calibration"]
    assert calib["positive_label"] == 1 and calib["n_bins"] == 10
    frac, mean = calibration_curve(y, proba[:, 1], n_bins=10, strategy="uniform")
    np.testing.assert_allclose([p["fraction_positive"] for p in calib["points"]], frac)
    np.testing.assert_allclose([p["mean_predicted"] for p in calib["points"]], mean)
    assert sum(p["count"] for p in calib["points"]) == len(y)


def test_multiclass_classification_metrics(wine: Split) -> None:
    trainer = fitted("random_forest", "classification", wine, n_estimators=25)
    y, pred = wine.y_test.to_numpy(), trainer.predict(wine.X_test)
    proba = trainer.predict_proba(wine.X_test)
    out = roundtrip(evaluate_classification(y, pred, proba, trainer.classes))
    assert out["roc_auc"] == pytest.approx(m.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert out["log_loss"] == pytest.approx(m.log_loss(y, proba, labels=[0, 1, 2]))
    assert out["confusion_matrix"]["matrix"] == m.confusion_matrix(y, pred, labels=[0, 1, 2]).tolist()
    assert out["calibration"] is None
    assert out["f1_macro"] == pytest.approx(m.f1_score(y, pred, average="macro"))


def test_string_labels_and_no_probabilities(messy_classification: Split) -> None:
    data = messy_classification
    trainer = fitted("hist_gradient_boosting", "classification", data, max_iter=30)
    pred = trainer.predict(data.X_test)
    out = roundtrip(evaluate_classification(data.y_test.to_numpy(), pred, None, trainer.classes))
    assert out["confusion_matrix"]["labels"] == ["churn", "stay"]
    assert out["roc_auc"] is None and out["log_loss"] is None and out["calibration"] is None
    assert out["accuracy"] == pytest.approx(m.accuracy_score(data.y_test, pred))


def test_roc_auc_is_none_when_only_one_class_is_present() -> None:
    out = evaluate_classification(["a", "a"], ["a", "b"], np.array([[0.6, 0.4], [0.3, 0.7]]), ["a", "b"])
    assert out["roc_auc"] is None
    roundtrip(out)


def test_a_label_unseen_in_training_does_not_break_metrics() -> None:
    proba = np.array([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]])
    out = roundtrip(evaluate_classification(["a", "b", "c"], ["a", "b", "a"], proba, ["a", "b"]))
    assert out["log_loss"] is None and out["accuracy"] == pytest.approx(2 / 3)
    assert out["confusion_matrix"]["labels"] == ["a", "b"]


def test_regression_metrics(diabetes: Split) -> None:
    trainer = fitted("linear_regression", "regression", diabetes)
    y, pred = diabetes.y_test.to_numpy(), trainer.predict(diabetes.X_test)
    out = roundtrip(evaluate_regression(y, pred))
    assert out["mae"] == pytest.approx(m.mean_absolute_error(y, pred))
    assert out["rmse"] == pytest.approx(np.sqrt(m.mean_squared_error(y, pred)))
    assert out["r2"] == pytest.approx(m.r2_score(y, pred))
    residual = y - pred
    assert out["residuals"]["mean"] == pytest.approx(residual.mean())
    assert out["residuals"]["quantiles"]["p50"] == pytest.approx(np.median(residual))
    assert len(out["residual_sample"]) == len(y)
    assert out["residual_sample"][0] == pytest.approx({"pred": pred[0], "residual": residual[0]})


def test_residual_sample_is_capped_and_seeded() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=5_000)
    pred = y + rng.normal(scale=0.1, size=5_000)
    a, b = evaluate_regression(y, pred), evaluate_regression(y, pred)
    assert len(a["residual_sample"]) == 1_000
    assert a["residual_sample"] == b["residual_sample"]


def test_clustering_metrics(iris: Split) -> None:
    trainer = get_trainer("kmeans")(n_clusters=3, random_state=0)
    trainer.fit(iris.X_train)
    X = trainer.preprocess(iris.X_test)
    labels = trainer.predict(iris.X_test)
    out = roundtrip(evaluate_clustering(X, labels))
    assert out["silhouette"] == pytest.approx(m.silhouette_score(X, labels))
    assert out["n_clusters"] == 3 and sum(out["cluster_sizes"].values()) == len(labels)
    assert evaluate_clustering(X, np.zeros(len(X), dtype=int))["silhouette"] is None


def test_permutation_importance_finds_the_signal() -> None:
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"signal": rng.normal(size=n), "noise": rng.normal(size=n),
                      "colour": rng.choice(["red", "blue"], n)})
    y_cls = pd.Series(np.where(X["signal"] > 0, "up", "down"), name="direction")
    y_reg = pd.Series(3 * X["signal"] + (X["colour"] == "red") * 2 + rng.normal(scale=0.1, size=n), name="value")
    trainer = get_trainer("logistic_regression")()
    trainer.fit(X, y_cls)
    table = roundtrip(permutation_importance_table(trainer, X, y_cls, "accuracy", n_repeats=3, seed=0))
    assert table["metric"] == "accuracy" and table["n_repeats"] == 3 and table["rows"] == n
    assert table["features"][0]["feature"] == "signal"
    assert table["features"][0]["importance_mean"] > 0.3
    assert {r["feature"] for r in table["features"]} == {"signal", "noise", "colour"}
    again = permutation_importance_table(trainer, X, y_cls, "accuracy", n_repeats=3, seed=0)
    assert again["features"] == table["features"]
    loss = permutation_importance_table(trainer, X, y_cls, "log_loss", n_repeats=2)
    assert loss["features"][0]["feature"] == "signal" and loss["features"][0]["importance_mean"] > 0

    reg = get_trainer("linear_regression")()
    reg.fit(X, y_reg)
    table = permutation_importance_table(reg, X, y_reg, None, n_repeats=2)
    assert table["metric"] == "r2"
    assert [r["feature"] for r in table["features"]][:2] == ["signal", "colour"]
    assert permutation_importance_table(reg, X, y_reg, "rmse", n_repeats=2)["features"][0]["feature"] == "signal"


def test_permutation_importance_for_clustering(iris: Split) -> None:
    trainer = get_trainer("kmeans")(n_clusters=3, random_state=0)
    trainer.fit(iris.X_train)
    table = roundtrip(permutation_importance_table(trainer, iris.X_test, None, n_repeats=2))
    assert table["metric"] == "cluster_agreement" and table["baseline"] == 1.0
    assert len(table["features"]) == 4


def test_permutation_importance_rejects_a_wrong_metric(iris: Split) -> None:
    trainer = fitted("logistic_regression", "classification", iris)
    with pytest.raises(InvalidInput) as info:
        permutation_importance_table(trainer, iris.X_test, iris.y_test, "r2")
    assert info.value.param == "metric"
    with pytest.raises(InvalidInput):
        permutation_importance_table(trainer, iris.X_test, iris.y_test, "auc_pr")
