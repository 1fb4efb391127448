"""detect_format: hint, extension and magic bytes."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aimaas.errors import InvalidInput, UnsupportedMediaType
from aimaas.services.datasets.formats import FORMATS, detect_format

from .conftest import PNG


def _parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2]}), buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("data.csv", "csv"),
        ("DATA.CSV", "csv"),
        ("data.tsv", "tsv"),
        ("data.tab", "tsv"),
        ("data.jsonl", "jsonl"),
        ("data.ndjson", "jsonl"),
        ("notes.txt", "text"),
    ],
)
def test_text_formats_by_extension(write, filename, expected):
    path = write("upload", "a,b\n1,2\n" if expected != "jsonl" else '{"a": 1}\n')
    assert detect_format(path, filename, None) == expected


@pytest.mark.parametrize("filename", ["data.parquet", "data.pq"])
def test_parquet_by_extension(write, filename):
    assert detect_format(write("upload", _parquet_bytes()), filename, None) == "parquet"


def test_zip_kinds(make_zip):
    text = make_zip("t.zip", {"a.txt": "hello", "docs/b.md": "# hi"})
    images = make_zip("i.zip", {"cats/1.png": PNG, "dogs/2.jpg": PNG})
    assert detect_format(text, "t.zip", None) == "text_zip"
    assert detect_format(images, "i.zip", None) == "image_zip"


def test_no_extension_sniffs_content(write, make_zip):
    assert detect_format(write("a", "x,y\n1,2\n"), "data", None) == "csv"
    assert detect_format(write("b", '{"x": 1}\n'), "data", None) == "jsonl"
    assert detect_format(write("c", "x\ty\n1\t2\n"), "data", None) == "tsv"
    assert detect_format(write("d", "just some words\nmore words\n"), "data", None) == "text"
    assert detect_format(write("e", _parquet_bytes()), "data", None) == "parquet"
    assert detect_format(make_zip("f.zip", {"a.txt": "x"}), "data", None) == "text_zip"


def test_hint_wins_and_is_validated(write):
    path = write("upload", "a\tb\n1\t2\n")
    assert detect_format(path, "whatever.csv", "tsv") == "tsv"
    assert detect_format(path, "x.csv", " TEXT ") == "text"
    with pytest.raises(UnsupportedMediaType) as err:
        detect_format(path, "x.csv", "xlsx")
    assert err.value.code == "unsupported_format" and err.value.param == "file"
    for fmt in FORMATS:
        assert fmt in err.value.message


def test_hint_must_fit_the_bytes(write):
    path = write("upload", _parquet_bytes())
    with pytest.raises(UnsupportedMediaType) as err:
        detect_format(path, "x.csv", "csv")
    assert err.value.code == "format_mismatch" and "Parquet" in err.value.message


def test_csv_that_is_really_a_zip_or_parquet(write, make_zip):
    zipped = make_zip("z.zip", {"a.txt": "x"})
    with pytest.raises(UnsupportedMediaType) as err:
        detect_format(zipped, "data.csv", None)
    assert err.value.code == "format_mismatch" and "zip" in err.value.message
    with pytest.raises(UnsupportedMediaType) as err:
        detect_format(write("p", _parquet_bytes()), "data.csv", None)
    assert "Parquet" in err.value.message
    with pytest.raises(UnsupportedMediaType):
        detect_format(write("q", "a,b\n1,2\n"), "data.parquet", None)
    with pytest.raises(UnsupportedMediaType):
        detect_format(write("r", "a,b\n1,2\n"), "data.zip", None)


@pytest.mark.parametrize(
    ("content", "filename", "needle"),
    [
        (b"\x1f\x8b\x08\x00rest", "data.csv", "gzip"),
        (b"%PDF-1.7 ...", "doc.csv", "PDF"),
        (PNG, "cat.png", "image"),
        (b"a,b\n1,2\n", "data.xlsx", ".xlsx"),
        (b'[{"a": 1}]', "data.json", "JSON Lines"),
    ],
)
def test_unsupported_files_say_what_is_supported(write, content, filename, needle):
    with pytest.raises(UnsupportedMediaType) as err:
        detect_format(write("upload", content), filename, None)
    assert needle in err.value.message
    assert "Supported:" in err.value.message and "Parquet" in err.value.message
    assert err.value.http_status == 415


def test_zip_with_other_files_is_unsupported(make_zip):
    with pytest.raises(UnsupportedMediaType) as err:
        detect_format(make_zip("x.zip", {"data.csv": "a,b\n"}), "x.zip", None)
    assert "data.csv" in err.value.message
    with pytest.raises(UnsupportedMediaType) as err:
        detect_format(make_zip("y.zip", {"[Content_Types].xml": "<x/>", "xl/a.xml": "<x/>"}), "book.zip", None)
    assert "Office" in err.value.message


def test_empty_file(write):
    with pytest.raises(InvalidInput) as err:
        detect_format(write("upload", b""), "data.csv", None)
    assert err.value.code == "empty_file" and "0 bytes" in err.value.message
