"""Checks on the target column before any fitting, each failing with :class:`InvalidInput` naming the column.

A target is normalised so that every trainer (and the ONNX graph) sees the same labels: classification
labels become int64 when they are whole numbers, else strings (booleans become ``"true"``/``"false"``);
regression targets become float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aimaas.errors import InvalidInput
from aimaas.training.base import TaskKind

__all__ = ["MIN_ROWS_PER_CLASS", "prepare_target", "target_name"]

MIN_ROWS_PER_CLASS = 2
_NOT_NUMERIC_TYPES = {"string", "text", "boolean", "datetime"}


def target_name(y: Any) -> str:
    """The target column's name for error messages: a Series' name, else ``"target"``."""
    name = getattr(y, "name", None)
    return str(name) if name is not None else "target"


def prepare_target(y: Any, task: TaskKind, *, n_rows: int, schema: list[dict[str, Any]] | None = None,
                   name: str | None = None, check_classes: bool = True) -> np.ndarray:
    """The target as a normalised 1-D array, after checking it suits ``task``.

    Raises :class:`InvalidInput` with ``param`` = the target's name when the target is absent, has another
    length than ``X``, has missing values, is constant, is not numeric for regression, or (classification,
    with ``check_classes``) has a class with fewer than :data:`MIN_ROWS_PER_CLASS` rows.
    """
    name = name or target_name(y)
    if y is None:
        raise InvalidInput(f"A {task.value} model needs a target column.", param=name)
    series = pd.Series(np.asarray(y, dtype=object) if not isinstance(y, pd.Series) else y.to_numpy(dtype=object))
    if len(series) != n_rows:
        raise InvalidInput(f"Target {name!r} has {len(series)} values for {n_rows} rows.", param=name)
    missing = int(series.isna().sum())
    if missing:
        raise InvalidInput(f"Target {name!r} has {missing} missing value(s); drop those rows or pick another "
                           "target.", param=name)
    declared = next((str(e.get("type")) for e in schema or [] if str(e.get("name")) == name), None)
    if task is TaskKind.REGRESSION:
        return _regression_target(series, name, declared)
    labels = _class_labels(series, name)
    if check_classes:
        _check_classes(labels, name)
    return labels


def _regression_target(series: pd.Series, name: str, declared: str | None) -> np.ndarray:
    if declared in _NOT_NUMERIC_TYPES or series.map(lambda v: isinstance(v, bool | np.bool_)).any():
        raise InvalidInput(f"Target {name!r} is {declared or 'boolean'}; regression needs a numeric target "
                           "(use classification for categories).", param=name)
    try:
        values = pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise InvalidInput(f"Target {name!r} is not numeric; regression needs numbers (use classification for "
                           "categories).", param=name) from None
    if not np.isfinite(values).all():
        raise InvalidInput(f"Target {name!r} has infinite values.", param=name)
    if np.unique(values).size < 2:
        raise InvalidInput(f"Target {name!r} is constant; there is nothing to learn.", param=name)
    return values


def _class_labels(series: pd.Series, name: str) -> np.ndarray:
    values = series.tolist()
    if all(isinstance(v, bool | np.bool_) for v in values):
        return np.array(["true" if v else "false" for v in values], dtype=object)
    numbers = pd.to_numeric(series, errors="coerce")
    if not numbers.isna().any():
        floats = numbers.to_numpy(dtype=np.float64)
        if np.all(np.mod(floats, 1) == 0):
            return floats.astype(np.int64)
        if np.unique(floats).size > max(20, len(floats) // 2):
            raise InvalidInput(f"Target {name!r} looks continuous ({np.unique(floats).size} distinct "
                               "fractional values); use regression.", param=name)
    return np.array([str(v) for v in values], dtype=object)


def _check_classes(labels: np.ndarray, name: str) -> None:
    classes, counts = np.unique(labels, return_counts=True)
    if classes.size < 2:
        raise InvalidInput(f"Target {name!r} is constant ({classes[0]!r}); classification needs at least two "
                           "classes.", param=name)
    rare = [str(c) for c, n in zip(classes, counts, strict=True) if n < MIN_ROWS_PER_CLASS]
    if rare:
        shown = ", ".join(repr(c) for c in rare[:5]) + (" …" if len(rare) > 5 else "")
        raise InvalidInput(f"Target {name!r} has classes with fewer than {MIN_ROWS_PER_CLASS} rows: {shown}. "
                           "Merge or drop them.", param=name)
