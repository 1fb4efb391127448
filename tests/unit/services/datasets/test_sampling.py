"""Sampled statistics on bigger files, and the sampling building blocks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from aimaas.services.datasets.ingest import inspect_dataset
from aimaas.services.datasets.sampling import DistinctSketch, Reservoir, hash_strings
from aimaas.services.datasets.stats import SAMPLE_SIZE


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    rng = np.random.default_rng(3)
    n = 300_000
    values = {
        "normal": rng.normal(10, 3, n),
        "expo": rng.exponential(2.0, n),
        "count": rng.poisson(4, n),
        "grade": rng.choice(np.array(["A", "B", "C", "D"]), n, p=[0.1, 0.2, 0.3, 0.4]),
    }
    path = tmp_path_factory.mktemp("big") / "big.csv"
    pcsv.write_csv(pa.table(values), path)
    return path, values


def test_sampled_quantiles_are_close(big):
    path, values = big
    result = inspect_dataset(path, "csv")
    assert result.num_rows == 300_000 and result.stats["exact"] is False
    cols = {c["name"]: c for c in result.stats["columns"]}
    for name in ("normal", "expo", "count"):
        data = values[name].astype(float)
        entry = cols[name]
        assert entry["count"] == len(data)
        assert entry["mean"] == pytest.approx(data.mean(), rel=1e-9)  # exact even when sampling
        assert entry["std"] == pytest.approx(data.std(ddof=1), rel=1e-9)
        assert entry["min"] == pytest.approx(data.min()) and entry["max"] == pytest.approx(data.max())
        spread = np.quantile(data, 0.95) - np.quantile(data, 0.05)
        for q, got in entry["quantiles"].items():
            assert abs(got - np.quantile(data, float(q))) < 0.02 * spread, (name, q)
        hist = entry["histogram"]
        assert abs(sum(hist["counts"]) - len(data)) < 0.001 * len(data)  # scaled to the full count
        exact, _ = np.histogram(data, bins=np.asarray(hist["edges"]))
        big_bins = exact > 0.05 * len(data)
        assert np.allclose(np.asarray(hist["counts"])[big_bins], exact[big_bins], rtol=0.05)
    grade = cols["grade"]
    assert grade["unique"] == 4 and [t["value"] for t in grade["top"]] == ["D", "C", "B", "A"]
    assert result.target_suggestion == "grade"


def test_statistics_are_deterministic(big):
    path, _ = big
    assert inspect_dataset(path, "csv").stats == inspect_dataset(path, "csv").stats


def test_reservoir_is_uniform_and_bounded():
    rng = np.random.default_rng(0)
    k, n, trials = 1_000, 50_000, 100
    histograms = []
    for trial in range(trials):
        res = Reservoir(k, np.random.Generator(np.random.PCG64(trial)))
        stream = np.arange(n)
        for start in range(0, n, 3_000):
            chunk = stream[start: start + 3_000]
            res.store(chunk[res.select(rng.random(len(chunk)))])
        sample = res.sample()
        assert len(sample) == k and len(np.unique(sample)) == k and not res.exact
        histograms.append(np.histogram(sample, bins=10, range=(0, n))[0])
    mean = np.mean(histograms, axis=0)
    standard_error = np.sqrt(k * 0.1 * 0.9 / trials)
    assert np.all(np.abs(mean - k / 10) < 4 * standard_error), mean


def test_reservoir_keeps_everything_while_small():
    res = Reservoir(SAMPLE_SIZE)
    data = np.arange(1_000, dtype=float)
    res.store(data[res.select(np.random.default_rng(1).random(1_000))])
    assert res.exact and sorted(res.sample()) == list(data)


def test_distinct_sketch_estimate():
    sketch = DistinctSketch()
    for start in range(0, 200_000, 50_000):
        sketch.add(hash_strings(pa.array([f"id-{i}" for i in range(start, start + 50_000)] * 2)))
    assert sketch.estimate() == pytest.approx(200_000, rel=0.06)
    small = DistinctSketch()
    small.add(hash_strings(pa.array(["a", "b", "a", None, ""])))
    assert small.estimate() == 3


def test_hash_strings_tells_close_strings_apart():
    values = [f"{i:08d}" for i in range(100_000)] + ["x" * 40 + str(i) for i in range(1_000)]
    hashes = hash_strings(pa.array(values))
    assert len(np.unique(hashes)) == len(values)
