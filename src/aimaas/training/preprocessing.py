"""From a dataset schema to a scikit-learn ColumnTransformer that ONNX can carry.

The plan (:class:`FeaturePlan`) decides, per raw column, how it reaches the model:

* ``integer`` / ``float`` → numeric: median imputation (+ standard scaling for scale-sensitive models).
  The ONNX input is ``int64`` for an integer column with no missing value in the training data (such a
  column cannot take a missing value at prediction time), else ``float``.
* ``string`` / ``boolean`` → categorical: most-frequent imputation + one-hot of the ``max_categories`` most
  frequent values; rarer and unseen values encode as all zeros. The ONNX input is ``string``; booleans are
  ``"true"`` / ``"false"`` and a missing value is the empty string.
* ``text`` / ``datetime`` / ``other`` and entirely-missing columns → dropped, with a note.

:func:`coerce_frame` turns raw rows into exactly what the pipeline and the ONNX graph take: columns renamed
to safe input names (ONNX input names are identifiers), dtypes fixed. Training, prediction and the ONNX
parity check all go through it, so the sklearn model and the ONNX graph see the same values.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aimaas.errors import InvalidInput

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

__all__ = [
    "COLUMN_TYPES",
    "ColumnPlan",
    "FeaturePlan",
    "build_preprocessor",
    "coerce_frame",
    "infer_schema",
    "plan_features",
]

COLUMN_TYPES = ("integer", "float", "boolean", "string", "text", "datetime")
MAX_CATEGORIES = 20
_TEXT_MEAN_LENGTH = 50  # same threshold as dataset ingestion: longer strings are free text
_DROP_REASONS = {
    "text": "free text is not used by tabular models",
    "datetime": "dates are not used by tabular models (derive numeric columns from them first)",
    "other": "the column type is not supported",
}


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """How one raw column reaches the model. ``dtype`` is the ONNX input type: float32, int64 or string."""

    name: str
    input: str
    type: str
    role: str  # numeric | categorical
    dtype: str
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FeaturePlan:
    """The used columns in input order, the dropped ones ``{"name", "type", "reason"}`` and human notes."""

    columns: tuple[ColumnPlan, ...]
    dropped: tuple[dict[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    def by_dtype(self, dtype: str) -> list[ColumnPlan]:
        return [c for c in self.columns if c.dtype == dtype]

    def to_json(self) -> str:
        return json.dumps({"columns": [asdict(c) for c in self.columns], "dropped": list(self.dropped),
                           "notes": list(self.notes)})

    @classmethod
    def from_json(cls, text: str) -> FeaturePlan:
        data = json.loads(text)
        cols = tuple(ColumnPlan(**{**c, "categories": tuple(c["categories"])}) for c in data["columns"])
        return cls(cols, tuple(data.get("dropped", ())), tuple(data.get("notes", ())))


def infer_schema(X: pd.DataFrame) -> list[dict[str, Any]]:
    """A dataset-style schema ``[{"name", "type", "missing"}]`` from the frame's dtypes."""
    out = []
    for name in X.columns:
        col = X[name]
        dtype = col.dtype
        if pd.api.types.is_bool_dtype(dtype):
            kind = "boolean"
        elif pd.api.types.is_integer_dtype(dtype):
            kind = "integer"
        elif pd.api.types.is_float_dtype(dtype):
            kind = "float"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            kind = "datetime"
        else:
            values = col.dropna()
            if len(values) and values.map(lambda v: isinstance(v, bool | np.bool_)).all():
                kind = "boolean"
            else:
                lengths = values.astype(str).str.len()
                kind = "text" if len(lengths) and lengths.mean() > _TEXT_MEAN_LENGTH else "string"
        out.append({"name": str(name), "type": kind, "missing": int(col.isna().sum())})
    return out


def _input_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_") or "column"
    if base[0].isdigit():
        base = f"c_{base}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _categories(values: pd.Series, limit: int) -> tuple[tuple[str, ...], int]:
    counts = Counter(v for v in values if v != "")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(v for v, _ in ranked[:limit]), len(counts)


