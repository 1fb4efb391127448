"""compute_split: determinism, sizes, stratification and errors."""

from __future__ import annotations

import numpy as np
import pytest

from aimaas.errors import InvalidInput
from aimaas.services.datasets.split import compute_split, split_counts


def test_deterministic_for_a_seed():
    a = compute_split(1_000, (0.7, 0.15, 0.15), 42, None)
    assert a.dtype == np.int8 and len(a) == 1_000
    assert np.array_equal(a, compute_split(1_000, (0.7, 0.15, 0.15), 42, None))
    assert not np.array_equal(a, compute_split(1_000, (0.7, 0.15, 0.15), 43, None))


@pytest.mark.parametrize(
    ("n", "fractions", "expected"),
    [
        (1_000, (0.7, 0.15, 0.15), {"train": 700, "validation": 150, "test": 150}),
        (10, (0.7, 0.15, 0.15), {"train": 7, "validation": 2, "test": 1}),
        (7, (0.8, 0.2, 0.0), {"train": 6, "validation": 1, "test": 0}),
        (3, (1 / 3, 1 / 3, 1 / 3), {"train": 1, "validation": 1, "test": 1}),
        (5, (1.0, 0.0, 0.0), {"train": 5, "validation": 0, "test": 0}),
    ],
)
def test_sizes_add_up(n, fractions, expected):
    assert split_counts(compute_split(n, fractions, 0, None)) == expected


def test_rows_are_shuffled():
    a = compute_split(10_000, (0.5, 0.25, 0.25), 1, None)
    assert 0.45 < (a[:5_000] == 0).mean() < 0.55


def test_stratified_proportions():
    rng = np.random.default_rng(5)
    labels = rng.choice(np.array(["cat", "dog", "bird", "fish"], dtype=object), 10_007, p=[0.55, 0.3, 0.1, 0.05])
    a = compute_split(len(labels), (0.7, 0.15, 0.15), 9, labels)
    counts = split_counts(a)
    assert sum(counts.values()) == len(labels)
    assert counts == split_counts(compute_split(len(labels), (0.7, 0.15, 0.15), 9, None))
    for label in ("cat", "dog", "bird", "fish"):
        mine = a[labels == label]
        size = len(mine)
        for split, fraction in enumerate((0.7, 0.15, 0.15)):
            assert abs((mine == split).sum() - size * fraction) <= 1.0 + 1e-9
    assert np.array_equal(a, compute_split(len(labels), (0.7, 0.15, 0.15), 9, labels))


def test_stratified_small_classes_appear_in_every_split():
    labels = np.array(["a"] * 50 + ["b"] * 3 + ["c"] * 4, dtype=object)
    a = compute_split(len(labels), (0.7, 0.15, 0.15), 0, labels)
    for label in "abc":
        assert set(a[labels == label].tolist()) == {0, 1, 2}
    assert sum(split_counts(a).values()) == len(labels)


def test_stratified_numeric_and_missing_labels():
    labels = np.array([0, 1] * 50 + [np.nan] * 10)
    a = compute_split(len(labels), (0.8, 0.1, 0.1), 3, labels)
    assert set(a[np.isnan(labels)].tolist()) == {0, 1, 2}
    assert (a[labels == 1] == 0).sum() == 40
    objects = np.array(["x", None, "x", None, "x", None] * 5, dtype=object)
    assert len(compute_split(len(objects), (0.6, 0.2, 0.2), 0, objects)) == 30


def test_class_too_small():
    labels = np.array(["a"] * 20 + ["rare"] * 2, dtype=object)
    with pytest.raises(InvalidInput) as err:
        compute_split(len(labels), (0.7, 0.15, 0.15), 0, labels)
    assert err.value.param == "stratify_by" and err.value.code == "class_too_small"
    assert "'rare'" in err.value.message and "stratify_by" in err.value.message
    # with only two splits two rows are enough
    assert len(compute_split(len(labels), (0.8, 0.2, 0.0), 0, labels)) == 22


@pytest.mark.parametrize("fractions", [(0.5, 0.2, 0.2), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1), (0.5, 0.5)])
def test_bad_fractions(fractions):
    with pytest.raises(InvalidInput) as err:
        compute_split(100, fractions, 0, None)  # type: ignore[arg-type]
    assert err.value.param == "fractions"


def test_too_few_rows_and_wrong_label_count():
    with pytest.raises(InvalidInput) as err:
        compute_split(2, (0.6, 0.2, 0.2), 0, None)
    assert err.value.code == "too_few_rows"
    with pytest.raises(InvalidInput) as err:
        compute_split(10, (0.6, 0.2, 0.2), 0, np.array(["a"] * 9, dtype=object))
    assert err.value.param == "stratify_by"


def test_large_split_is_fast_enough():
    labels = np.random.default_rng(0).integers(0, 1_000, 2_000_000)
    a = compute_split(len(labels), (0.8, 0.1, 0.1), 0, labels)
    assert split_counts(a) == {"train": 1_600_000, "validation": 200_000, "test": 200_000}
