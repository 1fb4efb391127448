"""Deterministic train/validation/test assignment of a dataset's rows, optionally stratified by a label.

The same ``(num_rows, fractions, seed, labels)`` always gives the same assignment (numpy's PCG64 generator).
Split sizes are the fractions of the row count rounded by largest remainder, so they add up to the row count.
With labels, every class is split in the same proportions (its own rounding, kept consistent with the overall
sizes) and every class gets at least one row in every split whose fraction is above zero.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from aimaas.errors import InvalidInput

__all__ = ["SPLIT_NAMES", "compute_split", "split_counts"]

SPLIT_NAMES = ("train", "validation", "test")


def _largest_remainder(total: int, fractions: np.ndarray) -> np.ndarray:
    quotas = total * fractions
    counts = np.floor(quotas).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        order = np.argsort(-(quotas - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def _allocate(sizes: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Rows per (class, split): each row sums to its class size, columns sum to the overall split sizes
    (up to the at-least-one-row-per-split rule), every cell within one row of its exact quota."""
    quotas = sizes[:, None] * fractions[None, :]
    cells = np.floor(quotas).astype(np.int64)
    row_short = sizes - cells.sum(axis=1)
    col_short = _largest_remainder(int(sizes.sum()), fractions) - cells.sum(axis=0)
    remainders = (quotas - cells).ravel()
    for flat in np.argsort(-remainders, kind="stable").tolist():
        c, k = divmod(flat, len(fractions))
        if row_short[c] > 0 and col_short[k] > 0 and remainders[flat] > 0:
            cells[c, k] += 1
            row_short[c] -= 1
            col_short[k] -= 1
    for c in np.flatnonzero(row_short > 0).tolist():  # leftovers the greedy pass could not place
        for k in np.argsort(-col_short, kind="stable").tolist():
            if row_short[c] == 0:
                break
            if fractions[k] > 0:
                take = int(row_short[c]) if col_short[k] <= 0 else min(int(row_short[c]), int(col_short[k]))
                cells[c, k] += take
                row_short[c] -= take
                col_short[k] -= take
    used = fractions > 0
    for c in range(len(sizes)):  # every class in every non-empty split
        for k in np.flatnonzero(used & (cells[c] == 0)).tolist():
            donor = int(np.argmax(cells[c]))
            cells[c, donor] -= 1
            cells[c, k] += 1
    return cells


def _codes(labels: np.ndarray) -> tuple[np.ndarray, list[object]]:
    """Class index of every row (missing labels form their own class) and the class values."""
    try:
        array = pa.array(labels, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        array = pa.array([None if v is None else str(v) for v in labels], pa.string())
    encoded = array.dictionary_encode()
    values: list[object] = encoded.dictionary.to_pylist()
    indices = encoded.indices.fill_null(len(values))
    codes = np.frombuffer(indices.buffers()[1], dtype=np.dtype(indices.type.to_pandas_dtype()),
                          count=len(indices), offset=indices.offset * indices.type.byte_width).astype(np.int64)
    if encoded.null_count:
        values.append(None)
    return codes, values


def _check(num_rows: int, fractions: tuple[float, float, float], labels: np.ndarray | None) -> np.ndarray:
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or not math.isclose(float(f.sum()), 1.0, abs_tol=1e-6) or f[0] <= 0:
        raise InvalidInput("train, validation and test must be non-negative, train above zero, and add up to 1 "
                           f"(got {', '.join(f'{x:g}' for x in f)}).", code="invalid_fractions", param="fractions")
    needed = int((f > 0).sum())
    if num_rows < needed:
        raise InvalidInput(f"The dataset has {num_rows} row(s); splitting it {needed} ways needs at least "
                           f"{needed}. Upload more rows or set the unused fractions to 0.", code="too_few_rows",
                           param="fractions")
    if labels is not None and len(labels) != num_rows:
        raise InvalidInput(f"stratify_by has {len(labels)} values for {num_rows} rows.", code="invalid_labels",
                           param="stratify_by")
    return f / f.sum()


def compute_split(num_rows: int, fractions: tuple[float, float, float], seed: int,
                  labels: np.ndarray | None = None) -> np.ndarray:
    """The split of every row as an ``int8`` array: 0 train, 1 validation, 2 test.

    Deterministic for a ``seed``; with ``labels`` (one per row, e.g. from ``read_column``) each class is split
    in the same proportions. Raises ``InvalidInput`` (``param="stratify_by"``, code ``class_too_small``) when
    a class has fewer rows than there are non-empty splits, or (``param="fractions"``) for bad fractions or
    too few rows.
    """
    f = _check(num_rows, fractions, labels)
    rng = np.random.Generator(np.random.PCG64(seed))
    values: list[object] = [None]
    if labels is None:
        codes = np.zeros(num_rows, np.int64)
    else:
        codes, values = _codes(labels)
    sizes = np.bincount(codes, minlength=len(values))
    needed = int((f > 0).sum())
    if labels is not None and (sizes < needed).any():
        small = int(np.flatnonzero(sizes < needed)[0])
        raise InvalidInput(
            f"stratify_by: class {values[small]!r} has only {sizes[small]} row(s), but stratifying into {needed} "
            f"splits needs at least {needed} per class. Merge rare classes, choose another column, or split "
            "without stratify_by.", code="class_too_small", param="stratify_by")
    cells = _allocate(sizes, f)
    order = rng.permutation(num_rows)
    grouped = order[np.argsort(codes[order], kind="stable")]  # rows by class, shuffled within each class
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(num_rows) - np.repeat(starts, sizes)  # position within its class
    cls = np.repeat(np.arange(len(sizes)), sizes)
    bounds = np.cumsum(cells, axis=1)
    split = (rank >= bounds[cls, 0]).astype(np.int8) + (rank >= bounds[cls, 1]).astype(np.int8)
    assignment = np.empty(num_rows, np.int8)
    assignment[grouped] = split
    return assignment


def split_counts(assignment: np.ndarray) -> dict[str, int]:
    """Rows per split: ``{"train": n, "validation": n, "test": n}``."""
    counts = np.bincount(np.asarray(assignment, dtype=np.int64), minlength=3)
    return {name: int(counts[i]) for i, name in enumerate(SPLIT_NAMES)}
