"""Safe reading of uploaded zip archives.

Every entry name is checked before anything is read: absolute paths, ``..``, backslashes or drive letters,
links and other special files, encrypted entries are refused (``unsafe_archive``). Too many entries, too many
expanded bytes or too high a compression ratio are refused from the central directory first and then again
while the bytes are actually decompressed, because headers can lie (``archive_too_large``). Nothing is ever
extracted to disk: members are read into memory one at a time, each bounded by the limits.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from aimaas.errors import AimaasError, PayloadTooLarge

from ._common import file_error, quote

if TYPE_CHECKING:
    from aimaas.config import Settings

__all__ = ["IngestLimits", "SafeZip", "is_junk"]

_MiB = 1024 * 1024
_RATIO_MIN_BYTES = _MiB  # entries smaller than this may have any ratio (tiny files compress very well)
_DRIVE = re.compile(r"^[A-Za-z]:")
_JUNK_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """Bounds on what an uploaded archive may expand to (from :class:`~aimaas.config.Settings`)."""

    max_archive_entries: int = 100_000
    max_archive_bytes: int = 4 * 1024 * _MiB
    max_archive_ratio: float = 200.0

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestLimits:
        """The limits configured on the server."""
        return cls(settings.max_archive_entries, settings.max_archive_bytes, settings.max_archive_ratio)


def is_junk(name: str) -> bool:
    """Files that archivers add on their own (``__MACOSX/``, ``.DS_Store``, hidden files): skipped, not errors."""
    return any(part in _JUNK_NAMES or part.startswith(".") for part in PurePosixPath(name).parts)


def _unsafe(message: str) -> AimaasError:
    return file_error(f"{message}. Re-create the archive with plain relative paths and regular files only.",
                      "unsafe_archive")


def _too_large(message: str) -> AimaasError:
    return file_error(message, "archive_too_large", PayloadTooLarge)


def _check_name(info: zipfile.ZipInfo) -> None:
    name = info.filename
    if "\\" in name or _DRIVE.match(name):
        raise _unsafe(f"Archive entry {quote(name)} uses a Windows path (backslash or drive letter)")
    if name.startswith("/"):
        raise _unsafe(f"Archive entry {quote(name)} has an absolute path")
    if ".." in name.split("/"):
        raise _unsafe(f"Archive entry {quote(name)} points outside the archive ('..')")
    if "\x00" in name:
        raise _unsafe(f"Archive entry {quote(name)} has a NUL character in its name")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _unsafe(f"Archive entry {quote(name)} is a symbolic link")
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise _unsafe(f"Archive entry {quote(name)} is not a regular file")
    if info.flag_bits & 0x1:
        raise _unsafe(f"Archive entry {quote(name)} is encrypted; upload an archive without a password")


class SafeZip:
    """A zip archive opened for reading under :class:`IngestLimits`.

    ``members`` lists the regular, non-junk files after every entry passed the checks; :meth:`read` and
    :meth:`head` return a member's bytes while counting what is really decompressed.
    """

    def __init__(self, path: Path, limits: IngestLimits) -> None:
        self.limits = limits
        self._read_total = 0
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise file_error(f"The file is not a readable zip archive ({exc}). Re-create the archive.",
                             "malformed_archive") from None
        try:
            self.members = self._check(self._zip.infolist())
        except BaseException:
            self._zip.close()
            raise

    def _check(self, infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
        lim = self.limits
        if len(infos) > lim.max_archive_entries:
            raise _too_large(f"The archive has {len(infos):,} entries; at most {lim.max_archive_entries:,} "
                             "are allowed. Split it into smaller archives.")
        total = 0
        members = []
        for info in infos:
            _check_name(info)
            if info.is_dir():
                continue
            total += info.file_size
            self._check_ratio(info.filename, info.file_size, info.compress_size)
            if not is_junk(info.filename):
                members.append(info)
        if total > lim.max_archive_bytes:
            raise _too_large(f"The archive expands to {total:,} bytes; at most {lim.max_archive_bytes:,} "
                             "are allowed. Split it into smaller archives.")
        return members

    def _check_ratio(self, name: str, size: int, compressed: int) -> None:
        if size > _RATIO_MIN_BYTES and size / max(compressed, 1) > self.limits.max_archive_ratio:
            raise _too_large(f"Archive entry {quote(name)} expands {size / max(compressed, 1):,.0f} times "
                             f"(at most {self.limits.max_archive_ratio:g} allowed): it looks like a zip bomb.")

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying file."""
        self._zip.close()

    def iter_chunks(self, info: zipfile.ZipInfo, chunk: int = _MiB) -> Iterator[bytes]:
        """The decompressed bytes of ``info`` in chunks, enforcing size, ratio and total limits as they come."""
        seen = 0
        try:
            with self._zip.open(info) as fh:
                while data := fh.read(chunk):
                    seen += len(data)
                    self._read_total += len(data)
                    if seen > info.file_size:
                        raise _unsafe(f"Archive entry {quote(info.filename)} is larger than its header says")
                    if self._read_total > self.limits.max_archive_bytes:
                        raise _too_large(f"The archive expands to more than {self.limits.max_archive_bytes:,} "
                                         "bytes. Split it into smaller archives.")
                    self._check_ratio(info.filename, seen, info.compress_size)
                    yield data
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise _unsafe(f"Archive entry {quote(info.filename)} does not match its header or is corrupt "
                          f"({exc})") from None

    def read(self, info: zipfile.ZipInfo) -> bytes:
        """The whole member (bounded by the limits)."""
        return b"".join(self.iter_chunks(info))

    def head(self, info: zipfile.ZipInfo, size: int = 32) -> bytes:
        """The first ``size`` bytes of the member; the rest is decompressed (and checked) but not kept."""
        first = b""
        for data in self.iter_chunks(info, 64 * 1024):
            if len(first) < size:
                first += data[: size - len(first)]
        return first
