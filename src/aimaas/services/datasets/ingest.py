"""Validate an uploaded dataset and compute its schema and statistics in one streaming pass.

:func:`inspect_dataset` reads the file batch by batch (never whole), feeding one accumulator per column
(:mod:`.stats`), and returns an :class:`IngestResult` ready to be stored on the dataset version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ._common import ReadState, file_error, prefetch, with_restarts
from .archives import IngestLimits
from .jsonlfile import widen
from .stats import BooleanStats, ColumnStats, DatetimeStats, NumericStats, kind_of
from .tabular import iter_batches
from .textstats import StringStats

__all__ = ["IngestLimits", "IngestResult", "inspect_dataset", "suggest_target"]

_GROUP_ROWS = 16_384  # rows per statistics step: big enough to amortise per-call overhead, small in memory
_SEED = 0  # fixed: the same file always gives the same statistics
_FORCED = {
    "text": {"text": "text"},
    "text_zip": {"path": "string", "text": "text"},
    "image_zip": {"path": "image", "label": "label"},
}
_TARGET_NAMES = ("target", "label", "labels", "class", "outcome", "y", "grade", "score")
_EMPTY = {
    "jsonl": "The file has no JSON objects (only blank lines). Upload at least one line.",
    "text": "The file has no text (only blank lines). Upload one document per line.",
}


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What ingestion learnt about a dataset file.

    ``schema`` is ``[{"name", "type", "missing"}]``; ``stats`` is ``{"num_rows", "exact", "columns": [...]}``
    (column entries as documented on ``aimaas.schemas.datasets.DatasetStats``; image archives add
    ``label_counts``); ``target_suggestion`` names the column most likely to be predicted, or None.
    """

    format: str
    num_rows: int
    schema: list[dict[str, Any]]
    stats: dict[str, Any]
    target_suggestion: str | None


def make_stats(kind: str, name: str, type: pa.DataType, forced: str | None = None) -> ColumnStats:
    """A fresh accumulator of ``kind`` for column ``name`` whose first non-missing batch has ``type``."""
    if kind == "string" or forced is not None:
        return StringStats(name, forced=forced)
    if kind == "numeric":
        return NumericStats(name, integer=pa.types.is_integer(type))
    if kind == "boolean":
        return BooleanStats(name)
    if kind == "datetime":
        return DatetimeStats(name)
    return ColumnStats(name)


def _grouped(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    group: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if group and batch.schema != group[0].schema:
            yield pa.Table.from_batches(group)
            group, rows = [], 0
        group.append(batch)
        rows += batch.num_rows
        if rows >= _GROUP_ROWS:
            yield pa.Table.from_batches(group)
            group, rows = [], 0
    if group:
        yield pa.Table.from_batches(group)


def _decode(column: pa.ChunkedArray) -> pa.ChunkedArray:
    t = column.type
    if pa.types.is_dictionary(t):
        return column.cast(t.value_type)
    if pa.types.is_decimal(t):
        return column.cast(pa.float64())
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return column.cast(pa.string())
    return column


class _Scan:
    """The state of one pass: accumulators by column, in first-seen order."""

    def __init__(self, fmt: str) -> None:
        self.forced = _FORCED.get(fmt, {})
        self.columns: dict[str, ColumnStats | None] = {}
        self.pending: dict[str, int] = {}  # missing values seen before a column's first non-missing value
        self.rows = 0
        self.rng = np.random.Generator(np.random.PCG64(_SEED))

    def add(self, table: pa.Table) -> None:
        n = table.num_rows
        keys = self.rng.random(n, dtype=np.float32)
        for field, column in zip(table.schema, table.columns, strict=True):
            name = field.name
            if name not in self.columns:
                self.columns[name] = None
                self.pending[name] = self.rows
            kind = kind_of(field)
            stats = self.columns[name]
            if kind is None or column.null_count == n:
                if stats is None:
                    self.pending[name] += n
                else:
                    stats.missing += n
                continue
            if stats is None:
                stats = make_stats(kind, name, field.type, self.forced.get(name))
                stats.missing += self.pending.pop(name)
                self.columns[name] = stats
            elif not stats.accepts(kind):
                raise widen(name)
            stats.add(_decode(column), keys)
        for name, stats in self.columns.items():
            if name not in table.column_names:
                if stats is None:
                    self.pending[name] += n
                else:
                    stats.missing += n
        self.rows += n

    def entries(self) -> list[dict[str, Any]]:
        out = []
        for name, stats in self.columns.items():
            if stats is None:
                out.append({"name": name, "type": self.forced.get(name, "other"), "count": 0,
                            "missing": self.pending[name]})
            else:
                out.append(stats.result())
        return out


def suggest_target(entries: list[dict[str, Any]], fmt: str) -> str | None:
    """The column a model would most likely predict: one named like a target, else a low-cardinality last
    column; ``label`` for image archives; None for plain text."""
    if fmt == "image_zip":
        return "label"
    if fmt in ("text", "text_zip"):
        return None
    usable = [e for e in entries if e["type"] not in ("text", "other")]
    normal = {re.sub(r"[^a-z0-9]+", "_", e["name"].strip().lower()).strip("_"): e for e in usable}
    for wanted in _TARGET_NAMES:
        if wanted in normal:
            return str(normal[wanted]["name"])
    for e in usable:
        norm = re.sub(r"[^a-z0-9]+", "_", e["name"].strip().lower())
        if norm.startswith(("target_", "label_")) or norm.endswith(("_target", "_label", "_class")):
            return str(e["name"])
    if len(entries) > 1 and entries[-1] in usable:
        last = entries[-1]
        unique = last.get("unique")
        if last["type"] == "boolean" or (
            last["type"] in ("string", "integer") and unique is not None and 2 <= unique <= 50
            and unique <= max(2, last["count"] // 2)
        ):
            return str(last["name"])
    return None


def inspect_dataset(path: Path, fmt: str, limits: IngestLimits | None = None) -> IngestResult:
    """Validate the dataset file at ``path`` (format ``fmt`` from ``detect_format``) and compute its schema,
    statistics and target suggestion in one streaming pass.

    Raises ``InvalidInput`` (``empty_file``, ``malformed_csv``, ``malformed_jsonl``, ``malformed_parquet``,
    ``bad_encoding``, ``invalid_columns``, ``unsafe_archive``, ``empty_archive``, ``invalid_image`` …),
    ``PayloadTooLarge`` (``archive_too_large``) or ``UnsupportedMediaType``, all with ``param="file"``.
    """
    limits = limits or IngestLimits()

    def run(state: ReadState) -> _Scan:
        scan = _Scan(fmt)
        # the file is read and parsed one group ahead, in a thread, while statistics are computed here
        for table in prefetch(_grouped(iter_batches(path, fmt, state, limits)), depth=1):
            scan.add(table)
        return scan

    scan = with_restarts(run)
    if scan.rows == 0:
        message = _EMPTY.get(fmt, "The file has column names but no rows. Upload a file with at least one row.")
        raise file_error(message, "empty_file")
    entries = scan.entries()
    exact = all(s.exact for s in scan.columns.values() if s is not None)
    stats: dict[str, Any] = {"num_rows": scan.rows, "exact": exact, "columns": entries}
    for entry in entries:
        if "label_counts" in entry:
            stats["label_counts"] = entry["label_counts"]
    schema = [{"name": e["name"], "type": e["type"], "missing": e["missing"]} for e in entries]
    return IngestResult(fmt, scan.rows, schema, stats, suggest_target(entries, fmt))
