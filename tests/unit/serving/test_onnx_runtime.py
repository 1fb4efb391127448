"""The ONNX runtime serves what our trainers export exactly as ``onnx_check.run_onnx`` predicts it, checks rows,
and runs imported graphs on their own tensors."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aimaas.errors import InvalidInput
from aimaas.serving.runtime import ModelSource, Prediction, runtime_for

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

from aimaas.serving.onnx_runtime import OnnxModelRuntime  # noqa: E402
from aimaas.training import get_trainer, run_onnx  # noqa: E402
from aimaas.training.onnx_check import onnx_inputs  # noqa: E402
from aimaas.training.preprocessing import FeaturePlan  # noqa: E402


def serve(blob: bytes, tmp: Path, task: str = "classification") -> OnnxModelRuntime:
    path = tmp / f"model-{len(blob)}-{hash(blob) & 0xFFFF}.onnx"
    path.write_bytes(blob)
    runtime = runtime_for(ModelSource(path=path, format="onnx", task=task, model="m"))
    assert isinstance(runtime, OnnxModelRuntime) and runtime.capabilities == {"predict"}
    runtime.load()
    return runtime


def records(X: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-like rows: Python scalars, None for missing values."""
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v.item() if isinstance(v, np.generic) else v)
             for k, v in row.items()} for row in X.astype(object).to_dict(orient="records")]


def assert_classifier_matches(predictions: list[Prediction], blob: bytes, X: pd.DataFrame) -> None:
    expected = run_onnx(blob, X)
    assert expected.labels is not None and expected.probabilities is not None
    assert [p.label for p in predictions] == [v.item() if isinstance(v, np.generic) else v for v in expected.labels]
    got = np.asarray([list(p.probabilities.values()) for p in predictions if p.probabilities is not None])
    np.testing.assert_allclose(got, expected.probabilities, rtol=0, atol=1e-7)


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return data.data, data.target.map(dict(enumerate(data.target_names))).rename("species")


