"""UTF-8 checks for uploaded text: find the first bad byte, guess the real encoding, say how to fix it.

Every text format we accept (CSV, TSV, JSON Lines, plain text, the files inside a text zip) must be UTF-8;
a UTF-8 byte-order mark is fine. Anything else is refused with a message that names the line, the
encoding the bytes most likely are (detected with charset-normalizer) and the fix: re-save as UTF-8.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import charset_normalizer

from aimaas.errors import AimaasError

from ._common import file_error

__all__ = ["check_utf8_start", "encoding_error", "find_invalid_utf8", "guess_encoding", "raise_if_not_utf8"]

_CHUNK = 1 << 20
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_PRETTY = {"latin_1": "Latin-1 (ISO-8859-1)", "ascii": "ASCII", "utf_16": "UTF-16", "utf_32": "UTF-32"}


def guess_encoding(sample: bytes) -> str | None:
    """The most likely encoding of ``sample`` by charset-normalizer, in a readable spelling, or None."""
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        return None
    name = best.encoding
    if name.startswith("cp125"):
        return f"Windows-{name[2:]} ({name})"
    return _PRETTY.get(name, name.replace("_", "-"))


def encoding_error(sample: bytes, where: str, *, guess_it: bool = True) -> AimaasError:
    """The ``bad_encoding`` error for bytes that are not UTF-8; ``where`` says where they are, and the likely
    real encoding of ``sample`` is added unless ``guess_it`` is False."""
    guess = guess_encoding(sample) if guess_it else None
    looks = f"; it looks like {guess}" if guess and guess not in ("UTF-8", "utf-8", "ASCII") else ""
    return file_error(
        f"The file is not valid UTF-8: {where}{looks}. Re-save it as UTF-8 and upload it again.",
        "bad_encoding",
    )


def find_invalid_utf8(path: Path) -> tuple[int, int] | None:
    """``(byte_offset, line)`` of the first byte sequence that is not UTF-8 (line 1-based), or None."""
    base = 0  # offset of the start of `pending` in the file
    lines = 1
    pending = b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            final = not chunk
            data = pending + chunk
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data" and not final and exc.start >= len(data) - 3:
                    good = exc.start  # a multi-byte character cut by the chunk boundary: keep it for later
                else:
                    return base + exc.start, lines + data.count(b"\n", 0, exc.start)
            else:
                good = len(data)
            if final:
                return None
            lines += data.count(b"\n", 0, good)
            base += good
            pending = data[good:]


def _window(path: Path, offset: int, size: int = 256 * 1024) -> bytes:
    with path.open("rb") as fh:
        fh.seek(max(0, offset - size // 2))
        return fh.read(size)


def raise_if_not_utf8(path: Path) -> None:
    """Scan the whole file and raise ``bad_encoding`` naming the first line that is not UTF-8."""
    found = find_invalid_utf8(path)
    if found is not None:
        offset, line = found
        raise encoding_error(_window(path, offset), f"line {line} (byte {offset + 1}) has bytes that are not UTF-8")


def check_utf8_start(path: Path, size: int = 64 * 1024) -> None:
    """Cheap early check of the first ``size`` bytes: UTF-16/32 files and non-UTF-8 text fail fast."""
    with path.open("rb") as fh:
        head = fh.read(size)
    for bom, name in _BOMS:
        if head.startswith(bom):
            raise encoding_error(head, f"it is {name} (it starts with a {name} byte-order mark)", guess_it=False)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and len(head) == size and exc.start >= size - 3:
            return
        line = head.count(b"\n", 0, exc.start) + 1
        raise encoding_error(head, f"line {line} (byte {exc.start + 1}) has bytes that are not UTF-8") from None
    if b"\x00" in head:
        raise encoding_error(head, "it contains NUL bytes (a binary file, or UTF-16 without a byte-order mark)")
