"""inspect_dataset on good files: schema, statistics (checked against pandas/numpy) and target suggestion."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aimaas.services.datasets.ingest import inspect_dataset


def _columns(result):
    return {c["name"]: c for c in result.stats["columns"]}


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 500
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50_000, 12_000, n).round(2)),
            "city": rng.choice(["Paris", "Lyon", "Nice", "Lille"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "member": rng.random(n) < 0.3,
            "joined": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "review": [f"review number {i} " + "very long words " * 5 for i in range(n)],
            "churn": rng.choice(["yes", "no"], n),
        }
    )


def _check_numeric(entry: dict, values: pd.Series) -> None:
    present = values.dropna()
    assert entry["count"] == len(present)
    assert entry["missing"] == values.isna().sum()
    assert entry["mean"] == pytest.approx(present.mean(), rel=1e-9)
    assert entry["std"] == pytest.approx(present.std(ddof=1), rel=1e-9)
    assert entry["min"] == pytest.approx(present.min())
    assert entry["max"] == pytest.approx(present.max())
    expected = np.quantile(present.to_numpy(dtype=float), [0.05, 0.25, 0.5, 0.75, 0.95])
    assert [entry["quantiles"][k] for k in ("0.05", "0.25", "0.5", "0.75", "0.95")] == pytest.approx(expected)
    hist = entry["histogram"]
    assert sum(hist["counts"]) == len(present)
    assert len(hist["edges"]) == len(hist["counts"]) + 1
    counts, _ = np.histogram(present.to_numpy(dtype=float), bins=np.asarray(hist["edges"]))
    assert hist["counts"] == counts.tolist()


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_tabular_stats_match_pandas(tmp_path, frame, fmt):
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    result = inspect_dataset(path, fmt)
    assert result.format == fmt and result.num_rows == len(frame)
    assert result.stats["num_rows"] == len(frame) and result.stats["exact"] is True
    cols = _columns(result)
    assert list(cols) == list(frame.columns)
    types = {c["name"]: c["type"] for c in result.schema}
    assert types["age"] == "integer" and types["income"] == "float" and types["member"] == "boolean"
    assert types["city"] == "string" and types["review"] == "text" and types["churn"] == "string"
    assert types["joined"] == ("datetime" if fmt in ("csv", "tsv", "jsonl") else "string")
    _check_numeric(cols["age"], frame["age"])
    _check_numeric(cols["income"], frame["income"])
    assert {c["name"]: c["missing"] for c in result.schema}["income"] == frame["income"].isna().sum()
    city = cols["city"]
    expected_top = frame["city"].value_counts()
    assert city["unique"] == 4
    assert [t["value"] for t in city["top"]] == expected_top.index.tolist()
    assert [t["count"] for t in city["top"]] == expected_top.tolist()
    member = cols["member"]
    assert {t["value"]: t["count"] for t in member["top"]} == frame["member"].value_counts().to_dict()
    lengths = frame["review"].str.len()
    assert cols["review"]["length"] == {"min": lengths.min(), "mean": pytest.approx(lengths.mean()),
                                        "max": lengths.max()}
    assert result.target_suggestion == "churn"
    json.dumps(result.stats)  # JSON-safe


def test_datetime_column(write):
    result = inspect_dataset(write("d.csv", "when,x\n2024-01-02T03:04:05,1\n2023-05-06T00:00:00,2\n,3\n"), "csv")
    when = _columns(result)["when"]
    assert when["type"] == "datetime" and when["missing"] == 1 and when["count"] == 2
    assert when["min"] == "2023-05-06T00:00:00" and when["max"] == "2024-01-02T03:04:05"


def test_csv_dialect_details(write):
    content = '\ufeffid;name;score\n1;"Smith; John";3.5\n\n2;"multi\nline";4\n3;;\n'
    result = inspect_dataset(write("semi.csv", content.encode("utf-8")), "csv")
    assert result.num_rows == 3
    assert [c["name"] for c in result.schema] == ["id", "name", "score"]  # BOM dropped, ';' detected
    cols = _columns(result)
    assert cols["name"]["missing"] == 1 and cols["score"]["missing"] == 1
    assert result.target_suggestion == "score"


def test_type_widening_after_the_first_block(write):
    rows = "".join(f"{i},{i % 3},x{i % 5}\n" for i in range(120_000))  # > 1 MiB of integers first
    content = "a,b,c\n" + rows + "2.5,word,x1\n"
    result = inspect_dataset(write("wide.csv", content), "csv")
    cols = _columns(result)
    assert result.num_rows == 120_001
    assert cols["a"]["type"] == "float" and cols["a"]["max"] == 119_999
    assert cols["b"]["type"] == "string" and cols["b"]["unique"] == 4
    assert cols["a"]["mean"] == pytest.approx((sum(range(120_000)) + 2.5) / 120_001)


def test_row_longer_than_a_block(write):
    long_text = "word " * 300_000  # 1.5 MB in one cell
    result = inspect_dataset(write("long.csv", f'id,body\n1,"{long_text}"\n2,short\n'), "csv")
    assert result.num_rows == 2
    assert _columns(result)["body"]["length"]["max"] == len(long_text)


def test_jsonl_fields_that_appear_late_or_change_type(write):
    lines = [{"a": i, "b": "x"} for i in range(15_000)] + [{"a": "oops", "c": [1, 2]}, {"a": 1.5, "c": {"k": 1}}]
    content = "\n".join(json.dumps(x) for x in lines) + "\n\n"
    result = inspect_dataset(write("late.jsonl", content), "jsonl")
    cols = _columns(result)
    assert result.num_rows == 15_002
    assert cols["a"]["type"] == "string" and cols["a"]["count"] == 15_002
    assert cols["b"]["missing"] == 2
    assert cols["c"]["type"] == "other" and cols["c"]["missing"] == 15_000 and cols["c"]["count"] == 2


def test_jsonl_int_then_float_is_float(write):
    content = "\n".join(json.dumps({"v": i}) for i in range(20_000)) + '\n{"v": 0.5}\n'
    cols = _columns(inspect_dataset(write("f.jsonl", content), "jsonl"))
    assert cols["v"]["type"] == "float" and cols["v"]["min"] == 0 and cols["v"]["count"] == 20_001


def test_parquet_with_nan_inf_dictionary_and_decimal(tmp_path):
    from decimal import Decimal

    table = pa.table(
        {
            "x": pa.array([1.0, float("nan"), float("inf"), None, 3.0]),
            "cat": pa.array(["a", "b", "a", None, "a"]).dictionary_encode(),
            "price": pa.array([Decimal("1.50"), Decimal("2.50"), None, None, Decimal("3.00")]),
            "nested": pa.array([[1], [2, 3], None, [], [4]]),
        }
    )
    path = tmp_path / "x.parquet"
    pq.write_table(table, path)
    cols = _columns(inspect_dataset(path, "parquet"))
    x = cols["x"]
    assert x["missing"] == 2 and x["count"] == 3 and x["infinite"] == 1
    assert x["mean"] == 2.0 and x["max"] == 3.0
    assert cols["cat"]["type"] == "string" and cols["cat"]["top"][0] == {"value": "a", "count": 3}
    assert cols["price"]["type"] == "float" and cols["price"]["mean"] == pytest.approx(7 / 3)
    assert cols["nested"]["type"] == "other" and cols["nested"]["missing"] == 1


def test_all_missing_column(write):
    cols = _columns(inspect_dataset(write("m.csv", "a,b\n1,\n2,\n"), "csv"))
    assert cols["b"] == {"name": "b", "type": "other", "count": 0, "missing": 2}


@pytest.mark.parametrize(
    ("header", "last_values", "expected"),
    [
        ("x,Target,z", None, "Target"),
        ("x,y,z", None, "y"),
        ("x,house_label,z", None, "house_label"),
        ("feature,other,kind", ["a", "b"], "kind"),
        ("feature,other,amount", None, None),
    ],
)
def test_target_suggestion(write, header, last_values, expected):
    rows = []
    for i in range(40):
        last = last_values[i % 2] if last_values else str(i * 1.5)
        rows.append(f"{i},{i % 7}.5,{last}")
    result = inspect_dataset(write("t.csv", header + "\n" + "\n".join(rows) + "\n"), "csv")
    assert result.target_suggestion == expected


def test_text_format_one_document_per_line(write):
    content = "first document\r\n\n   \nsecond one is longer\nthird\n"
    result = inspect_dataset(write("docs.txt", content), "text")
    assert result.num_rows == 3  # blank lines are skipped
    assert result.schema == [{"name": "text", "type": "text", "missing": 0}]
    length = result.stats["columns"][0]["length"]
    assert length == {"min": 5, "mean": pytest.approx((14 + 20 + 5) / 3), "max": 20}
    assert result.target_suggestion is None


def test_high_cardinality_strings_are_estimated(write):
    rows = "".join(f"user_{i:07d},{i % 2}\n" for i in range(30_000))
    result = inspect_dataset(write("ids.csv", "id,flag\n" + rows), "csv")
    ident = _columns(result)["id"]
    assert ident["type"] == "string" and ident["estimated"] is True
    assert math.isclose(ident["unique"], 30_000, rel_tol=0.1)
    assert result.target_suggestion == "flag"
