"""Datasets inside zip archives: a zip of text files, or one folder of images per label.

``text_zip``: every file is ``.txt`` or ``.md`` (any folder depth); one row per file with columns ``path`` and
``text`` (UTF-8, a BOM is dropped). ``image_zip``: ``<label>/<image>`` (optionally all under one top folder,
as zipping a folder produces); one row per image with columns ``path`` and ``label``. Every image must really
be a PNG, JPEG, GIF, BMP or WebP file (checked by its first bytes). Hidden files and ``__MACOSX/`` are ignored.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pyarrow as pa

from aimaas.errors import AimaasError, UnsupportedMediaType

from ._common import file_error, quote
from .archives import IngestLimits, SafeZip
from .encoding import encoding_error

__all__ = [
    "IMAGE_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "classify_members",
    "image_kind",
    "image_labels",
    "iter_image_zip",
    "iter_text_zip",
]

TEXT_EXTENSIONS = frozenset({".txt", ".md"})
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"})
_BATCH_ROWS = 2_000
_BATCH_BYTES = 16 * 1024 * 1024
_LAYOUTS = (
    "a zip of .txt/.md files (text_zip), or one folder per label holding .png/.jpg/.gif/.bmp/.webp "
    "images (image_zip)"
)


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _empty() -> AimaasError:
    return file_error("The archive has no usable files (folders, hidden files and __MACOSX/ are ignored). "
                      f"Upload {_LAYOUTS}.", "empty_archive")


def classify_members(members: list[zipfile.ZipInfo]) -> str:
    """``text_zip`` or ``image_zip`` from the members' names, or raise saying what a zip must contain."""
    if not members:
        raise _empty()
    names = [m.filename for m in members]
    if "[Content_Types].xml" in names:
        raise file_error("This is an Office document (Excel/Word), not a dataset archive. Export the sheet as "
                         "CSV and upload that.", "unsupported_format", UnsupportedMediaType)
    suffixes = {_suffix(n) for n in names}
    if suffixes <= TEXT_EXTENSIONS:
        return "text_zip"
    if suffixes <= IMAGE_EXTENSIONS:
        image_labels(members)
        return "image_zip"
    odd = next(n for n in names if _suffix(n) not in TEXT_EXTENSIONS | IMAGE_EXTENSIONS)
    kind = "mixes text and image files" if not suffixes - TEXT_EXTENSIONS - IMAGE_EXTENSIONS else (
        f"contains {quote(odd)}")
    raise file_error(f"The archive {kind}; supported archives are {_LAYOUTS}.", "unsupported_format",
                     UnsupportedMediaType)


def image_labels(members: list[zipfile.ZipInfo]) -> list[str]:
    """The label (folder name) of each image member, checking the one-folder-per-label layout."""
    parts = [PurePosixPath(m.filename).parts for m in members]
    if parts and all(len(p) == 3 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]  # the archive wraps everything in one top folder
    for member, p in zip(members, parts, strict=True):
        if len(p) != 2:
            raise file_error(f"Archive entry {quote(member.filename)} is not inside a label folder: an image "
                             "archive must hold one folder per label, like cats/001.jpg and dogs/002.png.",
                             "bad_archive_layout")
    return [p[0] for p in parts]


def image_kind(head: bytes) -> str | None:
    """The image format named by the first bytes of a file (png, jpeg, gif, bmp, webp), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _batches(rows: Iterator[tuple[str, str, int]], second: str) -> Iterator[pa.RecordBatch]:
    paths: list[str] = []
    values: list[str] = []
    size = 0
    for path, value, nbytes in rows:
        paths.append(path)
        values.append(value)
        size += nbytes
        if len(paths) >= _BATCH_ROWS or size >= _BATCH_BYTES:
            yield pa.record_batch({"path": pa.array(paths, pa.string()), second: pa.array(values, pa.string())})
            paths, values, size = [], [], 0
    if paths:
        yield pa.record_batch({"path": pa.array(paths, pa.string()), second: pa.array(values, pa.string())})


def iter_text_zip(path: Path, limits: IngestLimits) -> Iterator[pa.RecordBatch]:
    """Batches of ``path, text`` rows, one per ``.txt``/``.md`` file."""
    with SafeZip(path, limits) as archive:
        if not archive.members:
            raise _empty()

        def rows() -> Iterator[tuple[str, str, int]]:
            for info in archive.members:
                if _suffix(info.filename) not in TEXT_EXTENSIONS:
                    raise file_error(f"Archive entry {quote(info.filename)} is not a .txt or .md file; a text "
                                     "archive may only hold text files.", "unsupported_format",
                                     UnsupportedMediaType)
                data = archive.read(info)
                try:
                    text = data.decode("utf-8-sig")
                except UnicodeDecodeError as exc:
                    line = data.count(b"\n", 0, exc.start) + 1
                    raise encoding_error(data, f"archive entry {quote(info.filename)}, line {line}") from None
                yield info.filename, text, len(data)

        yield from _batches(rows(), "text")


def iter_image_zip(path: Path, limits: IngestLimits, *, verify: bool = True) -> Iterator[pa.RecordBatch]:
    """Batches of ``path, label`` rows, one per image; with ``verify`` each image's bytes are checked."""
    with SafeZip(path, limits) as archive:
        if not archive.members:
            raise _empty()
        labels = image_labels(archive.members)

        def rows() -> Iterator[tuple[str, str, int]]:
            for info, label in zip(archive.members, labels, strict=True):
                if _suffix(info.filename) not in IMAGE_EXTENSIONS:
                    raise file_error(f"Archive entry {quote(info.filename)} is not an image file (.png, .jpg, "
                                     ".gif, .bmp, .webp).", "invalid_image")
                if verify and image_kind(archive.head(info)) is None:
                    raise file_error(f"Archive entry {quote(info.filename)} is not a PNG, JPEG, GIF, BMP or WebP "
                                     "image (its content does not match). Remove or replace it.", "invalid_image")
                yield info.filename, label, 0

        yield from _batches(rows(), "label")
