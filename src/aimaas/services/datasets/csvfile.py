"""Streaming CSV/TSV reading with pyarrow, and errors that name the line to fix.

Column types are inferred by pyarrow from the first block; the file is then read with those types fixed
(faster than inferring on every block). When a later block holds a value that does not fit (an integer column
with ``3.5`` further down, a number column with a word) :class:`Restart` is raised and the caller restarts
with the wider type. Blank lines are skipped; quoted values may contain newlines; empty cells and the usual
null markers (``NA``, ``N/A``, ``NULL``, ``NaN``, ``null`` …) are missing values.
A ``.csv`` whose header has no comma but has semicolons (or ``|``) is read with that delimiter.
"""

from __future__ import annotations

import contextlib
import csv
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

from ._common import ReadState, Restart, file_error, quote
from .encoding import check_utf8_start, raise_if_not_utf8

__all__ = ["BLOCK_SIZE", "check_names", "csv_header", "iter_csv", "locate_bad_row"]

# pyarrow's streaming reader queues dozens of blocks ahead in the background, so the block size bounds memory:
# 256 KiB blocks keep the reader under ~45 MB while parsing nearly as fast as bigger ones (128 KiB is slower).
BLOCK_SIZE = 1 << 18
_MAX_BLOCK = 256 << 20
_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to ([^:]+): invalid value '(.*)'",
                         re.S)
_TRUE_FALSE = {"true", "false"}


def _delimiter(path: Path, fmt: str) -> str:
    if fmt == "tsv":
        return "\t"
    with path.open("rb") as fh:
        first = fh.readline(64 * 1024)
    unquoted = re.sub(rb'"[^"]*"', b"", first)
    if b"," in unquoted:
        return ","
    counts = {d: unquoted.count(d.encode()) for d in (";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def check_names(names: list[str]) -> None:
    """Refuse empty or duplicate column names (``invalid_columns``)."""
    seen: set[str] = set()
    for i, name in enumerate(names, 1):
        if not name.strip():
            raise file_error(f"Column {i} has no name. Give every column a unique name in the header row.",
                             "invalid_columns")
        if name in seen:
            raise file_error(f"Column name {quote(name)} appears more than once in the header. Give every "
                             "column a unique name.", "invalid_columns")
        seen.add(name)


def _open(path: Path, delimiter: str, block: int, types: dict[str, pa.DataType] | None,
          columns: list[str] | None, rows: list[pcsv.InvalidRow]) -> pcsv.CSVStreamingReader:
    def on_invalid(row: pcsv.InvalidRow) -> str:
        rows.append(row)
        return "error"

    return pcsv.open_csv(
        path,
        # single-threaded parsing: the caller already reads in its own thread, and rows get their numbers
        read_options=pcsv.ReadOptions(block_size=block, use_threads=False),
        parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(column_types=types, include_columns=columns, strings_can_be_null=True),
    )


def locate_bad_row(path: Path, delimiter: str, expected: int) -> tuple[int, int] | None:
    """``(line, fields)`` of the first non-blank record whose field count differs from ``expected``
    (``fields`` is -1 when the record cannot be parsed at all)."""
    old_limit = csv.field_size_limit(sys.maxsize)  # a long text cell is not an error
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            start = 1
            try:
                for row in reader:
                    if row and len(row) != expected:
                        return start, len(row)
                    start = reader.line_num + 1
            except csv.Error:
                return start, -1
    finally:
        csv.field_size_limit(old_limit)
    return None


def _header_width(path: Path, delimiter: str) -> int:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        for row in csv.reader(fh, delimiter=delimiter):
            if row:
                return len(row)
    return 0


def _wider(current: str, value: str) -> pa.DataType:
    text = value.strip()
    with contextlib.suppress(ValueError):
        int(text)
        if current in ("null", "bool"):
            return pa.int64()
    with contextlib.suppress(ValueError):
        float(text)
        if current in ("null", "bool", "int64"):
            return pa.float64()
    if current == "null" and text.lower() in _TRUE_FALSE:
        return pa.bool_()
    return pa.string()


def _translate(exc: pa.ArrowInvalid, path: Path, delimiter: str, names: list[str],
               rows: list[pcsv.InvalidRow]) -> Exception:
    message = str(exc)
    match = _CONVERSION.search(message)
    if match and int(match.group(1)) < len(names):
        index, target, value = int(match.group(1)), match.group(2).strip(), match.group(3)
        return Restart(names[index], _wider(target.split("[")[0], value))
    if "invalid UTF8" in message or "UTF-8" in message:
        raise_if_not_utf8(path)
    expected = rows[0].expected_columns if rows else len(names) or _header_width(path, delimiter)
    found = locate_bad_row(path, delimiter, expected)
    if found is not None:
        line, fields = found
        what = "cannot be parsed (unbalanced quotes?)" if fields < 0 else f"has {fields} fields"
        return file_error(f"Line {line} {what} but the header has {expected} columns. Fix that line (quote "
                          "values that contain the delimiter) and upload again.", "malformed_csv")
    detail = ""
    if rows:
        where = f"row {rows[0].number}" if rows[0].number else "a row"
        detail = f" ({where} has {rows[0].actual_columns} fields: {rows[0].text[:80]!r})"
    return file_error(f"The CSV file cannot be parsed: {message.splitlines()[0][:200]}{detail}.", "malformed_csv")


def csv_header(path: Path, fmt: str, block: int = BLOCK_SIZE) -> tuple[str, list[pa.Field]]:
    """``(delimiter, fields)`` with the types pyarrow infers from the first block; validates the header."""
    check_utf8_start(path)
    delimiter = _delimiter(path, fmt)
    rows: list[pcsv.InvalidRow] = []
    try:
        reader = _open(path, delimiter, block, None, None, rows)
    except UnicodeDecodeError:
        raise_if_not_utf8(path)
        raise
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise file_error("The file has no header row (it is empty or blank). Upload a CSV file with a header "
                             "and at least one row.", "empty_file") from None
        if "straddling" in str(exc) and block < _MAX_BLOCK:
            raise Restart(block_size=block * 8) from None
        raise _translate(exc, path, delimiter, [], rows) from None
    fields = list(reader.schema)
    with contextlib.suppress(Exception):
        reader.close()
    check_names([f.name for f in fields])
    if any(pa.types.is_binary(f.type) for f in fields):
        raise_if_not_utf8(path)
    return delimiter, fields


def iter_csv(path: Path, fmt: str, state: ReadState, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of a CSV/TSV file read as ``state`` says; ``columns`` selects columns.

    Raises :class:`Restart` when a column needs a wider type or a row is longer than a block, and
    ``InvalidInput`` (``malformed_csv``, ``bad_encoding``, ``invalid_columns``, ``empty_file``) when the file is
    wrong; ``KeyError(name)`` for a requested column the header lacks.
    """
    delimiter, fields = csv_header(path, fmt, state.block_size)
    names = [f.name for f in fields]
    for column in columns or ():
        if column not in names:
            raise KeyError(column)
    types = {f.name: f.type for f in fields if not pa.types.is_null(f.type)}
    types.update(state.overrides)
    rows: list[pcsv.InvalidRow] = []
    try:
        yield from _open(path, delimiter, state.block_size, types, columns, rows)
    except pa.ArrowInvalid as exc:
        if "straddling" in str(exc) and state.block_size < _MAX_BLOCK:
            raise Restart(block_size=state.block_size * 8) from None
        raise _translate(exc, path, delimiter, names, rows) from None
    except UnicodeDecodeError:
        raise_if_not_utf8(path)
        raise
