"""Which dataset format an upload is: from an explicit hint, the client's filename and the file's first bytes.

The client's filename is a claim, the bytes are the truth: a ``.csv`` that is really a zip or a Parquet file is
refused with a message saying what it is. Supported formats are :data:`FORMATS`.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from aimaas.errors import UnsupportedMediaType

from ._common import ARCHIVE_FORMATS, FORMATS, file_error
from .archives import IngestLimits, SafeZip
from .zipdata import classify_members

__all__ = ["FORMATS", "detect_format"]

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "text",
    ".zip": "zip",
}
_SUPPORTED = (
    "CSV (.csv), TSV (.tsv/.tab), JSON Lines (.jsonl/.ndjson), Parquet (.parquet/.pq), plain text with one "
    "document per line (.txt), a zip of .txt/.md files, or a zip with one folder of images per label"
)
_BINARY = (
    (b"\x1f\x8b", "a gzip file: decompress it first"),
    (b"BZh", "a bzip2 file: decompress it first"),
    (b"\xfd7zXZ\x00", "an xz file: decompress it first"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive: re-pack it as .zip"),
    (b"Rar!", "a RAR archive: re-pack it as .zip"),
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0", "an old Office document: export it as CSV"),
    (b"SQLite format 3", "a SQLite database: export a table as CSV"),
    (b"\x89PNG", "a single image: put images in a zip, one folder per label"),
    (b"\xff\xd8\xff", "a single image: put images in a zip, one folder per label"),
)


def _unsupported(message: str, code: str = "unsupported_format") -> UnsupportedMediaType:
    return UnsupportedMediaType(f"{message}. Supported: {_SUPPORTED}.", code=code, param="file")


def _sniff(path: Path) -> tuple[str, bytes]:
    """``(kind, head)`` where kind is ``zip``, ``parquet``, ``empty`` or ``text`` (anything else)."""
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    if not head:
        return "empty", head
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip", head
    if head[:4] == b"PAR1":
        return "parquet", head
    for magic, what in _BINARY:
        if head.startswith(magic):
            raise _unsupported(f"The file is {what}")
    return "text", head


def _guess_text(head: bytes) -> str:
    """Format of an extension-less text file from its first line."""
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
    if first.startswith(b"{"):
        try:
            if isinstance(json.loads(first), dict):
                return "jsonl"
        except ValueError:
            pass
    if b"\t" in first and b"," not in first:
        return "tsv"
    return "csv" if b"," in first or b";" in first else "text"


def _zip_format(path: Path) -> str:
    with SafeZip(path, IngestLimits(max_archive_entries=10**9, max_archive_bytes=2**62,
                                    max_archive_ratio=float("inf"))) as archive:
        return classify_members(archive.members)


def detect_format(path: Path, filename: str, hint: str | None = None) -> str:
    """The dataset format of the file at ``path``: one of :data:`FORMATS`.

    ``hint`` (the format the client asked for) wins when it is a known format and fits the bytes; otherwise
    the extension of ``filename`` (the client's name, metadata only) and the first bytes decide. A zip is
    ``text_zip`` when it holds only ``.txt``/``.md`` files and ``image_zip`` when it holds one folder of images
    per label. Raises :class:`UnsupportedMediaType` (415) listing what is supported, or ``InvalidInput`` with
    code ``empty_file`` for a 0-byte file.
    """
    kind, head = _sniff(path)
    if kind == "empty":
        raise file_error("The file is empty (0 bytes). Upload a file with a header and at least one row.",
                         "empty_file")
    if hint is not None:
        hint = hint.strip().lower()
        if hint not in FORMATS:
            raise _unsupported(f"Unknown format {hint!r}; use one of {', '.join(FORMATS)}")
        expected = "zip" if hint in ARCHIVE_FORMATS else "parquet" if hint == "parquet" else "text"
        if kind != expected:
            raise _unsupported(f"The file was sent as {hint} but its content is {_describe(kind)}",
                               "format_mismatch")
        return hint
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    claimed = _EXTENSIONS.get(suffix)
    if claimed is None and suffix:
        if suffix == ".json":
            raise _unsupported("A .json file is not supported: convert it to JSON Lines (one object per line, "
                               ".jsonl)")
        raise _unsupported(f"Files ending in {suffix!r} are not supported")
    if claimed is None:  # no extension: the bytes decide
        return _zip_format(path) if kind == "zip" else kind if kind == "parquet" else _guess_text(head)
    if claimed == "zip":
        if kind != "zip":
            raise _unsupported(f"{filename!r} is named .zip but its content is {_describe(kind)}",
                               "format_mismatch")
        return _zip_format(path)
    expected = "parquet" if claimed == "parquet" else "text"
    if kind != expected:
        raise _unsupported(f"{filename!r} is named {suffix} but its content is {_describe(kind)}; rename it "
                           "or send the right file", "format_mismatch")
    return claimed


def _describe(kind: str) -> str:
    return {"zip": "a zip archive", "parquet": "a Parquet file", "text": "text"}.get(kind, kind)
