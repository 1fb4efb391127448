"""Helpers for the dataset-processing tests: small files written into ``tmp_path``."""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24
GIF = b"GIF89a" + b"\x00" * 24
BMP = b"BM" + b"\x00" * 30
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 16


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(
        b"IEND", b""
    )


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """``write(name, content)``: a file in ``tmp_path`` from str (UTF-8) or bytes."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return _write


@pytest.fixture
def make_zip(tmp_path: Path) -> Callable[..., Path]:
    """``make_zip(name, {entry: bytes | str})``: a deflated zip archive in ``tmp_path``."""

    def _make(name: str, entries: dict[str, bytes | str], *, compression: int = zipfile.ZIP_DEFLATED) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w", compression=compression) as zf:
            for entry, data in entries.items():
                zf.writestr(entry, data.encode() if isinstance(data, str) else data)
        return path

    return _make


def generate_wide_csv(path: Path, target_bytes: int, seed: int = 0, chunk_rows: int = 100_000) -> int:
    """A CSV of about ``target_bytes``: 10 numeric columns (ints and floats with 1% missing) and 3 strings (a
    category, a skewed city, a ~55-character comment). Returns the number of data rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    words = np.array(["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "model", "data", "train"])
    cats = np.array(["red", "green", "blue", "yellow", "black", "white", "orange", "purple"])
    cities = np.array([f"city_{i:04d}" for i in range(2000)])
    fields = [(f"n{i}", pa.float64() if i % 2 else pa.int64()) for i in range(10)]
    schema = pa.schema([*fields, ("cat", pa.string()), ("city", pa.string()), ("comment", pa.string())])
    rows = 0
    with pcsv.CSVWriter(path, schema) as writer:
        while path.stat().st_size < target_bytes:
            n = chunk_rows
            cols: dict[str, pa.Array] = {}
            for i in range(10):
                if i % 2:
                    cols[f"n{i}"] = pa.array(rng.normal(i, 1 + i, n).round(4), mask=rng.random(n) < 0.01)
                else:
                    cols[f"n{i}"] = pa.array(rng.integers(-1000 * (i + 1), 1000 * (i + 1), n))
            cols["cat"] = pa.array(cats[rng.integers(0, len(cats), n)])
            cols["city"] = pa.array(cities[rng.zipf(1.3, n) % len(cities)])
            parts = [pa.array(words[rng.integers(0, len(words), n)]) for _ in range(10)]
            cols["comment"] = pc.binary_join_element_wise(*parts, " ")
            writer.write_table(pa.table(cols, schema=schema))
            rows += n
    return rows