def plan_features(X: pd.DataFrame, schema: list[dict[str, Any]] | None = None, *,
                  max_categories: int = MAX_CATEGORIES) -> FeaturePlan:
    """Decide how each column of ``X`` is used (types from ``schema`` where it names the column).

    Raises :class:`InvalidInput` (``param`` = the column) for a value that does not fit its declared type,
    and (``param="features"``) when no usable column remains.
    """
    declared = {str(e["name"]): e for e in (schema or [])}
    inferred = {e["name"]: e for e in infer_schema(X)}
    columns: list[ColumnPlan] = []
    dropped: list[dict[str, str]] = []
    notes: list[str] = []
    taken: set[str] = set()
    for raw in X.columns:
        name = str(raw)
        entry = declared.get(name) or inferred[name]
        kind = str(entry.get("type", "other"))
        if kind not in COLUMN_TYPES or kind in ("text", "datetime"):
            dropped.append({"name": name, "type": kind, "reason": _DROP_REASONS.get(kind, _DROP_REASONS["other"])})
            continue
        if X[raw].isna().all():
            dropped.append({"name": name, "type": kind, "reason": "every value is missing"})
            continue
        input_name = _input_name(name, taken)
        if kind in ("string", "boolean"):
            values = _as_strings(X[raw], kind, name)
            if (values == "").all():
                dropped.append({"name": name, "type": kind, "reason": "every value is missing"})
                taken.discard(input_name)
                continue
            cats, total = _categories(values, max_categories)
            if total > len(cats):
                notes.append(f"{name}: kept the {len(cats)} most frequent of {total} values; the others are "
                             "encoded like unseen values (all zeros).")
            columns.append(ColumnPlan(name, input_name, kind, "categorical", "string", cats))
        else:
            numbers = _as_numbers(X[raw], name)
            whole = kind == "integer" and int(entry.get("missing") or 0) == 0 and not numbers.isna().any()
            if whole and not np.all(np.mod(numbers.to_numpy(dtype=np.float64), 1) == 0):
                raise InvalidInput(f"Column {name!r} is declared integer but holds fractional values.", param=name)
            columns.append(ColumnPlan(name, input_name, kind, "numeric", "int64" if whole else "float32"))
    for d in dropped:
        notes.append(f"{d['name']}: dropped ({d['reason']}).")
    if not columns:
        raise InvalidInput("No usable feature column: tabular models need numeric, boolean or categorical "
                           "columns besides the target.", param="features")
    return FeaturePlan(tuple(columns), tuple(dropped), tuple(notes))


def _as_numbers(col: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.astype("float64")
    try:
        return pd.to_numeric(col, errors="raise").astype("float64")
    except (ValueError, TypeError):
        raise InvalidInput(f"Column {name!r} must hold numbers; it has a value like "
                           f"{_first_non_numeric(col)!r}.", param=name) from None


def _first_non_numeric(col: pd.Series) -> Any:
    bad = pd.to_numeric(col, errors="coerce").isna() & col.notna()
    return col[bad].iloc[0] if bad.any() else None


def _as_strings(col: pd.Series, kind: str, name: str) -> pd.Series:
    """Values as Python strings, ``""`` for missing; booleans (and "True"/"FALSE" texts) as true/false."""
    missing = col.isna().to_numpy()
    text = np.where(missing, "", col.astype(object).to_numpy().astype(str))
    if kind == "boolean":
        lowered = np.char.lower(text)
        text = np.where(np.isin(lowered, ("true", "false")), lowered, text)
    return pd.Series(text.astype(object), index=col.index)


def coerce_frame(X: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    """The used columns of raw rows ``X``, renamed to their input names and typed for the pipeline/ONNX.

    float32 columns keep NaN for missing; int64 columns refuse missing values; string columns use ``""``.
    A column the plan needs but ``X`` lacks raises :class:`InvalidInput` naming it.
    """
    out: dict[str, Any] = {}
    for c in plan.columns:
        if c.name not in X.columns:
            raise InvalidInput(f"Column {c.name!r} is missing; the model needs it.", param=c.name)
        col = X[c.name]
        if c.dtype == "string":
            out[c.input] = _as_strings(col, c.type, c.name).to_numpy(dtype=object)
            continue
        numbers = _as_numbers(col, c.name)
        if c.dtype == "int64":
            if numbers.isna().any():
                raise InvalidInput(f"Column {c.name!r} has a missing value; the model was trained on complete "
                                   "integers and needs one.", param=c.name)
            floats = numbers.to_numpy(dtype=np.float64)
            if not np.all(np.mod(floats, 1) == 0):
                raise InvalidInput(f"Column {c.name!r} must hold whole numbers.", param=c.name)
            out[c.input] = floats.astype(np.int64)
        else:
            out[c.input] = numbers.to_numpy(dtype=np.float32)
    return pd.DataFrame(out, index=X.index)


def build_preprocessor(plan: FeaturePlan, *, scale: bool) -> ColumnTransformer:
    """An unfitted ColumnTransformer over :func:`coerce_frame` output (one branch per input dtype).

    ``scale`` adds standard scaling of numeric columns (linear models, k-means); tree models leave numbers
    as they are, which also keeps the ONNX float32 arithmetic identical to scikit-learn's.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    branches: list[tuple[str, Any, list[str]]] = []
    floats = [c.input for c in plan.by_dtype("float32")]
    if floats:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        branches.append(("float", Pipeline(steps + ([("scale", StandardScaler())] if scale else [])), floats))
    ints = [c.input for c in plan.by_dtype("int64")]
    if ints:
        # int64 inputs have no missing values; cast so that ONNX concatenates floats with floats.
        from skl2onnx.sklapi import CastTransformer

        steps = [("cast", CastTransformer(dtype=np.float32))]
        branches.append(("int", Pipeline(steps + ([("scale", StandardScaler())] if scale else [])), ints))
    cats = plan.by_dtype("string")
    if cats:
        encoder = OneHotEncoder(categories=[list(c.categories) for c in cats], handle_unknown="ignore",
                                sparse_output=False, dtype=np.float32)
        impute = SimpleImputer(strategy="most_frequent", missing_values="")
        branches.append(("categorical", Pipeline([("impute", impute), ("onehot", encoder)]), [c.input for c in cats]))
    return ColumnTransformer(branches, remainder="drop", sparse_threshold=0.0)
