"""Pages of rows and single columns of a stored dataset file, streamed (never the whole file in memory).

Preview values are JSON-safe: NaN/infinity become None, dates and times ISO 8601 strings, bytes a short
placeholder, and strings longer than :data:`MAX_TEXT` characters are cut (ending with "…").
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from aimaas.errors import InvalidInput

from ._common import ReadState, with_restarts
from .archives import IngestLimits, SafeZip
from .csvfile import csv_header
from .jsonlfile import iter_json_lines
from .stats import to_numpy
from .tabular import fixed_columns, iter_batches, open_parquet, unknown_column
from .zipdata import image_labels

__all__ = ["MAX_TEXT", "json_safe", "read_column", "read_preview"]

MAX_TEXT = 2_000


def json_safe(value: Any) -> Any:
    """``value`` made safe for JSON (see the module docstring)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
    if isinstance(value, dt.date | dt.time | dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes: {base64.b64encode(value[:24]).decode()}…>"
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _rows(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    return [{k: json_safe(v) for k, v in row.items()} for row in table.to_pylist()]


Page = tuple[list[str], list[dict[str, Any]]]


def _from_batches(path: Path, fmt: str, offset: int, limit: int, limits: IngestLimits) -> Page:
    def run(state: ReadState) -> Page:
        columns: list[str] = []
        rows: list[dict[str, Any]] = []
        skip = offset
        for batch in iter_batches(path, fmt, state, limits):
            columns = columns or batch.schema.names
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            rows.extend(_rows(batch.slice(skip, limit - len(rows))))
            skip = 0
            if len(rows) >= limit:
                break
        return columns, rows

    return with_restarts(run)


def _parquet(path: Path, offset: int, limit: int) -> Page:
    pf = open_parquet(path)
    rows: list[dict[str, Any]] = []
    try:
        skip = offset
        for group in range(pf.num_row_groups):
            size = pf.metadata.row_group(group).num_rows
            if skip >= size:  # whole row groups are skipped without being read
                skip -= size
                continue
            for batch in pf.iter_batches(batch_size=max(limit, 1024), row_groups=[group], use_threads=False):
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                rows.extend(_rows(batch.slice(skip, limit - len(rows))))
                skip = 0
                if len(rows) >= limit:
                    return pf.schema_arrow.names, rows
        return pf.schema_arrow.names, rows
    finally:
        pf.close()


def _jsonl(path: Path, offset: int, limit: int) -> Page:
    names: dict[str, None] = {}
    rows: list[dict[str, Any]] = []
    if limit:
        for _, obj in iter_json_lines(path, skip=offset):
            rows.append(obj)
            names.update(dict.fromkeys(obj))
            if len(rows) >= limit:
                break
    return list(names), [{k: json_safe(row.get(k)) for k in names} for row in rows]


def _image_zip(path: Path, offset: int, limit: int, limits: IngestLimits) -> Page:
    with SafeZip(path, limits) as archive:
        members = archive.members
        labels = image_labels(members)
        window = zip(members[offset: offset + limit], labels[offset: offset + limit], strict=True)
        return ["path", "label"], [{"path": m.filename, "label": label} for m, label in window]


def read_preview(path: Path, fmt: str, offset: int, limit: int, *,
                 limits: IngestLimits | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` for rows ``offset .. offset + limit - 1`` of the dataset file (JSON-safe values).

    Reads only as far as the page (Parquet skips whole row groups; image archives read no image bytes).
    """
    if offset < 0:
        raise InvalidInput("offset must be 0 or more.", code="invalid_offset", param="offset")
    if limit < 0:
        raise InvalidInput("limit must be 0 or more.", code="invalid_limit", param="limit")
    limits = limits or IngestLimits()
    if fmt == "parquet":
        return _parquet(path, offset, limit)
    if fmt == "jsonl":
        return _jsonl(path, offset, limit)
    if fmt == "image_zip":
        return _image_zip(path, offset, limit, limits)
    columns, rows = _from_batches(path, fmt, offset, limit, limits)
    return columns or (fixed_columns(fmt) or []), rows


def _known_columns(path: Path, fmt: str) -> list[str] | None:
    fixed = fixed_columns(fmt)
    if fixed is not None:
        return fixed
    if fmt in ("csv", "tsv"):
        return [f.name for f in csv_header(path, fmt)[1]]
    if fmt == "parquet":
        return list(open_parquet(path).schema_arrow.names)
    names: dict[str, None] = {}
    for index, (_, obj) in enumerate(iter_json_lines(path)):  # JSON Lines: the fields of the first lines
        names.update(dict.fromkeys(obj))
        if index >= 1_000:
            break
    return list(names)


def unify_chunks(chunks: list[pa.Array]) -> pa.ChunkedArray:
    """One chunked array from chunks whose types may differ (JSON Lines): numbers as float64, else text."""
    types = {c.type for c in chunks if not pa.types.is_null(c.type)}
    if not types:
        return pa.chunked_array(chunks or [], pa.null())
    if len(types) == 1:
        target = types.pop()
    elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
        target = pa.float64()
    else:
        target = pa.string()
    return pa.chunked_array([c.cast(target) for c in chunks], target)


def _labels(chunks: list[pa.Array]) -> np.ndarray:
    """One numpy array from arrow chunks: numbers as int64/float64 (an integer column with missing values
    becomes float64 with NaN), anything else as objects (missing: None), built through a dictionary so repeated
    labels share one Python object."""
    column = unify_chunks(chunks)
    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        if column.null_count:
            column = column.cast(pa.float64()).fill_null(float("nan"))
        return to_numpy(column)
    if len(column) == 0:
        return np.empty(0, dtype=object)
    if not (pa.types.is_string(t) or pa.types.is_boolean(t) or pa.types.is_null(t)):
        column = column.cast(pa.string())
    encoded = column.combine_chunks().dictionary_encode()
    values = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
    return values[to_numpy(encoded.indices.fill_null(len(values) - 1))]


def read_column(path: Path, fmt: str, column: str, *, limits: IngestLimits | None = None,
                param: str | None = "stratify_by") -> np.ndarray:
    """Every value of ``column`` (e.g. the labels to stratify a split by), streamed from the file.

    Raises ``InvalidInput`` code ``unknown_column`` with ``param`` (default ``stratify_by``) naming the
    dataset's columns when the column does not exist.
    """
    limits = limits or IngestLimits()

    def run(state: ReadState) -> np.ndarray:
        chunks: list[pa.Array] = []
        for batch in iter_batches(path, fmt, state, limits, columns=[column]):
            chunks.append(batch.column(0))
        return _labels(chunks)

    try:
        return with_restarts(run)
    except KeyError:
        raise unknown_column(column, _known_columns(path, fmt), param) from None
