"""One streaming interface over every format: :func:`iter_batches` yields pyarrow record batches.

Formats and their columns: ``csv``/``tsv``/``jsonl``/``parquet`` their own; ``text`` one column ``text`` (one
document per non-blank line, a trailing ``\\r`` dropped; blank lines are skipped because they are not
documents); ``text_zip`` ``path, text``; ``image_zip`` ``path, label``. Nothing here holds more than a batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from aimaas.errors import AimaasError, InvalidInput, UnsupportedMediaType

from ._common import FORMATS, ReadState, file_error, quote
from .archives import IngestLimits
from .csvfile import check_names, iter_csv
from .encoding import check_utf8_start, encoding_error
from .jsonlfile import iter_jsonl
from .zipdata import iter_image_zip, iter_text_zip

__all__ = ["fixed_columns", "iter_batches", "iter_parquet", "iter_text", "open_parquet", "unknown_column"]

_TEXT_CHUNK = 1 << 20
_FIXED_COLUMNS = {"text": ["text"], "text_zip": ["path", "text"], "image_zip": ["path", "label"]}


def unknown_column(column: str, known: list[str] | None, param: str | None) -> InvalidInput:
    """The error for a column the dataset does not have (``unknown_column``), naming the real ones."""
    names = f"; the columns are {', '.join(map(quote, known[:50]))}" if known else ""
    return InvalidInput(f"Column {quote(column)} is not in this dataset{names}.", code="unknown_column",
                        param=param)


def open_parquet(path: Path) -> pq.ParquetFile:
    """Open a Parquet file, translating a corrupt one into ``malformed_parquet``."""
    try:
        pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)  # read pages as needed, not whole chunks
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _bad_parquet(exc) from None
    check_names(pf.schema_arrow.names)
    return pf


def _bad_parquet(exc: BaseException) -> AimaasError:
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return file_error(f"The Parquet file is corrupt or truncated ({detail}). Write it again and re-upload.",
                      "malformed_parquet")


def iter_parquet(path: Path, columns: list[str] | None = None, batch_rows: int = 8_192) -> Iterator[pa.RecordBatch]:
    """Record batches of a Parquet file (row group by row group, never the whole file)."""
    pf = open_parquet(path)
    for column in columns or ():
        if column not in pf.schema_arrow.names:
            raise KeyError(column)
    try:
        yield from pf.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _bad_parquet(exc) from None
    finally:
        pf.close()


def iter_text(path: Path, batch_rows: int = 50_000) -> Iterator[pa.RecordBatch]:
    """Batches of one column ``text``: each non-blank line of a UTF-8 file is a document."""
    check_utf8_start(path)
    lines: list[str] = []
    line_number = 1
    rest = b""
    with path.open("rb") as fh:
        first = True
        while True:
            chunk = fh.read(_TEXT_CHUNK)
            data = rest + chunk
            if first and data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
            first = False
            cut = len(data) if not chunk else data.rfind(b"\n") + 1
            block, rest = data[:cut], data[cut:]
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = line_number + block.count(b"\n", 0, exc.start)
                raise encoding_error(block, f"line {line} has bytes that are not UTF-8") from None
            line_number += block.count(b"\n")
            lines.extend(s.rstrip("\r") for s in text.split("\n") if s.strip())
            if len(lines) >= batch_rows or not chunk:
                if lines:
                    yield pa.record_batch({"text": pa.array(lines, pa.string())})
                lines = []
            if not chunk:
                return


def iter_batches(path: Path, fmt: str, state: ReadState | None = None, limits: IngestLimits | None = None,
                 columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of the dataset file ``path`` in format ``fmt``, read as ``state`` says.

    ``columns`` selects columns (``KeyError`` for one the file lacks). May raise
    :class:`~aimaas.services.datasets._common.Restart` (run it under ``with_restarts``) and the
    ``InvalidInput`` family for a bad file.
    """
    state = state or ReadState()
    limits = limits or IngestLimits()
    if fmt in _FIXED_COLUMNS:
        for column in columns or ():
            if column not in _FIXED_COLUMNS[fmt]:
                raise KeyError(column)
    if fmt in ("csv", "tsv"):
        batches = iter_csv(path, fmt, state, columns)
    elif fmt == "jsonl":
        batches = iter_jsonl(path, state, columns)
    elif fmt == "parquet":
        batches = iter_parquet(path, columns)
    elif fmt == "text":
        batches = iter_text(path)
    elif fmt == "text_zip":
        batches = iter_text_zip(path, limits)
    elif fmt == "image_zip":
        batches = iter_image_zip(path, limits)
    else:
        raise file_error(f"Unknown dataset format {fmt!r}; supported formats are {', '.join(FORMATS)}.",
                         "unsupported_format", UnsupportedMediaType)
    if fmt in _FIXED_COLUMNS and columns is not None:
        yield from (batch.select(columns) for batch in batches)
    else:
        yield from batches


def fixed_columns(fmt: str) -> list[str] | None:
    """The columns of formats whose columns do not come from the file (text and archives)."""
    return _FIXED_COLUMNS.get(fmt)

