"""Validate a safetensors file from a stream of its bytes, without loading a tensor.

The format: an 8-byte little-endian header length ``N``, ``N`` bytes of JSON (``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}``), then the data buffer. We check what the
safetensors library checks before it maps a file (known dtypes, ``end - begin`` equal to the shape's byte
size, tensors tiling the buffer with no gap or overlap, the buffer ending where the file ends), so that a file
accepted here loads later, and we count parameters on the way. Memory is bounded by the header cap.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aimaas.errors import InvalidInput

from ._common import file_error, quote

__all__ = ["DTYPE_BITS", "MAX_HEADER_BYTES", "SafetensorsSummary", "check_safetensors"]

#: The safetensors library refuses headers above 100 MB; a real one (a few thousand tensors) is well under 1 MB.
MAX_HEADER_BYTES = 100_000_000
#: Bits per element of every dtype the safetensors library knows (F4/F6 are packed sub-byte formats).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64,
    "I64": 64, "U64": 64, "F64": 64,
}


@dataclass(frozen=True, slots=True)
class SafetensorsSummary:
    """What one valid safetensors file holds: tensor names, parameters per dtype and its ``__metadata__``."""

    tensors: frozenset[str]
    parameters: int
    dtypes: dict[str, int]
    metadata: dict[str, str] = field(default_factory=dict)


def _bad(name: str, problem: str) -> InvalidInput:
    return file_error(f"{quote(name)} is not a valid safetensors file: {problem}. Re-save the weights with the "
                      "safetensors library (save_pretrained(..., safe_serialization=True)).", "invalid_safetensors")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:80]!r}")
        out[key] = value
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_header(name: str, raw: bytes) -> dict[str, Any]:
    if not raw.lstrip(b" ").startswith(b"{"):
        raise _bad(name, "the header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(name, f"the header is not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(header, dict):
        raise _bad(name, "the header is not a JSON object")
    return header


def _tensor_entries(name: str, header: dict[str, Any]) -> tuple[list[tuple[int, int, str]], Counter[str], int]:
    """``[(begin, end, tensor)]``, parameters per dtype and the total, after checking every entry."""
    spans: list[tuple[int, int, str]] = []
    dtypes: Counter[str] = Counter()
    for tensor, entry in header.items():
        if tensor == "__metadata__":
            continue
        where = f"tensor {quote(tensor)}"
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise _bad(name, f"{where} needs 'dtype', 'shape' and 'data_offsets'")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPE_BITS:
            raise _bad(name, f"{where} has unknown dtype {str(dtype)[:20]!r}")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise _bad(name, f"{where} has a shape that is not a list of non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise _bad(name, f"{where} has data_offsets that are not [begin, end] with 0 <= begin <= end")
        numel = 1
        for dim in shape:
            numel *= dim
        bits = numel * DTYPE_BITS[dtype]
        if bits % 8 or offsets[1] - offsets[0] != bits // 8:
            raise _bad(name, f"{where} spans {offsets[1] - offsets[0]:,} bytes but its {dtype} shape {shape} "
                             f"needs {bits / 8:,g}")
        spans.append((offsets[0], offsets[1], tensor))
        dtypes[dtype] += numel
    return spans, dtypes, sum(dtypes.values())


def _check_tiling(name: str, spans: list[tuple[int, int, str]], data_bytes: int) -> None:
    expected = 0
    for begin, end, tensor in sorted(spans):
        if begin != expected:
            kind = "overlaps the previous one" if begin < expected else "leaves a gap before it"
            raise _bad(name, f"tensor {quote(tensor)} {kind} (data_offsets start at {begin:,}, expected {expected:,})")
        expected = end
    if expected != data_bytes:
        raise _bad(name, f"the tensors cover {expected:,} bytes of data but the file holds {data_bytes:,} "
                         "(truncated or padded)")


def check_safetensors(chunks: Iterable[bytes], name: str) -> SafetensorsSummary:
    """Validate the safetensors file whose bytes ``chunks`` yields (consumed to the end), naming it ``name``.

    Raises InvalidInput (code ``invalid_safetensors``) saying what is wrong: a short file, a header length over
    :data:`MAX_HEADER_BYTES` or past the end, a header that is not a JSON object (or repeats a key), an entry
    with an unknown dtype, a bad shape or offsets that disagree with it, tensors that overlap, leave gaps or do
    not end where the file ends.
    """
    head = bytearray()
    header_len: int | None = None
    header: dict[str, Any] | None = None
    data_bytes = 0
    for chunk in chunks:
        if header is not None:
            data_bytes += len(chunk)
            continue
        head += chunk
        if header_len is None and len(head) >= 8:
            header_len = struct.unpack_from("<Q", head)[0]
            if header_len > MAX_HEADER_BYTES:
                raise _bad(name, f"it declares a {header_len:,}-byte header (at most {MAX_HEADER_BYTES:,})")
        if header_len is not None and len(head) >= 8 + header_len:
            header = _parse_header(name, bytes(head[8: 8 + header_len]))
            data_bytes = len(head) - 8 - header_len
            head.clear()
    if header_len is None:
        raise _bad(name, f"it has {len(head)} bytes, fewer than the 8-byte header length")
    if header is None:
        raise _bad(name, f"it declares a {header_len:,}-byte header but ends after {len(head) - 8:,}")
    spans, dtypes, parameters = _tensor_entries(name, header)
    _check_tiling(name, spans, data_bytes)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _bad(name, "'__metadata__' must map strings to strings")
    return SafetensorsSummary(frozenset(t for _, _, t in spans), parameters, dict(dtypes), meta)
