"""Streaming column statistics: one accumulator per column, fed pyarrow arrays batch by batch.

Counts, missing values, mean, standard deviation (sample, ddof=1), min and max are exact. Quantiles and the
histogram come from a uniform sample of at most :data:`SAMPLE_SIZE` values per column (exact when the column
has no more values than that); histogram counts are then scaled to the column's count. Top values and distinct
counts are exact up to :data:`MAX_DISTINCT` distinct values; beyond that the top values come from the most
frequent values of each batch and ``unique`` is a sketch estimate (the entry then has ``"estimated": true``).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._common import KIND_KEY
from .sampling import Reservoir

__all__ = [
    "MAX_DISTINCT",
    "SAMPLE_SIZE",
    "TEXT_MEAN_LENGTH",
    "BooleanStats",
    "ColumnStats",
    "DatetimeStats",
    "NumericStats",
    "json_value",
    "kind_of",
    "to_numpy",
    "top_values",
]

SAMPLE_SIZE = 100_000
MAX_DISTINCT = 10_000
TOP_K = 10
HIST_BINS = 20
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TEXT_MEAN_LENGTH = 50
_INT_DISTINCT = 50
_HEAVY = 1_000


def kind_of(field: pa.Field) -> str | None:
    """The accumulator kind for a column: numeric, boolean, string, datetime, other (None: all missing)."""
    if field.metadata and field.metadata.get(KIND_KEY):
        return field.metadata[KIND_KEY].decode()
    t = field.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_null(t):
        return None
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_temporal(t) and not pa.types.is_duration(t) and not pa.types.is_interval(t):
        return "datetime"
    return "other"


def json_value(value: Any) -> Any:
    """A JSON-safe Python value (NaN/inf become None, numpy scalars become Python ones)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numpy copy of a null-free numeric or boolean arrow array, read straight from its buffers
    (``to_numpy`` would import pandas, which costs tens of MB)."""
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    parts = []
    for chunk in chunks:
        is_bool = pa.types.is_boolean(chunk.type)
        if is_bool:
            chunk = chunk.cast(pa.uint8())
        dtype = np.dtype(chunk.type.to_pandas_dtype())
        values = np.frombuffer(chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)
        parts.append(values.view(np.bool_) if is_bool else values)
    if not parts:
        return np.empty(0, dtype=np.dtype(array.type.to_pandas_dtype()))
    return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)


def top_values(counts: Counter[Any]) -> list[dict[str, Any]]:
    """The most frequent values as ``[{"value", "count"}]``, most frequent first."""
    return [{"value": json_value(v), "count": int(c)} for v, c in counts.most_common(TOP_K)]


class ColumnStats:
    """Statistics of one column, fed with :meth:`add` batch after batch."""

    kind = "other"

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.missing = 0
        self.estimated = False

    def accepts(self, kind: str) -> bool:
        """Whether arrays of ``kind`` can be added (else the column needs a wider type)."""
        return kind == self.kind or self.kind == "other"

    def add(self, array: pa.Array | pa.ChunkedArray, keys: np.ndarray) -> None:
        """Add a batch of values; ``keys`` are one uniform random number per row (for sampling)."""
        self.missing += array.null_count
        self.count += len(array) - array.null_count

    def type_name(self) -> str:
        """The column type reported in the schema."""
        return self.kind

    def result(self) -> dict[str, Any]:
        """The stats entry of this column (see ``DatasetStats``)."""
        return {"name": self.name, "type": self.type_name(), "count": self.count, "missing": self.missing}

    @property
    def exact(self) -> bool:
        """False when quantiles/histogram were estimated from a sample."""
        return True


class NumericStats(ColumnStats):
    """Integers and floats: exact count/mean/std/min/max, sampled quantiles and histogram, and ``unique``/``top``
    for integer columns with few distinct values (likely class labels)."""

    kind = "numeric"

    def __init__(self, name: str, integer: bool) -> None:
        super().__init__(name)
        self.integer = integer
        self.mean = 0.0
        self.m2 = 0.0
        self.finite = 0
        self.infinite = 0
        self.min: Any = None
        self.max: Any = None
        self.sample = Reservoir(SAMPLE_SIZE)
        self.distinct: Counter[Any] | None = Counter() if integer else None

    def add(self, array: pa.Array | pa.ChunkedArray, keys: np.ndarray) -> None:
        if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
            array = array.cast(pa.float64())
        self.integer = self.integer and pa.types.is_integer(array.type)
        super().add(array, keys)
        if pa.types.is_floating(array.type):
            array = self._drop_non_finite(array)
        if self.distinct is not None:
            self._count_distinct(array)
        valid = len(array) - array.null_count
        if not valid:
            return
        mm = pc.min_max(array)
        mn, mx = mm["min"].as_py(), mm["max"].as_py()
        self.min = mn if self.min is None else min(self.min, mn)
        self.max = mx if self.max is None else max(self.max, mx)
        as_float = array.cast(pa.float64()) if self.integer else array
        b_mean = pc.mean(as_float).as_py()
        b_m2 = pc.variance(as_float, ddof=0).as_py() * valid
        n = self.finite
        delta = b_mean - self.mean
        self.finite = n + valid
        self.mean += delta * valid / self.finite
        self.m2 += b_m2 + delta * delta * n * valid / self.finite
        self._sample(array, keys)

    def _drop_non_finite(self, array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        """NaN counts as missing; +-inf counts as a value but stays out of the moments and the sample."""
        nan = pc.is_nan(array)
        n_nan = int(pc.sum(nan).as_py() or 0)
        inf = pc.is_inf(array)
        n_inf = int(pc.sum(inf).as_py() or 0)
        if n_nan:
            self.missing += n_nan
            self.count -= n_nan
        self.infinite += n_inf
        if n_nan or n_inf:
            array = pc.if_else(pc.or_(nan, inf), pa.scalar(None, array.type), array)
        return array

    def _sample(self, array: pa.Array | pa.ChunkedArray, keys: np.ndarray) -> None:
        if array.null_count:
            keys = keys[to_numpy(pc.is_valid(array))]
            array = array.drop_null()
        positions = self.sample.select(keys)
        if len(positions) == len(array):
            self.sample.store(to_numpy(array))
        elif len(positions):
            self.sample.store(to_numpy(array.take(pa.array(positions))))

    def _count_distinct(self, array: pa.Array | pa.ChunkedArray) -> None:
        assert self.distinct is not None
        if not pa.types.is_integer(array.type):
            self.distinct = None
            return
        vc = pc.value_counts(array)
        if len(vc) + len(self.distinct) > _INT_DISTINCT and len(vc) > _INT_DISTINCT:
            self.distinct = None
            return
        self.distinct.update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)))
        if len(self.distinct) > _INT_DISTINCT:
            self.distinct = None

    def type_name(self) -> str:
        return "integer" if self.integer else "float"

    @property
    def exact(self) -> bool:
        return self.sample.exact

    def result(self) -> dict[str, Any]:
        out = super().result()
        std = math.sqrt(self.m2 / (self.finite - 1)) if self.finite > 1 else None
        out.update(mean=json_value(self.mean) if self.finite else None, std=std,
                   min=json_value(self.min), max=json_value(self.max))
        if self.infinite:
            out["infinite"] = self.infinite
        sample = self.sample.sample()
        if self.finite and len(sample):
            qs = np.quantile(sample.astype(np.float64), QUANTILES)
            out["quantiles"] = {str(q): json_value(v) for q, v in zip(QUANTILES, qs, strict=True)}
            out["histogram"] = self._histogram(sample)
        if self.distinct is not None and self.integer:
            out["unique"] = len(self.distinct)
            out["top"] = top_values(self.distinct)
        return out

    def _histogram(self, sample: np.ndarray) -> dict[str, list[Any]]:
        lo, hi = float(self.min), float(self.max)
        if self.integer and hi - lo < HIST_BINS:
            edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
        else:
            edges = np.linspace(lo, hi, HIST_BINS + 1) if hi > lo else np.array([lo - 0.5, lo + 0.5])
        counts, edges = np.histogram(sample.astype(np.float64), bins=edges)
        if not self.sample.exact:
            counts = np.rint(counts * (self.finite / len(sample))).astype(np.int64)
        return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


class BooleanStats(ColumnStats):
    """Booleans: counts of true and false as ``unique``/``top``."""

    kind = "boolean"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.true = 0

    def add(self, array: pa.Array | pa.ChunkedArray, keys: np.ndarray) -> None:
        super().add(array, keys)
        self.true += int(pc.sum(array).as_py() or 0)

    def result(self) -> dict[str, Any]:
        counts = Counter({v: c for v, c in ((True, self.true), (False, self.count - self.true)) if c})
        return {**super().result(), "unique": len(counts), "top": top_values(counts)}


class DatetimeStats(ColumnStats):
    """Dates, times and timestamps: ``min`` and ``max`` as ISO 8601 strings."""

    kind = "datetime"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.min: Any = None
        self.max: Any = None

    def add(self, array: pa.Array | pa.ChunkedArray, keys: np.ndarray) -> None:
        super().add(array, keys)
        mm = pc.min_max(array)
        mn, mx = mm["min"].as_py(), mm["max"].as_py()
        if mn is not None:
            self.min = mn if self.min is None else min(self.min, mn)
            self.max = mx if self.max is None else max(self.max, mx)

    def result(self) -> dict[str, Any]:
        iso = [v.isoformat() if v is not None and hasattr(v, "isoformat") else v for v in (self.min, self.max)]
        return {**super().result(), "min": iso[0], "max": iso[1]}
