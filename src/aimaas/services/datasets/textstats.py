"""Statistics of string columns: lengths, top values, distinct count, and the string/text decision.

A string column is reported as ``text`` (long free text) when its values are more than
:data:`~.stats.TEXT_MEAN_LENGTH` characters long on average, or when nearly every value is different and
values are several words long; otherwise it is ``string`` (categorical-ish), with ``unique`` and ``top``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .sampling import DistinctSketch, hash_strings
from .stats import MAX_DISTINCT, TEXT_MEAN_LENGTH, ColumnStats, json_value, to_numpy, top_values

__all__ = ["StringStats"]

_HEAVY = 1_000  # values kept as top-value candidates once a column has too many distinct values
_PER_BATCH = 100  # most frequent values of each batch offered as candidates
_SPACE_ROWS = 100_000


class StringStats(ColumnStats):
    """Statistics of a string column; ``forced`` fixes the reported type (``text``, ``image``, ``label``)."""

    kind = "string"

    def __init__(self, name: str, forced: str | None = None) -> None:
        super().__init__(name)
        self.forced = forced
        self.len_min: int | None = None
        self.len_max: int | None = None
        self.len_sum = 0
        self.spaces = 0
        self.space_rows = 0
        self.counts: Counter[Any] = Counter()
        self.sketch: DistinctSketch | None = None
        self.text_mode = False  # long, all-different values: stop counting values altogether

    def add(self, array: pa.Array | pa.ChunkedArray, keys: np.ndarray) -> None:
        super().add(array, keys)
        if array.null_count == len(array):
            return
        lengths = pc.utf8_length(array)
        mm = pc.min_max(lengths)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        self.len_min = lo if self.len_min is None else min(self.len_min, lo)
        self.len_max = hi if self.len_max is None else max(self.len_max, hi)
        self.len_sum += int(pc.sum(lengths).as_py())
        if self.space_rows < _SPACE_ROWS:  # words per value, from the first values only (it is costly)
            self.spaces += int(pc.sum(pc.count_substring(array, " ")).as_py() or 0)
            self.space_rows += len(array) - array.null_count
        if not self.text_mode:
            self._count_values(pc.value_counts(array))

    def _count_values(self, vc: pa.StructArray) -> None:
        values, counts = vc.field("values"), vc.field("counts")
        if self.sketch is None:
            if len(vc) <= MAX_DISTINCT:
                self.counts.update(dict(zip(values.to_pylist(), counts.to_pylist(), strict=True)))
                self.counts.pop(None, None)
                if len(self.counts) <= MAX_DISTINCT:
                    return
                self._overflow()
                return
            self._overflow()
        if self.sketch is None:  # switched to text mode
            return
        self.sketch.add(hash_strings(values))
        if len(vc) > _PER_BATCH:
            idx = np.argpartition(-to_numpy(counts), _PER_BATCH)[:_PER_BATCH]
            values, counts = values.take(pa.array(idx)), counts.take(pa.array(idx))
        self.counts.update(dict(zip(values.to_pylist(), counts.to_pylist(), strict=True)))
        self.counts.pop(None, None)
        if len(self.counts) > 4 * _HEAVY:
            self.counts = Counter(dict(self.counts.most_common(_HEAVY)))

    def _overflow(self) -> None:
        """Too many distinct values to count exactly: switch to a sketch and top-value candidates."""
        self.estimated = True
        if self.count and self.len_sum / self.count > TEXT_MEAN_LENGTH and self.forced != "label":
            self.text_mode = True
            self.counts = Counter()
            return
        self.sketch = DistinctSketch()
        self.sketch.add(hash_strings(pa.array(list(self.counts), pa.string())))
        self.counts = Counter(dict(self.counts.most_common(_HEAVY)))

    @property
    def unique(self) -> int | None:
        """Distinct non-missing values (an estimate once :attr:`estimated`; None for long free text)."""
        if self.text_mode:
            return None
        if self.sketch is not None:
            return max(self.sketch.estimate(), len(self.counts))
        return len(self.counts)

    def type_name(self) -> str:
        if self.forced:
            return self.forced
        if not self.count:
            return "string"
        mean = self.len_sum / self.count
        unique = self.unique
        distinctive = unique is None or unique > 0.5 * self.count
        if mean > TEXT_MEAN_LENGTH or (distinctive and self.count >= 20 and self.spaces / max(self.space_rows, 1) >= 2):
            return "text"
        return "string"

    def result(self) -> dict[str, Any]:
        out = super().result()
        kind = out["type"]
        if self.estimated:
            out["estimated"] = True
        if self.count:
            out["length"] = {"min": self.len_min, "mean": json_value(self.len_sum / self.count),
                             "max": self.len_max}
        if kind == "image":
            return out
        out["unique"] = self.unique
        if kind != "text":
            out["top"] = top_values(self.counts)
        if kind == "label":
            out["label_counts"] = {str(k): int(v) for k, v in sorted(self.counts.items())}
        return out
