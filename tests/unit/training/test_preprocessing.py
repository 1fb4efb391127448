"""The feature plan from a dataset schema, input coercion, and the target checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aimaas.errors import InvalidInput
from aimaas.training import FeaturePlan, coerce_frame, get_trainer, infer_schema, plan_features
from aimaas.training.validation import prepare_target

from .conftest import SYNTHETIC_SCHEMA, Split, synthetic_frame


def features() -> pd.DataFrame:
    return synthetic_frame().drop(columns=["label", "spend"])


def test_plan_from_schema() -> None:
    plan = plan_features(features(), SYNTHETIC_SCHEMA, max_categories=10)
    by_name = {c.name: c for c in plan.columns}
    assert list(by_name) == ["age", "income", "visits", "city", "member", "code"]
    assert by_name["age"].dtype == "int64"  # integer, complete
    assert by_name["income"].dtype == "float32"
    assert by_name["visits"].dtype == "float32"  # integer with gaps
    assert by_name["city"].role == "categorical" and by_name["city"].dtype == "string"
    assert set(by_name["city"].categories) == {"paris", "lyon", "nice", "lille"}
    assert set(by_name["member"].categories) == {"true", "false"}
    assert len(by_name["code"].categories) == 10
    assert [d["name"] for d in plan.dropped] == ["comment", "signup"]
    assert any("comment: dropped" in n for n in plan.notes)
    assert any("signup: dropped" in n for n in plan.notes)
    assert any(n.startswith("code: kept the 10 most frequent of 37") for n in plan.notes)
    assert FeaturePlan.from_json(plan.to_json()) == plan


def test_schema_is_inferred_from_dtypes() -> None:
    schema = {e["name"]: e for e in infer_schema(features())}
    assert schema["age"]["type"] == "integer"
    assert schema["income"]["type"] == "float" and schema["income"]["missing"] == 27
    assert schema["visits"]["type"] == "integer" and schema["visits"]["missing"] == 30
    assert schema["city"]["type"] == "string"
    assert schema["member"]["type"] == "boolean"
    assert schema["comment"]["type"] == "text"
    assert schema["signup"]["type"] == "datetime"
    inferred = plan_features(features())
    assert [c.name for c in inferred.columns] == ["age", "income", "visits", "city", "member", "code"]


def test_input_names_are_safe_and_unique() -> None:
    X = pd.DataFrame({"sepal length (cm)": [1.0, 2.0], "sepal_length_cm": [3.0, 4.0], "2nd": [1, 2]})
    plan = plan_features(X)
    assert [c.input for c in plan.columns] == ["sepal_length__cm", "sepal_length_cm", "c_2nd"]
    frame = coerce_frame(X, plan)
    assert list(frame.columns) == ["sepal_length__cm", "sepal_length_cm", "c_2nd"]
    assert frame["c_2nd"].dtype == np.int64 and frame["sepal_length_cm"].dtype == np.float32


def test_coerce_frame_types_and_missing_values() -> None:
    X = features()
    plan = plan_features(X, SYNTHETIC_SCHEMA)
    frame = coerce_frame(X, plan)
    assert frame["age"].dtype == np.int64
    assert frame["income"].isna().sum() == 27
    assert (frame["city"] == "").sum() == int(X["city"].isna().sum())
    assert set(frame["member"]) == {"true", "false", ""}


def test_missing_column_at_prediction_names_it() -> None:
    X = features()
    plan = plan_features(X, SYNTHETIC_SCHEMA)
    with pytest.raises(InvalidInput) as info:
        coerce_frame(X.drop(columns=["city"]), plan)
    assert info.value.param == "city"


def test_missing_value_in_complete_integer_column_names_it() -> None:
    X = features()
    plan = plan_features(X, SYNTHETIC_SCHEMA)
    X = X.astype({"age": "float64"})
    X.loc[X.index[0], "age"] = np.nan
    with pytest.raises(InvalidInput) as info:
        coerce_frame(X, plan)
    assert info.value.param == "age"


def test_fractional_value_in_complete_integer_column_names_it() -> None:
    X = features()
    plan = plan_features(X, SYNTHETIC_SCHEMA)
    X = X.astype({"age": "float64"})
    X.loc[X.index[0], "age"] = 30.5
    with pytest.raises(InvalidInput, match="whole numbers") as info:
        coerce_frame(X, plan)
    assert info.value.param == "age"


def test_non_numeric_value_in_numeric_column_names_it() -> None:
    X = pd.DataFrame({"x": ["1", "2", "three"], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInput) as info:
        plan_features(X, [{"name": "x", "type": "float", "missing": 0}])
    assert info.value.param == "x"
    assert "three" in info.value.message


def test_fractional_values_in_integer_column() -> None:
    X = pd.DataFrame({"x": [1.5, 2.0, 3.0]})
    with pytest.raises(InvalidInput) as info:
        plan_features(X, [{"name": "x", "type": "integer", "missing": 0}])
    assert info.value.param == "x"


def test_no_usable_column() -> None:
    X = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=3), "empty": [None, None, None]})
    with pytest.raises(InvalidInput) as info:
        plan_features(X)
    assert info.value.param == "features"


def test_entirely_missing_column_is_dropped() -> None:
    X = pd.DataFrame({"x": [1.0, 2.0, 3.0], "gone": [np.nan] * 3, "blank": [None] * 3})
    plan = plan_features(X, [{"name": "blank", "type": "string", "missing": 3}])
    assert [c.name for c in plan.columns] == ["x"]
    assert {d["name"] for d in plan.dropped} == {"gone", "blank"}


# -- target checks (through fit, as users meet them) -----------------------------------------------------
def test_target_with_missing_values(messy_classification: Split) -> None:
    y = messy_classification.y_train.copy()
    y.iloc[3] = None
    with pytest.raises(InvalidInput, match="missing") as info:
        get_trainer("logistic_regression")().fit(messy_classification.X_train, y)
    assert info.value.param == "label"


def test_absent_target() -> None:
    with pytest.raises(InvalidInput) as info:
        get_trainer("logistic_regression")().fit(features(), None)
    assert info.value.param == "target"


def test_constant_target(messy_classification: Split, messy_regression: Split) -> None:
    X = messy_classification.X_train
    with pytest.raises(InvalidInput, match="constant") as info:
        get_trainer("logistic_regression")().fit(X, pd.Series("stay", index=X.index, name="label"))
    assert info.value.param == "label"
    with pytest.raises(InvalidInput, match="constant") as info:
        get_trainer("linear_regression")().fit(X, pd.Series(1.0, index=X.index, name="spend"))
    assert info.value.param == "spend"


def test_regression_on_text_target(messy_classification: Split) -> None:
    s = messy_classification
    with pytest.raises(InvalidInput, match="numeric") as info:
        get_trainer("linear_regression")().fit(s.X_train, s.y_train, schema=s.schema)
    assert info.value.param == "label"
    with pytest.raises(InvalidInput, match="numeric") as info:  # no schema: found from the values
        get_trainer("random_forest")(task="regression").fit(s.X_train, s.y_train)
    assert info.value.param == "label"


def test_regression_on_declared_text_target_with_numbers() -> None:
    X = features()
    y = pd.Series(np.arange(len(X)).astype(str), name="ticket")
    with pytest.raises(InvalidInput) as info:
        get_trainer("linear_regression")().fit(X, y, schema=[{"name": "ticket", "type": "text", "missing": 0}])
    assert info.value.param == "ticket"


def test_class_with_a_single_row(iris: Split) -> None:
    y = iris.y_train.copy()
    y.iloc[0] = 7
    with pytest.raises(InvalidInput, match="fewer than 2 rows: '7'") as info:
        get_trainer("random_forest")(task="classification").fit(iris.X_train, y)
    assert info.value.param == "target"


def test_target_length_mismatch(iris: Split) -> None:
    with pytest.raises(InvalidInput) as info:
        get_trainer("logistic_regression")().fit(iris.X_train, iris.y_train.iloc[:-1])
    assert info.value.param == "target"


def test_continuous_target_for_classification() -> None:
    X = pd.DataFrame({"x": np.arange(100.0)})
    with pytest.raises(InvalidInput, match="regression"):
        get_trainer("logistic_regression")().fit(X, pd.Series(np.linspace(0, 1, 100) + 0.001, name="y"))


def test_label_normalisation() -> None:
    task = get_trainer("logistic_regression").tasks
    (kind,) = task
    assert prepare_target([True, False, True, False], kind, n_rows=4).tolist() == ["true", "false", "true", "false"]
    assert prepare_target([1.0, 2.0, 1.0, 2.0], kind, n_rows=4).dtype == np.int64
    assert prepare_target(["a", "b", "a", "b"], kind, n_rows=4).tolist() == ["a", "b", "a", "b"]


def test_library_warnings_become_notes(iris: Split) -> None:
    result = get_trainer("logistic_regression")(max_iter=2).fit(iris.X_train, iris.y_train)
    assert any(n.startswith("ConvergenceWarning") for n in result.notes)
