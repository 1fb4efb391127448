"""The trainer registry, the Trainer contract's construction rules and the cheapness of the import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aimaas.errors import InvalidInput
from aimaas.training import (
    FitResult,
    TaskKind,
    Trainer,
    get_trainer,
    register_trainer,
    trainer_names,
    trainers_for,
)
from aimaas.training.base import _REGISTRY

from .conftest import FakeTrial, Split

TABULAR = ["hist_gradient_boosting", "kmeans", "lightgbm", "linear_regression", "logistic_regression", "random_forest"]
BUILTIN = sorted([*TABULAR, "cnn", "ensemble", "mlp", "text_embedding", "text_transformer"])


def test_builtin_trainers_are_registered() -> None:
    assert trainer_names() == BUILTIN
    assert trainers_for("classification") == [
        "ensemble", "hist_gradient_boosting", "lightgbm", "logistic_regression", "mlp", "random_forest"]
    assert trainers_for(TaskKind.REGRESSION) == ["ensemble", "hist_gradient_boosting", "lightgbm", "linear_regression",
                                                 "mlp", "random_forest"]
    assert trainers_for("clustering") == ["kmeans"]
    assert trainers_for("classification", "text") == ["text_embedding", "text_transformer"]
    assert trainers_for("classification", "image") == ["cnn"]
    with pytest.raises(InvalidInput) as info:
        trainers_for("classification", "audio")
    assert info.value.param == "modality"
    for name in BUILTIN:
        assert get_trainer(name).name == name


def test_unknown_trainer_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as info:
        get_trainer("xgboost")
    assert info.value.param == "trainer"
    assert "'xgboost'" in info.value.message
    for name in BUILTIN:
        assert name in info.value.message


def test_unknown_task() -> None:
    with pytest.raises(InvalidInput) as info:
        trainers_for("ranking")
    assert info.value.param == "task"


def test_task_resolution() -> None:
    assert get_trainer("logistic_regression")().task is TaskKind.CLASSIFICATION
    assert get_trainer("kmeans")().task is TaskKind.CLUSTERING
    with pytest.raises(InvalidInput, match="needs a task") as info:
        get_trainer("random_forest")()
    assert info.value.param == "task"
    with pytest.raises(InvalidInput, match="does not do regression"):
        get_trainer("logistic_regression")(task="regression")
    with pytest.raises(InvalidInput, match="Unknown task"):
        get_trainer("random_forest")(task="forecasting")


def test_unknown_hyperparameter_names_it() -> None:
    with pytest.raises(InvalidInput) as info:
        get_trainer("random_forest")(task="classification", n_trees=10)
    assert info.value.param == "n_trees"
    assert "n_estimators" in info.value.message


def test_bad_hyperparameter_value_is_invalid_input(iris: Split) -> None:
    trainer = get_trainer("random_forest")(task="classification", n_estimators=0)
    with pytest.raises(InvalidInput) as info:
        trainer.fit(iris.X_train, iris.y_train)
    assert info.value.param == "n_estimators"


def test_params_merge_defaults() -> None:
    trainer = get_trainer("logistic_regression")(C=0.5)
    assert trainer.get_params()["C"] == 0.5
    assert trainer.get_params()["max_iter"] == 1000
    assert "C=0.5" in repr(trainer)


def test_duplicate_registration_is_refused() -> None:
    cls = get_trainer("kmeans")
    with pytest.raises(ValueError, match="already registered"):
        register_trainer("kmeans")(type("Other", (cls,), {}))
    assert register_trainer("kmeans")(cls) is cls  # re-registering the same class is harmless


def test_a_custom_trainer_can_register() -> None:
    @register_trainer("_test_constant")
    class Constant(get_trainer("linear_regression")):  # type: ignore[misc]
        pass

    try:
        assert "_test_constant" in trainers_for("regression")
        assert get_trainer("_test_constant") is Constant
    finally:
        _REGISTRY.pop("_test_constant")


@pytest.mark.parametrize("name", TABULAR)
def test_search_space_gives_valid_hyperparameters(name: str, iris: Split) -> None:
    cls = get_trainer(name)
    trial = FakeTrial(seed=3)
    params = cls.search_space(trial)
    assert params and set(params) <= set(cls.hyperparameters)
    assert params == trial.params
    for key in ("n_estimators", "max_iter"):  # keep the test fast
        if key in params:
            params[key] = min(params[key], 30)
    task = sorted(cls.tasks)[0]
    y = iris.y_train if task is TaskKind.CLASSIFICATION else iris.X_train.iloc[:, 0]
    X = iris.X_train if task is not TaskKind.REGRESSION else iris.X_train.iloc[:, 1:]
    result = cls(task=task, **params).fit(X, y)
    assert isinstance(result, FitResult)
    json.dumps(result.to_dict())


def test_trainer_is_abstract() -> None:
    with pytest.raises(TypeError):
        Trainer()  # type: ignore[abstract]


def test_import_is_cheap() -> None:
    code = ("import sys, aimaas.training; heavy = ['sklearn', 'lightgbm', 'skl2onnx', 'onnxruntime', 'onnx', 'torch',"
            " 'scipy', 'optuna']; print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
