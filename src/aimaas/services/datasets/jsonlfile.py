"""Streaming JSON Lines reading: one JSON object per line, blank lines skipped.

pyarrow's reader is tried first (fast, for files whose fields keep one type); if it gives up for any reason
the pass restarts with the exact Python reader, which reports the line number and JSON error of a bad line,
refuses lines that are not objects, and copes with fields that appear late or change type (a field that mixes
numbers and text is read as text; nested objects and arrays are kept as JSON text of type ``other``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pjson

from ._common import KIND_KEY, ReadState, Restart, file_error
from .encoding import check_utf8_start, encoding_error

__all__ = ["iter_json_lines", "iter_jsonl", "widen"]

_BATCH_ROWS = 10_000
_OTHER = {KIND_KEY: b"other"}


def iter_json_lines(path: Path, skip: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line_number, object)`` for every non-blank line, raising ``malformed_jsonl``/``bad_encoding``;
    the first ``skip`` objects are passed over without being parsed."""
    seen = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            seen += 1
            if seen <= skip:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise encoding_error(raw, f"line {number} has bytes that are not UTF-8") from None
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise file_error(f"Line {number} is not valid JSON: {exc.msg} (column {exc.colno}). Each line "
                                 "must be one complete JSON object.", "malformed_jsonl") from None
            if not isinstance(obj, dict):
                raise file_error(f"Line {number} is a JSON {_json_kind(obj)}, not an object. Each line must be "
                                 'one JSON object like {"column": value}.', "malformed_jsonl")
            if "" in obj:
                raise file_error(f"Line {number} has a field with an empty name. Give every field a name.",
                                 "invalid_columns")
            yield number, obj


def _json_kind(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null")


def _column(values: list[Any], force_string: bool) -> tuple[pa.Array, bool]:
    """``(array, nested)`` for one column's values in a batch."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.nulls(len(values)), False
    if not force_string:
        if kinds <= {int, float}:
            try:
                return pa.array(values, pa.int64() if kinds == {int} else pa.float64()), False
            except (OverflowError, pa.ArrowException):
                return pa.array([None if v is None else float(v) for v in values], pa.float64()), False
        if kinds == {bool} or kinds == {str}:
            return pa.array(values), False
    nested = not force_string and kinds <= {dict, list}
    text = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
    return pa.array(text, pa.string()), nested


def _batch(rows: list[dict[str, Any]], names: dict[str, None], state: ReadState,
           columns: list[str] | None) -> pa.RecordBatch:
    for row in rows:
        for key in row:
            names.setdefault(key)
    arrays, fields = [], []
    for name in columns if columns is not None else names:
        array, nested = _column([row.get(name) for row in rows], name in state.overrides)
        arrays.append(array)
        fields.append(pa.field(name, array.type, metadata=_OTHER if nested else None))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _iter_python(path: Path, state: ReadState, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    names: dict[str, None] = {}  # every field seen so far, in first-seen order
    rows: list[dict[str, Any]] = []
    for _, obj in iter_json_lines(path):
        rows.append(obj)
        if len(rows) >= _BATCH_ROWS:
            yield _batch(rows, names, state, columns)
            rows = []
    if rows or not names:
        yield _batch(rows, names, state, columns)
    if columns is not None:
        for column in columns:
            if column not in names:
                raise KeyError(column)


def _iter_arrow(path: Path, state: ReadState, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    try:
        reader = pjson.open_json(path, read_options=pjson.ReadOptions(block_size=state.block_size))
        if columns is not None:
            for column in columns:
                if column not in reader.schema.names:
                    raise Restart(json_python=True)
        for batch in reader:
            if batch.num_columns and not all(batch.schema.names):
                raise Restart(json_python=True)
            yield batch.select(columns) if columns is not None else batch
    except (pa.ArrowInvalid, UnicodeDecodeError):
        raise Restart(json_python=True) from None


def iter_jsonl(path: Path, state: ReadState, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of a JSON Lines file read as ``state`` says; ``columns`` selects fields.

    Raises :class:`Restart` to switch to the Python reader or widen a field, ``InvalidInput``
    (``malformed_jsonl``, ``bad_encoding``, ``invalid_columns``) for a bad file, ``KeyError`` for a field
    that no line has.
    """
    check_utf8_start(path)
    if state.json_python:
        yield from _iter_python(path, state, columns)
    else:
        yield from _iter_arrow(path, state, columns)


def widen(name: str) -> Restart:
    """The restart that reads field ``name`` as text from now on."""
    return Restart(name, pa.string(), json_python=True)

