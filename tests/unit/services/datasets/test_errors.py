"""inspect_dataset on bad files: each error has its class, code, param and a message that says what to fix."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aimaas.errors import InvalidInput
from aimaas.services.datasets.ingest import inspect_dataset


def _fails(path, fmt, code):
    with pytest.raises(InvalidInput) as err:
        inspect_dataset(path, fmt)
    assert err.value.code == code, err.value.message
    assert err.value.param == "file"
    return err.value.message


@pytest.mark.parametrize(
    ("fmt", "content", "needle"),
    [
        ("csv", "", "no header"),
        ("csv", "\n\n", "no header"),
        ("csv", "a,b,c\n", "no rows"),
        ("tsv", "a\tb\n\n", "no rows"),
        ("jsonl", "\n  \n", "no JSON objects"),
        ("text", "\n \n\n", "no text"),
    ],
)
def test_empty_files(write, fmt, content, needle):
    assert needle in _fails(write(f"e.{fmt}", content), fmt, "empty_file")


def test_parquet_without_rows(tmp_path):
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), path)
    assert "no rows" in _fails(path, "parquet", "empty_file")


@pytest.mark.parametrize(
    ("content", "line", "found"),
    [
        ("a,b,c\n1,2,3\n4,5\n", 3, 2),
        ("a,b\n1,2\n\n\n3,4,5\n", 5, 3),  # blank lines still count as lines
        ('a,b\n"multi\nline",2\n3,4\n5,6,7\n', 5, 3),  # a quoted newline spans two lines
    ],
)
def test_malformed_csv_names_the_line(write, content, line, found):
    message = _fails(write("bad.csv", content), "csv", "malformed_csv")
    assert f"Line {line} " in message and f"has {found} fields" in message and "header has" in message


def test_malformed_csv_far_into_the_file(write):
    content = "a,b\n" + "1,2\n" * 200_000 + "1,2,3\n"
    message = _fails(write("late.csv", content), "csv", "malformed_csv")
    assert "Line 200002 has 3 fields but the header has 2 columns" in message


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("a,a\n1,2\n", "'a' appears more than once"),
        ("a,,c\n1,2,3\n", "Column 2 has no name"),
    ],
)
def test_bad_column_names(write, content, needle):
    assert needle in _fails(write("h.csv", content), "csv", "invalid_columns")


def test_bad_parquet_column_names(tmp_path):
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"]), path)
    assert "'x'" in _fails(path, "parquet", "invalid_columns")


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        ('{"a": 1}\n{"a": 2,}\n', 2, "not valid JSON"),
        ('{"a": 1}\n\n{"a": \n', 3, "not valid JSON"),
        ('{"a": 1}\n[1, 2]\n', 2, "array, not an object"),
        ('{"a": 1}\n"text"\n', 2, "string, not an object"),
        ('{"a": 1}\n{"": 3}\n', 2, "empty name"),
    ],
)
def test_malformed_jsonl_names_the_line(write, content, line, needle):
    with pytest.raises(InvalidInput) as err:
        inspect_dataset(write("bad.jsonl", content), "jsonl")
    assert err.value.code in ("malformed_jsonl", "invalid_columns")
    assert f"Line {line} " in err.value.message and needle in err.value.message


def test_malformed_jsonl_reports_the_json_error(write):
    message = _fails(write("bad.jsonl", '{"a": 1}\n{"a": tru}\n'), "jsonl", "malformed_jsonl")
    assert "Line 2" in message and "column" in message


LATIN = "name,city\nJosé,Zürich\nFrançois,Genève\nRenée,Besançon\n" * 20


@pytest.mark.parametrize("fmt", ["csv", "text"])
def test_not_utf8_names_the_encoding(write, fmt):
    message = _fails(write("latin.csv", LATIN.encode("cp1252")), fmt, "bad_encoding")
    assert "line 2" in message and "re-save it as utf-8" in message.lower()
    assert "looks like" in message and ("Windows-125" in message or "Latin" in message)


def test_not_utf8_far_into_a_csv(write):
    content = b"a,b\n" + b"x,1\n" * 300_000 + "é,2\n".encode("latin-1") + b"y,3\n"
    message = _fails(write("late.csv", content), "csv", "bad_encoding")
    assert "line 300002" in message


def test_not_utf8_in_a_numeric_looking_column(write):
    content = b"a,b\n" + b"1,1\n" * 200_000 + "\xe9,2\n".encode("latin-1")
    assert "line 200002" in _fails(write("num.csv", content), "csv", "bad_encoding")


def test_not_utf8_jsonl(write):
    content = '{"a": "ok"}\n{"a": "café"}\n'.encode("latin-1")
    assert "line 2" in _fails(write("l.jsonl", content), "jsonl", "bad_encoding")


def test_utf16_is_refused_but_utf8_bom_is_fine(write):
    assert "UTF-16" in _fails(write("u16.csv", "a,b\n1,2\n".encode("utf-16")), "csv", "bad_encoding")
    result = inspect_dataset(write("bom.csv", "\ufeffa,b\n1,2\n".encode()), "csv")
    assert [c["name"] for c in result.schema] == ["a", "b"]


def test_corrupt_parquet(tmp_path):
    buf = io.BytesIO()
    pq.write_table(pa.table({"a": list(range(1000)), "b": [str(i) for i in range(1000)]}), buf)
    data = buf.getvalue()
    truncated = tmp_path / "t.parquet"
    truncated.write_bytes(data[: len(data) // 2])
    assert "corrupt" in _fails(truncated, "parquet", "malformed_parquet")
    garbled = tmp_path / "g.parquet"
    garbled.write_bytes(data[:4] + b"\x00" * (len(data) - 8) + data[-4:])
    _fails(garbled, "parquet", "malformed_parquet")


def test_unknown_format_is_unsupported(write):
    from aimaas.errors import UnsupportedMediaType

    with pytest.raises(UnsupportedMediaType) as err:
        inspect_dataset(write("x.csv", "a\n1\n"), "xlsx")
    assert err.value.code == "unsupported_format" and "csv" in err.value.message


def test_duplicate_tsv_header(write):
    assert "'b'" in _fails(write("d.tsv", "a\tb\tb\n1\t2\t3\n"), "tsv", "invalid_columns")
