"""The ``mlp`` trainer: quality on small sklearn sets, preprocessing inside the ONNX graph, parity, errors."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

from aimaas.errors import Conflict, InvalidInput
from aimaas.training import get_trainer, model_metadata, parity, run_onnx, trainers_for

from .conftest import FakeTrial, Split

pytest.importorskip("torch")
PROBA_TOL = 1e-4
REL_TOL = 1e-3


def make(task: str, **params: Any) -> Any:
    return get_trainer("mlp")(task=task, **{"random_state": 0, "max_epochs": 60, **params})


def assert_column_inputs(blob: bytes, n_inputs: int) -> onnx.ModelProto:
    """Same inputs as the scikit-learn trainers: one [N, 1] tensor per raw column, standard operators only."""
    assert blob[:1] != b"\x80"
    model = onnx.load_from_string(blob)
    onnx.checker.check_model(model, full_check=True)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx.ml"}
    assert len(model.graph.input) == n_inputs
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        assert len(dims) == 2 and dims[1].dim_value == 1
    return model


def test_mlp_is_registered_for_tabular_tasks() -> None:
    assert "mlp" in trainers_for("classification") and "mlp" in trainers_for("regression")
    assert "mlp" not in trainers_for("classification", modality="image")
    assert get_trainer("mlp").checkpoints


@pytest.mark.parametrize(("dataset", "minimum"), [("iris", 0.9), ("wine", 0.9)])
def test_classification_quality_and_parity(dataset: str, minimum: float, request: pytest.FixtureRequest) -> None:
    data: Split = request.getfixturevalue(dataset)
    trainer = make("classification", max_epochs=150)
    result = trainer.fit(data.X_train, data.y_train)
    assert result.classes == sorted(set(data.y_train.tolist()))
    proba = trainer.predict_proba(data.X_test)
    pred = trainer.predict(data.X_test)
    assert proba.shape == (len(data.X_test), len(result.classes)) and pred.shape == (len(data.X_test),)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert np.mean(pred == data.y_test.to_numpy()) >= minimum
    blob = trainer.export_onnx(data.X_test.head())
    assert_column_inputs(blob, len(result.features))
    report = parity(trainer, blob, data.X_test)
    assert report["label_agreement"] == 1.0 and report["max_abs_diff_proba"] < PROBA_TOL


def test_regression_quality_and_parity(diabetes: Split) -> None:
    from sklearn.metrics import r2_score

    trainer = make("regression", max_epochs=100)
    result = trainer.fit(diabetes.X_train, diabetes.y_train, X_valid=diabetes.X_test, y_valid=diabetes.y_test)
    pred = trainer.predict(diabetes.X_test)
    assert pred.dtype == np.float64 and pred.shape == (len(diabetes.X_test),)
    # the target is standardised inside and mapped back: predictions are on the original scale
    assert abs(pred.mean() - diabetes.y_train.mean()) < 0.3 * diabetes.y_train.std()
    score = r2_score(diabetes.y_test, pred)
    assert score > 0.3 and result.valid_score == pytest.approx(score, abs=1e-4)
    blob = trainer.export_onnx(diabetes.X_test.head())
    assert_column_inputs(blob, len(result.features))
    assert model_metadata(blob)["outputs"] == {"prediction": "prediction"}
    report = parity(trainer, blob, diabetes.X_test)
    assert report["max_rel_diff"] < REL_TOL
    with pytest.raises(InvalidInput):
        trainer.predict_proba(diabetes.X_test)


@pytest.mark.parametrize("target", ["label", "spend"])
def test_messy_columns_are_preprocessed_inside_the_onnx_graph(
        target: str, messy_classification: Split, messy_regression: Split) -> None:
    data = messy_classification if target == "label" else messy_regression
    task = "classification" if target == "label" else "regression"
    trainer = make(task, max_epochs=40)
    result = trainer.fit(data.X_train, data.y_train, schema=data.schema)
    assert result.features == ["age", "income", "visits", "city", "member", "code"]
    assert [d["name"] for d in result.dropped] == ["comment", "signup"]
    blob = trainer.export_onnx(data.X_test.head())
    model = assert_column_inputs(blob, 6)
    types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert types == {"age": onnx.TensorProto.INT64, "income": onnx.TensorProto.FLOAT,
                     "visits": onnx.TensorProto.FLOAT, "city": onnx.TensorProto.STRING,
                     "member": onnx.TensorProto.STRING, "code": onnx.TensorProto.STRING}
    meta = model_metadata(blob)
    assert meta["input_kind"] == "columns" and meta["trainer"] == "mlp" and meta["task"] == task
    assert [c["name"] for c in meta["inputs"]["columns"]] == result.features
    rows = data.X_test.head(6).copy()
    rows["city"] = ["tokyo", None, "paris", "", "lyon", "unknown"]  # unseen and missing categories
    rows["income"] = [np.nan, 10.0, np.nan, 70.0, 55.5, np.nan]
    report = parity(trainer, blob, pd.concat([data.X_test, rows]))
    if task == "classification":
        assert meta["classes"] == ["churn", "stay"]
        assert meta["outputs"] == {"label": "label", "probabilities": "probabilities"}
        assert report["label_agreement"] == 1.0 and report["max_abs_diff_proba"] < PROBA_TOL
    else:
        assert report["max_rel_diff"] < REL_TOL


def test_integer_and_string_labels_come_out_of_the_onnx_label_output(iris: Split) -> None:
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    y_str = pd.Series(names[iris.y_train.to_numpy()], index=iris.y_train.index, name="species")
    for y, expected in ((iris.y_train, [0, 1, 2]), (y_str, ["setosa", "versicolor", "virginica"])):
        trainer = make("classification", max_epochs=20)
        assert trainer.fit(iris.X_train, y).classes == expected
        out = run_onnx(trainer.export_onnx(iris.X_test), iris.X_test)
        assert out.labels is not None
        labels = [v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v
                  for v in out.labels]
        assert labels == trainer.predict(iris.X_test).tolist()


def test_validation_rows_early_stopping_and_events(breast_cancer: Split) -> None:
    events: list[dict[str, Any]] = []
    trainer = make("classification", max_epochs=300, patience=3, lr=0.01)
    result = trainer.fit(breast_cancer.X_train, breast_cancer.y_train, X_valid=breast_cancer.X_test,
                         y_valid=breast_cancer.y_test, report=events.append)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert result.extra["stop_reason"] == "early_stopping" and len(epochs) < 300
    assert result.extra["epochs"] == result.extra["best_epoch"] + 3 == len(epochs)
    assert [e["event"] for e in events][0] == "fit_started" and events[-1]["event"] == "fit_finished"
    assert epochs[0]["epochs"] == 300 and all(e["valid_score"] is not None for e in epochs)
    assert result.valid_score is not None and result.valid_score > 0.9
    assert result.valid_score == pytest.approx(epochs[result.extra["best_epoch"] - 1]["valid_score"], abs=1e-6)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["extra"]["holdout_score"] is None and len(payload["extra"]["history"]) == len(epochs)


def test_a_validation_class_never_seen_in_training_counts_as_wrong(iris: Split) -> None:
    keep = iris.y_train != 2
    trainer = make("classification", max_epochs=20)
    result = trainer.fit(iris.X_train[keep], iris.y_train[keep], X_valid=iris.X_test, y_valid=iris.y_test)
    assert result.classes == [0, 1]
    share_unseen = float(np.mean(iris.y_test == 2))
    assert result.valid_score is not None and result.valid_score <= 1 - share_unseen + 1e-9


def test_same_seed_same_model(wine: Split) -> None:
    a, b = make("classification", max_epochs=10), make("classification", max_epochs=10)
    a.fit(wine.X_train, wine.y_train)
    b.fit(wine.X_train, wine.y_train)
    np.testing.assert_array_equal(a.predict_proba(wine.X_test), b.predict_proba(wine.X_test))
    assert a.export_onnx(wine.X_test) == b.export_onnx(wine.X_test)
    c = make("classification", max_epochs=10, random_state=1)
    c.fit(wine.X_train, wine.y_train)
    assert not np.array_equal(a.predict_proba(wine.X_test), c.predict_proba(wine.X_test))


def test_errors_name_what_to_fix(iris: Split) -> None:
    with pytest.raises(Conflict):
        make("classification").predict(iris.X_test)
    with pytest.raises(InvalidInput) as info:
        make("classification").fit(iris.X_train.to_numpy(), iris.y_train)
    assert info.value.param == "features"
    with pytest.raises(InvalidInput) as info:
        make("classification", hidden_units=0).fit(iris.X_train, iris.y_train)
    assert info.value.param == "hidden_units"
    with pytest.raises(InvalidInput) as info:
        get_trainer("mlp")(task="classification", hidden_size=3)
    assert info.value.param == "hidden_size"
    with pytest.raises(InvalidInput) as info:
        get_trainer("mlp")(task="clustering")
    assert info.value.param == "task"
    trainer = make("classification", max_epochs=2)
    trainer.fit(iris.X_train, iris.y_train)
    with pytest.raises(InvalidInput) as info:
        trainer.predict(iris.X_test.drop(columns=["petal width (cm)"]))
    assert info.value.param == "petal width (cm)" and "missing" in info.value.message
    with pytest.raises(InvalidInput) as info:
        trainer.export_onnx(iris.X_test.drop(columns=["sepal length (cm)"]))
    assert info.value.param == "sepal length (cm)"


def test_search_space_draws_valid_hyperparameters(iris: Split) -> None:
    for seed in range(3):
        params = get_trainer("mlp").search_space(FakeTrial(seed))
        trainer = make("classification", **{**params, "max_epochs": 3})
        trainer.fit(iris.X_train, iris.y_train)
        assert trainer.predict(iris.X_test).shape == (len(iris.X_test),)
