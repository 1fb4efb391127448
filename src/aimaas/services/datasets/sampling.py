"""Bounded-memory summaries used by the column statistics: a uniform sample and a distinct-count sketch."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["DistinctSketch", "Reservoir", "hash_strings"]


class Reservoir:
    """A uniform sample of at most ``k`` values from a stream (Vitter's algorithm R, vectorised per batch).

    The ``i``-th value (1-based) enters the sample with probability ``k / i``, replacing a random slot. Work is
    two-phase so callers only materialise the few values that enter: :meth:`select` takes one uniform random
    key per value of the batch and returns the positions that enter, :meth:`store` takes those values.
    Memory is ``k`` values, nothing else.
    """

    def __init__(self, k: int, rng: np.random.Generator | None = None) -> None:
        self.k = k
        self.seen = 0
        self._rng = rng or np.random.Generator(np.random.PCG64(0))
        self._values: np.ndarray | None = None
        self._size = 0
        self._slots = np.empty(0, np.int64)

    def select(self, keys: np.ndarray) -> np.ndarray:
        """Positions (into this batch of ``len(keys)`` values) of the values that enter the sample."""
        n = len(keys)
        fill = min(max(self.k - self._size, 0), n)
        rest_keys = keys[fill:]
        # value j of the rest has 1-based stream index seen + fill + j + 1; it enters when key < k / index
        first = self.seen + fill + 1
        candidates = np.flatnonzero(rest_keys < self.k / first) if len(rest_keys) else np.empty(0, np.int64)
        enter = candidates[rest_keys[candidates] < self.k / (first + candidates)]
        slots = self._rng.integers(0, self.k, size=len(enter))
        if len(slots):  # when two values land in one slot the later one wins
            last = len(slots) - 1 - np.unique(slots[::-1], return_index=True)[1]
            last.sort()
            enter, slots = enter[last], slots[last]
        self._slots = np.concatenate([np.arange(self._size, self._size + fill), slots])
        self.seen += n
        return np.concatenate([np.arange(fill), enter + fill])

    def store(self, values: np.ndarray) -> None:
        """The values at the positions the last :meth:`select` returned, in that order."""
        if not len(self._slots):
            return
        if self._values is None:
            self._values = np.empty(self.k, dtype=values.dtype)
        elif values.dtype != self._values.dtype:
            common = np.promote_types(values.dtype, self._values.dtype)
            self._values, values = self._values.astype(common), values.astype(common)
        self._values[self._slots] = values
        self._size = min(self.k, self._size + int((self._slots >= self._size).sum()))

    @property
    def exact(self) -> bool:
        """True while every value offered is in the sample."""
        return self.seen <= self.k

    def sample(self) -> np.ndarray:
        """The sampled values (all of them when :attr:`exact`)."""
        if self._values is None:
            return np.empty(0)
        return self._values[: self._size]


_TABLE = np.random.default_rng(0x5EED).integers(0, 2**63, size=(24, 256), dtype=np.uint64) * np.uint64(2) + 1


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the bits of 64-bit hashes."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def hash_strings(array: pa.Array) -> np.ndarray:
    """Vectorised 64-bit hashes of the non-null strings of ``array``: tabulation hashing of the length and of
    24 bytes of each string (the first 8, the last 8 and 8 spread in between, so strings up to 24 bytes are
    hashed whole). Good enough for counting distinct values, not for security."""
    array = array.drop_null()
    if not isinstance(array, pa.Array):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    if len(array) == 0:
        return np.empty(0, np.uint64)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], np.int64)[array.offset: array.offset + len(array) + 1]
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None and buffers[2].size else np.zeros(1, np.uint8)
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    with np.errstate(over="ignore"):
        h = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    empty = lengths == 0
    last = len(data) - 1
    for j in range(_TABLE.shape[0]):
        if j < 8:  # the first 8 bytes
            offset = np.minimum(j, lengths - 1)
        elif j < 16:  # the last 8 bytes
            offset = np.maximum(lengths - (16 - j), 0)
        else:  # 8 bytes spread over the middle
            offset = np.clip(8 + (np.maximum(lengths - 16, 0) * (j - 16)) // 8, 0, np.maximum(lengths - 1, 0))
        byte = data[np.clip(starts + offset, 0, last)]
        byte[empty] = 0
        h ^= _TABLE[j][byte]
    return _mix(h)


class DistinctSketch:
    """K-minimum-values estimate of the number of distinct hashes (relative error about 1/sqrt(k))."""

    def __init__(self, k: int = 4096) -> None:
        self.k = k
        self._mins = np.empty(0, np.uint64)

    def add(self, hashes: np.ndarray) -> None:
        """Add 64-bit hashes."""
        if len(self._mins) >= self.k:
            hashes = hashes[hashes < self._mins[-1]]
        if len(hashes):
            self._mins = np.unique(np.concatenate([self._mins, hashes]))[: self.k]

    def estimate(self) -> int:
        """The estimated number of distinct values added."""
        if len(self._mins) < self.k:
            return len(self._mins)
        return int((self.k - 1) * (2.0**64) / float(self._mins[-1]))
