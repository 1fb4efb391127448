"""read_preview paging and read_column."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aimaas.errors import InvalidInput
from aimaas.services.datasets.preview import MAX_TEXT, json_safe, read_column, read_preview

from .conftest import PNG

N = 150_000  # several batches / row groups


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("preview")
    ids = np.arange(N)
    table = pa.table({"id": ids, "label": np.where(ids % 3 == 0, "a", "b"), "x": ids * 0.5})
    csv = root / "d.csv"
    csv.write_text("id,label,x\n" + "".join(f"{i},{'a' if i % 3 == 0 else 'b'},{i * 0.5}\n" for i in ids))
    parquet = root / "d.parquet"
    pq.write_table(table, parquet, row_group_size=20_000)
    jsonl = root / "d.jsonl"
    jsonl.write_text("".join(json.dumps({"id": int(i), "label": "a" if i % 3 == 0 else "b"}) + "\n" for i in ids))
    text = root / "d.txt"
    text.write_text("".join(f"line {i}\n\n" for i in range(N)))
    return {"csv": csv, "parquet": parquet, "jsonl": jsonl, "text": text}


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("offset", [0, 5, 70_000, N - 3])
def test_tabular_pages(files, fmt, offset):
    columns, rows = read_preview(files[fmt], fmt, offset, 10)
    assert columns[:2] == ["id", "label"]
    expected = list(range(offset, min(offset + 10, N)))
    assert [r["id"] for r in rows] == expected
    assert [r["label"] for r in rows] == ["a" if i % 3 == 0 else "b" for i in expected]


def test_pages_past_the_end_and_empty_pages(files):
    assert read_preview(files["csv"], "csv", N + 10, 5) == (["id", "label", "x"], [])
    assert read_preview(files["parquet"], "parquet", 3, 0)[1] == []


def test_text_pages(files):
    columns, rows = read_preview(files["text"], "text", 100_000, 2)
    assert columns == ["text"] and rows == [{"text": "line 100000"}, {"text": "line 100001"}]


def test_bad_offsets(files):
    for offset, limit, param in ((-1, 5, "offset"), (0, -2, "limit")):
        with pytest.raises(InvalidInput) as err:
            read_preview(files["csv"], "csv", offset, limit)
        assert err.value.param == param


def test_zip_pages(make_zip):
    texts = make_zip("t.zip", {f"doc{i}.txt": f"text {i}" for i in range(5)})
    assert read_preview(texts, "text_zip", 3, 10) == (
        ["path", "text"], [{"path": "doc3.txt", "text": "text 3"}, {"path": "doc4.txt", "text": "text 4"}])
    images = make_zip("i.zip", {"cats/1.png": PNG, "dogs/2.png": PNG})
    assert read_preview(images, "image_zip", 1, 5) == (["path", "label"], [{"path": "dogs/2.png", "label": "dogs"}])


def test_values_are_json_safe(tmp_path):
    import datetime as dt
    from decimal import Decimal

    table = pa.table({
        "f": [float("nan"), float("inf"), 1.5],
        "t": [dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(2020, 1, 1)],
        "d": [dt.date(2024, 1, 2)] * 3,
        "long": ["x" * 5_000, "short", None],
        "dec": [Decimal("1.25")] * 3,
        "nested": [{"a": [1.0, float("nan")]}, None, {"a": []}],
        "raw": [b"\x00\x01", b"", None],
    })
    path = tmp_path / "v.parquet"
    pq.write_table(table, path)
    _, rows = read_preview(path, "parquet", 0, 3)
    json.dumps(rows, allow_nan=False)
    assert rows[0]["f"] is None and rows[1]["f"] is None and rows[2]["f"] == 1.5
    assert rows[0]["t"] == "2024-01-02T03:04:05" and rows[0]["d"] == "2024-01-02"
    assert len(rows[0]["long"]) == MAX_TEXT and rows[0]["long"].endswith("…")
    assert rows[0]["dec"] == 1.25 and rows[0]["nested"] == {"a": [1.0, None]}
    assert rows[0]["raw"].startswith("<2 bytes")
    assert json_safe(np.float32(2.5)) == 2.5 and math.isnan(float("nan"))


def test_jsonl_preview_keeps_nested_values_and_unions_keys(write):
    path = write("n.jsonl", '{"a": 1, "b": {"x": [1, 2]}}\n\n{"a": 2, "c": "z"}\n')
    assert read_preview(path, "jsonl", 0, 10) == (
        ["a", "b", "c"], [{"a": 1, "b": {"x": [1, 2]}, "c": None}, {"a": 2, "b": None, "c": "z"}])


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_read_column(files, fmt):
    labels = read_column(files[fmt], fmt, "label")
    assert labels.dtype == object and len(labels) == N
    assert (labels == np.where(np.arange(N) % 3 == 0, "a", "b")).all()
    ids = read_column(files[fmt], fmt, "id")
    assert ids.dtype.kind == "i" and (ids == np.arange(N)).all()


def test_read_column_with_missing_values(write):
    path = write("m.csv", "a,b,c\n1,x,true\n,,\n3,y,false\n")
    assert np.isnan(read_column(path, "csv", "a")).tolist() == [False, True, False]
    assert read_column(path, "csv", "b").tolist() == ["x", None, "y"]
    assert read_column(path, "csv", "c").tolist() == [True, None, False]


def test_read_column_of_archives(make_zip):
    images = make_zip("i.zip", {"cats/1.png": PNG, "dogs/2.png": PNG, "dogs/3.png": PNG})
    assert read_column(images, "image_zip", "label").tolist() == ["cats", "dogs", "dogs"]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "text"])
def test_read_unknown_column(files, fmt):
    with pytest.raises(InvalidInput) as err:
        read_column(files[fmt], fmt, "nope")
    assert err.value.code == "unknown_column" and err.value.param == "stratify_by"
    assert "'nope'" in err.value.message
    assert ("'id'" if fmt != "text" else "'text'") in err.value.message


def test_csv_preview_after_a_type_change(write):
    rows = "".join(f"{i},x\n" for i in range(100_000))
    path = write("w.csv", "n,s\n" + rows + "oops,y\n")
    columns, page = read_preview(path, "csv", 99_999, 5)
    assert columns == ["n", "s"] and page == [{"n": "99999", "s": "x"}, {"n": "oops", "s": "y"}]
    assert read_preview(path, "csv", 0, 1)[1] == [{"n": 0, "s": "x"}]  # early pages keep their numbers