@pytest.fixture(scope="module")
def iris_model(iris: tuple[pd.DataFrame, pd.Series], tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[OnnxModelRuntime, bytes]:
    X, y = iris
    trainer = get_trainer("logistic_regression")(task="classification", random_state=0)
    trainer.fit(X, y)
    blob = trainer.export_onnx(X.head())
    return serve(blob, tmp_path_factory.mktemp("iris")), blob


def test_classifier_rows_equal_run_onnx(iris: tuple[pd.DataFrame, pd.Series],
                                        iris_model: tuple[OnnxModelRuntime, bytes]) -> None:
    runtime, blob = iris_model
    X = iris[0].iloc[::7]
    predictions = runtime.predict(records(X))
    assert_classifier_matches(predictions, blob, X)
    first = predictions[0]
    assert isinstance(first.label, str) and type(first.label) is str
    assert first.probabilities is not None and list(first.probabilities) == ["setosa", "versicolor", "virginica"]
    assert all(type(v) is float for v in first.probabilities.values())
    assert runtime.predict([]) == []
    assert runtime.metadata["task"] == "classification" and runtime.input_kind == "columns"
    assert runtime.memory_bytes == len(blob)


def test_rows_are_checked_column_by_column(iris: tuple[pd.DataFrame, pd.Series],
                                           iris_model: tuple[OnnxModelRuntime, bytes]) -> None:
    runtime, _ = iris_model
    rows = records(iris[0].head(3))
    column = "petal width (cm)"
    with pytest.raises(InvalidInput) as missing:
        runtime.predict([rows[0], {k: v for k, v in rows[1].items() if k != column}, rows[2]])
    assert missing.value.param == column and "Row 1" in str(missing.value) and repr(column) in str(missing.value)
    with pytest.raises(InvalidInput) as text:
        runtime.predict([rows[0], rows[1], {**rows[2], column: "wide"}])
    assert text.value.param == column and "Row 2" in str(text.value) and "'wide'" in str(text.value)
    for bad in ([1, 2], {"a": 1}):
        with pytest.raises(InvalidInput) as nested:
            runtime.predict([{**rows[0], column: bad}])
        assert nested.value.param == column and "Row 0" in str(nested.value)
    with pytest.raises(InvalidInput) as not_a_row:
        runtime.predict([rows[0], [1, 2, 3, 4]])  # type: ignore[list-item]
    assert not_a_row.value.param == "rows" and "Row 1" in str(not_a_row.value)
    # Unknown columns are ignored; numeric text reads as the number; null is a missing value (imputed).
    plain = runtime.predict(rows)
    assert runtime.predict([{**r, "comment": "ignored"} for r in rows]) == plain
    assert runtime.predict([{k: str(v) for k, v in r.items()} for r in rows]) == plain
    with_null = [{**rows[0], column: None}]
    assert runtime.predict(with_null)[0] == runtime.predict([{**rows[0], column: ""}])[0]
    assert_classifier_matches(runtime.predict(with_null), iris_model[1], pd.DataFrame(with_null, dtype=float))


def test_numeric_fast_path_equals_the_frame_path(iris_model: tuple[OnnxModelRuntime, bytes]) -> None:
    runtime, _ = iris_model
    plan: FeaturePlan = runtime._plan
    names = [c.name for c in plan.columns]
    oddities: list[Any] = [1, 2.5, True, None, "3.25", " 4 ", "", 1e30, -0.0, 10**20, np.float32(1.1)]
    rng = np.random.default_rng(0)
    for mix in range(6):
        rows = [{n: (oddities[int(rng.integers(len(oddities)))] if mix else float(rng.normal())) for n in names}
                for _ in range(9)]
        fast = runtime._feed(rows)
        reference = onnx_inputs(pd.DataFrame(rows), plan)
        assert fast.keys() == reference.keys()
        for name, expected in reference.items():
            assert fast[name].dtype == expected.dtype and fast[name].shape == expected.shape
            np.testing.assert_array_equal(fast[name], expected)


def test_mixed_columns_match_run_onnx(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 120
    X = pd.DataFrame({"age": rng.integers(18, 80, n), "income": np.where(rng.random(n) < 0.1, np.nan,
                                                                         rng.normal(50, 10, n)),
                      "city": rng.choice(np.array(["paris", "lyon", None], dtype=object), n),
                      "member": rng.choice(np.array([True, False], dtype=object), n)})
    y = pd.Series(np.where((X["age"] > 45) ^ (X["city"] == "paris"), 1, 0), name="churn")
    trainer = get_trainer("logistic_regression")(task="classification", random_state=0)
    trainer.fit(X, y)
    blob = trainer.export_onnx(X.head())
    runtime = serve(blob, tmp_path)
    rows = records(X.head(20))
    predictions = runtime.predict(rows)
    assert_classifier_matches(predictions, blob, X.head(20))
    assert {type(p.label) for p in predictions} == {int} and set(predictions[0].probabilities or {}) == {"0", "1"}
    feed, reference = runtime._feed(rows), onnx_inputs(pd.DataFrame(rows), runtime._plan)
    for name, expected in reference.items():
        assert feed[name].dtype == expected.dtype
        np.testing.assert_array_equal(feed[name], expected)
    with pytest.raises(InvalidInput) as missing_int:
        runtime.predict([rows[0], {**rows[1], "age": None}])
    assert missing_int.value.param == "age" and "Row 1" in str(missing_int.value)
    with pytest.raises(InvalidInput) as fractional:
        runtime.predict([{**rows[0], "age": 30.5}])
    assert fractional.value.param == "age"
    with pytest.raises(InvalidInput) as listed:
        runtime.predict([rows[0], rows[1], {**rows[2], "city": ["paris"]}])
    assert listed.value.param == "city" and "Row 2" in str(listed.value)


def test_regression_and_clustering(iris: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    trainer = get_trainer("linear_regression")(task="regression", random_state=0)
    trainer.fit(X, y)
    blob = trainer.export_onnx(X.head())
    values = [p.value for p in serve(blob, tmp_path, "regression").predict(records(X.head(25)))]
    assert all(type(v) is float for v in values)
    np.testing.assert_allclose(values, run_onnx(blob, X.head(25)).values, rtol=1e-6)

    one = X[["bmi"]]  # a single input column
    trainer = get_trainer("linear_regression")(task="regression", random_state=0)
    trainer.fit(one, y)
    blob = trainer.export_onnx(one.head())
    values = [p.value for p in serve(blob, tmp_path, "regression").predict(records(one.head(5)))]
    np.testing.assert_allclose(values, run_onnx(blob, one.head(5)).values, rtol=1e-6)

    kmeans = get_trainer("kmeans")(task="clustering", random_state=0, n_clusters=3)
    kmeans.fit(iris[0])
    blob = kmeans.export_onnx(iris[0].head())
    predictions = serve(blob, tmp_path, "clustering").predict(records(iris[0]))
    assert [p.cluster for p in predictions] == run_onnx(blob, iris[0]).labels.tolist()
    assert {type(p.cluster) for p in predictions} == {int} and predictions[0].to_dict().keys() == {"cluster"}


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(out, format="PNG")
    return out.getvalue()


def test_image_model_takes_base64_or_bytes(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = pd.DataFrame({"image": [_png(np.floor(im * 255 / 16)) for im in digits.images[:60]]})
    y = pd.Series(digits.target[:60], name="digit")
    trainer = get_trainer("cnn")(task="classification", random_state=0, filters=4, dense_units=8, max_epochs=1,
                                 augment=False)
    trainer.fit(X, y)
    blob = trainer.export_onnx(X.head())
    runtime = serve(blob, tmp_path)
    assert runtime.input_kind == "image"
    rows = [{"image": base64.b64encode(im).decode() if i % 2 else im} for i, im in enumerate(X["image"][:8])]
    predictions = runtime.predict(rows)
    assert_classifier_matches(predictions, blob, X.head(8))
    assert {type(p.label) for p in predictions} == {int}
    with pytest.raises(InvalidInput) as missing:
        runtime.predict([rows[0], {"picture": rows[1]["image"]}])
    assert missing.value.param == "image" and "Row 1" in str(missing.value)
    with pytest.raises(InvalidInput) as not_image:
        runtime.predict([rows[0], {"image": base64.b64encode(b"not a png").decode()}])
    assert not_image.value.param == "image" and "Row 1" in str(not_image.value)


def test_text_models(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    texts = ["the match ended with a late goal", "bake the bread in a hot oven", "the striker scored twice",
             "whisk eggs with sugar and flour", "our team won the league", "simmer the onions in butter"] * 3
    X, y = pd.DataFrame({"text": texts}), pd.Series(["sport", "cooking"] * 9, name="topic")
    for name, params in (("text_transformer", {"d_model": 8, "n_heads": 1, "n_layers": 1, "ff_dim": 8,
                                               "vocab_size": 100, "max_epochs": 1}),
                         ("text_embedding", {})):
        trainer = get_trainer(name)(task="classification", random_state=0, **params)
        trainer.fit(X, y)
        blob = trainer.export_onnx(X.head())
        runtime = serve(blob, tmp_path)
        rows = [{"text": t, "id": i} for i, t in enumerate(texts[:5])]
        assert_classifier_matches(runtime.predict(rows), blob, X.head(5))
        with pytest.raises(InvalidInput) as missing:
            runtime.predict([{"text": "ok"}, {"body": "no text column"}])
        assert missing.value.param == "text" and "Row 1" in str(missing.value)


def _graph(tmp_path: Path, shape: list[Any], name: str) -> OnnxModelRuntime:
    """A foreign graph on float input ``x`` of ``shape``: ``total = sum(x, axis=-1)``, and ``y = x @ W`` when the
    last axis is 3."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2), "W")
    axes = numpy_helper.from_array(np.asarray([-1], dtype=np.int64), "axes")
    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["total"])]
    outputs = [helper.make_tensor_value_info("total", TensorProto.FLOAT, [*shape[:-1], 1])]
    initializers = [axes]
    if shape[-1] == 3:
        nodes.insert(0, helper.make_node("MatMul", ["x", "W"], ["y"]))
        outputs.insert(0, helper.make_tensor_value_info("y", TensorProto.FLOAT, [*shape[:-1], 2]))
        initializers.append(weights)
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)], outputs,
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    onnx.checker.check_model(model)
    return serve(model.SerializeToString(), tmp_path, "unknown")


def test_foreign_graphs_run_on_their_tensors(tmp_path: Path) -> None:
    dynamic = _graph(tmp_path, ["N", 3], "dynamic")
    assert dynamic.input_kind == "tensors" and dynamic.metadata == {}
    rows = [{"x": [1, 2, 3]}, {"x": [0.5, 0, -1], "other": "ignored"}]
    predictions = dynamic.predict(rows)
    assert all(p.outputs is not None and p.label is None for p in predictions)
    assert predictions[0].to_dict() == {"outputs": {"y": [16.0, 22.0], "total": [6.0]}}
    assert predictions[1].to_dict() == {"outputs": {"y": [-4.0, -4.5], "total": [-0.5]}}
    assert [dynamic.predict([r])[0] for r in rows] == predictions  # one run per batch or per row: same rows
    fixed = _graph(tmp_path, [1, 3], "fixed")  # a batch of one: rows run one by one
    assert fixed.predict(rows) == predictions
    ragged = _graph(tmp_path, ["N", "L"], "ragged")  # rows of different lengths cannot stack: one run each
    totals = ragged.predict([{"x": [1, 2]}, {"x": [1, 2, 3, 4]}])
    assert [p.to_dict()["outputs"]["total"] for p in totals] == [[3.0], [10.0]]
    for bad, message in (({"y": [1, 2, 3]}, "Row 0 has no input 'x'"), ({"x": [1, 2]}, "wants [3]"),
                         ({"x": ["a", "b", "c"]}, "list of float32"), ({"x": [[1, 2, 3]]}, "wants [3]")):
        with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
            dynamic.predict([bad])
        assert err.value.param == "x"


def test_other_capabilities_are_refused(iris_model: tuple[OnnxModelRuntime, bytes]) -> None:
    runtime, _ = iris_model
    with pytest.raises(InvalidInput):
        runtime.embed(["text"])
