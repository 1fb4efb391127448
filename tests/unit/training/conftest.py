"""Shared data for the training tests: scikit-learn's bundled datasets and a messy synthetic frame."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

# The training extra (`pip install 'aimaas[train]'`) is optional: without it these tests are not collected.
TRAIN_EXTRA = ("sklearn", "lightgbm", "skl2onnx", "onnxmltools", "onnxruntime", "onnx", "optuna")
if any(importlib.util.find_spec(module) is None for module in TRAIN_EXTRA):
    collect_ignore_glob = ["test_*.py"]


@dataclass(frozen=True)
class Split:
    """A seeded 75/25 train/test split of raw features and target."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    schema: list[dict[str, Any]] | None = None


def split(X: pd.DataFrame, y: pd.Series, *, seed: int = 0, schema: list[dict[str, Any]] | None = None) -> Split:
    idx = np.random.default_rng(seed).permutation(len(X))
    cut = int(len(X) * 0.75)
    tr, te = idx[:cut], idx[cut:]
    return Split(X.iloc[tr], y.iloc[tr], X.iloc[te], y.iloc[te], schema)


def _sklearn(loader: Callable[..., Any]) -> Split:
    X, y = loader(return_X_y=True, as_frame=True)
    return split(X, y)


SYNTHETIC_SCHEMA = [
    {"name": "age", "type": "integer", "missing": 0},
    {"name": "income", "type": "float", "missing": 27},
    {"name": "visits", "type": "integer", "missing": 30},
    {"name": "city", "type": "string", "missing": 40},
    {"name": "member", "type": "boolean", "missing": 20},
    {"name": "code", "type": "string", "missing": 0},
    {"name": "comment", "type": "text", "missing": 0},
    {"name": "signup", "type": "datetime", "missing": 0},
    {"name": "label", "type": "string", "missing": 0},
    {"name": "spend", "type": "float", "missing": 0},
]


def synthetic_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Integers, floats and integers with gaps, strings with missing values, booleans, a high-cardinality
    code, free text and dates; targets ``label`` (string classes) and ``spend`` (numbers)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = rng.normal(50, 15, n)
    income[::9] = np.nan
    visits = pd.array(rng.integers(0, 10, n), dtype="Int64")
    visits[::8] = pd.NA
    city = rng.choice(np.array(["paris", "lyon", "nice", "lille", None], dtype=object), n)
    member = rng.choice(np.array([True, False, None], dtype=object), n, p=[0.45, 0.45, 0.1])
    code = np.array([f"c{i % 37}" for i in range(n)], dtype=object)
    comment = np.array(["a rather long free-text comment about this customer and their habits " * 2] * n)
    signup = pd.date_range("2024-01-01", periods=n, freq="D")
    score = (age - 50) / 15 + np.nan_to_num(income - 50) / 15 + (city == "paris") * 1.5 + (member == True) * 1.0  # noqa: E712
    label = np.where(score + rng.normal(0, 0.5, n) > 0.5, "churn", "stay")
    spend = 3 * age + np.nan_to_num(income) + (city == "lyon") * 20 + rng.normal(0, 5, n)
    return pd.DataFrame({"age": age, "income": income, "visits": visits, "city": city, "member": member,
                         "code": code, "comment": comment, "signup": signup, "label": label, "spend": spend})


@pytest.fixture(scope="session")
def iris() -> Split:
    from sklearn.datasets import load_iris

    return _sklearn(load_iris)


@pytest.fixture(scope="session")
def wine() -> Split:
    from sklearn.datasets import load_wine

    return _sklearn(load_wine)


@pytest.fixture(scope="session")
def breast_cancer() -> Split:
    from sklearn.datasets import load_breast_cancer

    return _sklearn(load_breast_cancer)


@pytest.fixture(scope="session")
def diabetes() -> Split:
    from sklearn.datasets import load_diabetes

    return _sklearn(load_diabetes)


@pytest.fixture(scope="session")
def messy_classification() -> Split:
    df = synthetic_frame()
    return split(df.drop(columns=["label", "spend"]), df["label"], schema=SYNTHETIC_SCHEMA)


@pytest.fixture(scope="session")
def messy_regression() -> Split:
    df = synthetic_frame()
    return split(df.drop(columns=["label", "spend"]), df["spend"], schema=SYNTHETIC_SCHEMA)


class FakeTrial:
    """An optuna-like trial that draws every suggestion from a seeded generator."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.params: dict[str, Any] = {}

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        value = int(round(np.exp(self.rng.uniform(np.log(low), np.log(high))))) if log else int(
            self.rng.integers(low, high + 1))
        self.params[name] = value = min(max(value, low), high)
        return value

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        value = float(np.exp(self.rng.uniform(np.log(low), np.log(high)))) if log else float(
            self.rng.uniform(low, high))
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        value = list(choices)[int(self.rng.integers(len(choices)))]
        self.params[name] = value
        return value
