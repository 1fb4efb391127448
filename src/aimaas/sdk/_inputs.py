"""The rows of a predict request: what ``endpoints.predict`` accepts (rows, columns, one row, a pandas
DataFrame), turned into JSON-ready data before anything is sent."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from aimaas.errors import InvalidInput

__all__ = ["predict_inputs"]


def _value(value: Any) -> Any:
    """A JSON value for one cell: numpy and pandas scalars unwrapped, NaN/NaT/NA (missing) as null."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):  # numpy.float64 too
        return value if math.isfinite(value) else None
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing markers (NaT is also a datetime)
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if isinstance(value, bytes | bytearray):
        raise InvalidInput("send binary values (images) as base64 text, not bytes", param="inputs")
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, pandas Series
    if callable(tolist):
        return _value(tolist())
    raise InvalidInput(f"cannot send a value of type {type(value).__name__} as JSON; use numbers, text, "
                       "booleans, lists or None", param="inputs")


def _is_dataframe(obj: object) -> bool:
    # Duck-typed so that pandas is never imported here: only a caller who has a DataFrame has pandas loaded.
    return type(obj).__module__.split(".")[0] == "pandas" and callable(getattr(obj, "to_dict", None))


def _is_column(values: object) -> bool:
    if isinstance(values, str | bytes | bytearray | Mapping):
        return False
    # numpy arrays and pandas Series have tolist(); numpy scalars too, but with ndim 0.
    array_like = callable(getattr(values, "tolist", None)) and getattr(values, "ndim", 0) >= 1
    return isinstance(values, Sequence) or array_like


def _columns(columns: Mapping[str, Any]) -> dict[str, list[Any]]:
    out = {str(name): _value(values) for name, values in columns.items()}
    lengths = {name: len(values) for name, values in out.items()}
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise InvalidInput(f"every column needs the same number of values ({sizes})", param="inputs")
    if not next(iter(lengths.values()), 0):
        raise InvalidInput("the columns hold no values; give at least one row", param="inputs")
    return out


def predict_inputs(inputs: Any) -> list[dict[str, Any]] | dict[str, list[Any]]:
    """The ``inputs`` of a predict request, as JSON-ready data.

    Accepts a list of rows (``[{"column": value}, ...]``), a dict of columns (``{"column": [values]}``), one
    row as a dict of plain values (``{"column": value}``, sent as a one-row list), or a pandas DataFrame (its
    rows). Missing values (None, NaN, NaT) become null; numpy and pandas scalars become plain numbers; dates
    become ISO text. Raises ``InvalidInput`` (param ``inputs``) for anything else and for no rows.
    """
    if _is_dataframe(inputs):
        inputs = inputs.to_dict(orient="records")
    if isinstance(inputs, Mapping):
        if not inputs:
            raise InvalidInput("give at least one row: [{'column': value}, ...]", param="inputs")
        kinds = {_is_column(v) for v in inputs.values()}
        if kinds == {True}:
            return _columns(inputs)
        if kinds == {False}:
            return [_value(inputs)]
        raise InvalidInput("a dict of inputs is either one row ({'a': 1, 'b': 2}) or columns "
                           "({'a': [1, 2], 'b': [3, 4]}), not a mix of both", param="inputs")
    if isinstance(inputs, str | bytes) or not isinstance(inputs, Sequence):
        raise InvalidInput(f"inputs must be a list of rows, a dict of columns or a pandas DataFrame, not "
                           f"{type(inputs).__name__}", param="inputs")
    if not inputs:
        raise InvalidInput("give at least one row: [{'column': value}, ...]", param="inputs")
    for number, row in enumerate(inputs):
        if not isinstance(row, Mapping):
            raise InvalidInput(f"row {number} is a {type(row).__name__}; each row is a dict {{'column': value}}",
                               param="inputs")
    return [_value(row) for row in inputs]
