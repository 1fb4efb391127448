"""Every trainer fits, predicts, exports to ONNX, and ONNX Runtime reproduces its predictions."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

from aimaas.errors import Conflict, InvalidInput
from aimaas.training import TaskKind, get_trainer, model_metadata, parity, run_onnx

from .conftest import Split

FAST = {"random_forest": {"n_estimators": 25}, "lightgbm": {"n_estimators": 40},
        "hist_gradient_boosting": {"max_iter": 40}}
CLASSIFIERS = ["logistic_regression", "random_forest", "hist_gradient_boosting", "lightgbm"]
REGRESSORS = ["linear_regression", "random_forest", "hist_gradient_boosting", "lightgbm"]
PROBA_TOL = 1e-4
REL_TOL = 1e-3


def make(name: str, task: TaskKind | str, **params: Any) -> Any:
    return get_trainer(name)(task=task, random_state=0, **{**FAST.get(name, {}), **params})


def assert_clean_onnx(data: bytes, n_inputs: int) -> onnx.ModelProto:
    """Protobuf, valid, standard operators only: nothing that could carry pickle or Python code."""
    assert data[:1] != b"\x80"  # every pickle protocol >= 2 starts with PROTO 0x80
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx.ml"}
    assert len(model.graph.input) == n_inputs
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        assert len(dims) == 2 and dims[1].dim_value == 1
    return model


def check_classifier(name: str, data: Split) -> dict[str, Any]:
    trainer = make(name, "classification")
    result = trainer.fit(data.X_train, data.y_train, schema=data.schema)
    assert result.classes == sorted(set(data.y_train.tolist()))
    pred = trainer.predict(data.X_test)
    proba = trainer.predict_proba(data.X_test)
    assert pred.shape == (len(data.X_test),) and proba.shape == (len(data.X_test), len(result.classes))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (pred == np.asarray(result.classes, dtype=object)[proba.argmax(axis=1)]).all()
    blob = trainer.export_onnx(data.X_test.head())
    assert_clean_onnx(blob, len(result.features))
    report = parity(trainer, blob, data.X_test)
    assert report["label_agreement"] == 1.0
    assert report["max_abs_diff_proba"] < PROBA_TOL
    return report


def check_regressor(name: str, data: Split) -> dict[str, Any]:
    trainer = make(name, "regression")
    result = trainer.fit(data.X_train, data.y_train, schema=data.schema)
    pred = trainer.predict(data.X_test)
    assert pred.dtype == np.float64 and pred.shape == (len(data.X_test),)
    blob = trainer.export_onnx(data.X_test.head())
    assert_clean_onnx(blob, len(result.features))
    report = parity(trainer, blob, data.X_test)
    assert report["max_rel_diff"] < REL_TOL
    out = run_onnx(blob, data.X_test).values
    assert out is not None
    np.testing.assert_allclose(out, pred, rtol=REL_TOL, atol=REL_TOL)
    return report


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize("dataset", ["iris", "wine", "breast_cancer", "messy_classification"])
def test_classifier_onnx_parity(name: str, dataset: str, request: pytest.FixtureRequest) -> None:
    check_classifier(name, request.getfixturevalue(dataset))


@pytest.mark.parametrize("name", REGRESSORS)
@pytest.mark.parametrize("dataset", ["diabetes", "messy_regression"])
def test_regressor_onnx_parity(name: str, dataset: str, request: pytest.FixtureRequest) -> None:
    check_regressor(name, request.getfixturevalue(dataset))


@pytest.mark.parametrize("dataset", ["iris", "messy_classification"])
def test_kmeans_onnx_parity(dataset: str, request: pytest.FixtureRequest) -> None:
    data: Split = request.getfixturevalue(dataset)
    trainer = get_trainer("kmeans")(n_clusters=3, random_state=0)
    result = trainer.fit(data.X_train, schema=data.schema)
    assert result.classes is None and sum(result.extra["cluster_sizes"]) == len(data.X_train)
    labels = trainer.predict(data.X_test)
    assert set(labels.tolist()) <= {0, 1, 2}
    blob = trainer.export_onnx(data.X_test.head())
    assert_clean_onnx(blob, len(result.features))
    report = parity(trainer, blob, data.X_test)
    assert report["label_agreement"] == 1.0
    assert report["max_abs_diff_distance"] < 1e-3
    with pytest.raises(InvalidInput):
        trainer.predict_proba(data.X_test)


def test_metadata_describes_inputs_outputs_and_classes(messy_classification: Split) -> None:
    data = messy_classification
    trainer = make("random_forest", "classification")
    trainer.fit(data.X_train, data.y_train, schema=data.schema)
    meta = model_metadata(trainer.export_onnx(data.X_test))
    assert meta["task"] == "classification" and meta["trainer"] == "random_forest"
    assert meta["classes"] == ["churn", "stay"]
    assert meta["outputs"] == {"label": "label", "probabilities": "probabilities"}
    inputs = {c["name"]: c["dtype"] for c in meta["inputs"]["columns"]}
    assert inputs == {"age": "int64", "income": "float32", "visits": "float32", "city": "string",
                      "member": "string", "code": "string"}
    assert meta["params"]["n_estimators"] == 25
    assert [d["name"] for d in meta["inputs"]["dropped"]] == ["comment", "signup"]


def test_unseen_categories_and_missing_values_at_prediction(messy_classification: Split) -> None:
    data = messy_classification
    rows = data.X_test.head(6).copy()
    rows["city"] = ["tokyo", None, "paris", "", "lyon", "unknown"]
    rows["member"] = [None, True, False, None, "true", False]
    rows["income"] = [np.nan, 10.0, np.nan, 70.0, 55.5, np.nan]
    for name in CLASSIFIERS:
        trainer = make(name, "classification")
        trainer.fit(data.X_train, data.y_train, schema=data.schema)
        report = parity(trainer, trainer.export_onnx(rows), rows)
        assert report["label_agreement"] == 1.0 and report["max_abs_diff_proba"] < PROBA_TOL, name


def test_integer_labels_and_string_labels_survive_onnx(iris: Split) -> None:
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    y_str = pd.Series(names[iris.y_train.to_numpy()], index=iris.y_train.index, name="species")
    for y, expected in ((iris.y_train, [0, 1, 2]), (y_str, ["setosa", "versicolor", "virginica"])):
        trainer = make("lightgbm", "classification")
        assert trainer.fit(iris.X_train, y).classes == expected
        out = run_onnx(trainer.export_onnx(iris.X_test), iris.X_test)
        assert out.labels is not None
        assert [v.item() if isinstance(v, np.generic) else v for v in out.labels] == trainer.predict(
            iris.X_test).tolist()


def test_same_seed_same_model(messy_classification: Split) -> None:
    data = messy_classification
    for name in CLASSIFIERS:
        a, b = make(name, "classification"), make(name, "classification")
        a.fit(data.X_train, data.y_train, schema=data.schema)
        b.fit(data.X_train, data.y_train, schema=data.schema)
        np.testing.assert_array_equal(a.predict_proba(data.X_test), b.predict_proba(data.X_test))
        assert a.export_onnx(data.X_test) == b.export_onnx(data.X_test), name


def test_fit_result_is_json_safe(messy_regression: Split) -> None:
    data = messy_regression
    events: list[dict[str, Any]] = []
    result = make("hist_gradient_boosting", "regression").fit(
        data.X_train, data.y_train, X_valid=data.X_test, y_valid=data.y_test, report=events.append,
        schema=data.schema)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["task"] == "regression" and payload["n_rows"] == len(data.X_train)
    assert payload["features"] == ["age", "income", "visits", "city", "member", "code"]
    assert payload["valid_score"] is not None and payload["valid_score"] > 0.5
    assert [e["event"] for e in events] == ["fit_started", "fit_finished"]


def test_lightgbm_reports_iterations_and_stops_early(breast_cancer: Split) -> None:
    data = breast_cancer
    events: list[dict[str, Any]] = []
    trainer = make("lightgbm", "classification", n_estimators=300, learning_rate=0.3, early_stopping_rounds=5)
    result = trainer.fit(data.X_train, data.y_train, X_valid=data.X_test, y_valid=data.y_test, report=events.append)
    iterations = [e for e in events if e["event"] == "iteration"]
    assert iterations and "valid_binary_logloss" in iterations[0]
    assert result.extra["best_iteration"] is not None and result.extra["best_iteration"] < 300
    assert len(iterations) < 300
    report = parity(trainer, trainer.export_onnx(data.X_test), data.X_test)
    assert report["label_agreement"] == 1.0 and report["max_abs_diff_proba"] < PROBA_TOL


def test_report_can_cancel_a_fit(breast_cancer: Split) -> None:
    class Cancelled(Exception):
        pass

    def report(event: dict[str, Any]) -> None:
        if event["event"] == "iteration" and event["iteration"] == 3:
            raise Cancelled

    trainer = make("lightgbm", "classification")
    with pytest.raises(Cancelled):
        trainer.fit(breast_cancer.X_train, breast_cancer.y_train, X_valid=breast_cancer.X_test,
                    y_valid=breast_cancer.y_test, report=report)


def test_unfitted_trainer() -> None:
    trainer = make("random_forest", "regression")
    with pytest.raises(Conflict):
        trainer.predict(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(Conflict):
        trainer.export_onnx(pd.DataFrame({"x": [1.0]}))


def test_export_sample_must_have_the_columns(iris: Split) -> None:
    trainer = make("logistic_regression", "classification")
    trainer.fit(iris.X_train, iris.y_train)
    with pytest.raises(InvalidInput) as info:
        trainer.export_onnx(iris.X_test.drop(columns=["petal width (cm)"]))
    assert info.value.param == "petal width (cm)"


def test_kmeans_more_clusters_than_rows(iris: Split) -> None:
    with pytest.raises(InvalidInput) as info:
        get_trainer("kmeans")(n_clusters=20).fit(iris.X_train.head(5))
    assert info.value.param == "n_clusters"


def test_float32_thresholds_split_float32_inputs_like_float64() -> None:
    from aimaas.training.onnx_export import _float32_thresholds

    rng = np.random.default_rng(0)
    x = np.sort(rng.normal(size=2_000).astype(np.float32)).astype(np.float64)
    t64 = (x[:-1] + x[1:]) / 2  # midpoints, as tree learners choose them
    for mode, op in (("BRANCH_LEQ", np.less_equal), ("BRANCH_LT", np.less), ("BRANCH_GT", np.greater),
                     ("BRANCH_GTE", np.greater_equal)):
        t32 = np.asarray(_float32_thresholds(list(t64), [mode] * len(t64)), dtype=np.float32)
        x32 = x.astype(np.float32)
        for i in range(0, len(t64), 97):
            np.testing.assert_array_equal(op(x32, t32[i]), op(x, t64[i]))
