"""Inspect a GGUF file (llama.cpp's format) by parsing its header with bounds on every count and length.

Layout: ``GGUF`` magic, a uint32 version (2 or 3; little- or big-endian), uint64 tensor and key/value
counts, the key/values (typed scalars, strings and arrays), the tensor infos (name, dimensions, ggml type,
offset), then the tensor data aligned to ``general.alignment``. We read only the header: a length or count is
checked against the bytes that remain before anything is read or skipped, so a corrupt or hostile file raises
InvalidInput without a large allocation, and arrays (a 150k-token vocabulary) are skipped, not materialised.
Every tensor's extent is then checked to lie inside the file. ``gguf`` (the package) supplies the ggml
type sizes and file-type names only; its reader would build Python objects for every array element.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import IO, Any

from ._common import ImportedModel, check_task, file_error, json_scalar, quote, task_note, text_signature
from .tasks import guess_gguf_task

__all__ = ["GGUF_MAGIC", "inspect_gguf"]

GGUF_MAGIC = b"GGUF"
_MAX_KV = 1_000_000
_MAX_TENSORS = 1_000_000
_MAX_DIMS = 4  # GGML_MAX_DIMS: llama.cpp refuses more
_MAX_NAME = 1024  # keys and tensor names (llama.cpp's tensor names are at most 64 bytes)
_KEEP_STRING = 4096  # longer string values (chat templates, licences) are skipped and only noted as present
_MAX_DEPTH = 2  # arrays of arrays, no deeper
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_TYPE_NAMES = {0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32", 7: "bool",
               8: "string", 9: "array", 10: "uint64", 11: "int64", 12: "float64"}
_GENERAL = ("name", "basename", "size_label", "finetune", "license", "organization", "quantized_by", "type")


def _bad(problem: str) -> Exception:
    return file_error(f"The file is not a valid GGUF model: {problem}. Re-download it or convert it again with "
                      "llama.cpp (convert_hf_to_gguf.py).", "invalid_gguf")


class _Reader:
    """Bounded reads from the open file: nothing is read or skipped past its end."""

    def __init__(self, fh: IO[bytes], size: int, endian: str) -> None:
        self.fh, self.size, self.endian, self.pos = fh, size, endian, 0

    def take(self, n: int, what: str) -> bytes:
        if n > self.size - self.pos:
            raise _bad(f"it ends at byte {self.size:,} while reading {what} (a truncated upload?)")
        data = self.fh.read(n)
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise _bad(f"{what} needs {n:,} bytes but only {self.size - self.pos:,} remain")
        self.fh.seek(n, 1)
        self.pos += n

    def scalar(self, fmt: str, what: str) -> Any:
        size = struct.calcsize(fmt)
        return struct.unpack(self.endian + fmt, self.take(size, what))[0]

    def string(self, what: str, keep: int = _KEEP_STRING) -> str | None:
        """The string, or None when it is longer than ``keep`` bytes (it is skipped)."""
        n = self.scalar("Q", what)
        if n > keep:
            self.skip(n, what)
            return None
        return self.take(n, what).decode("utf-8", errors="replace")

    def remaining(self) -> int:
        return self.size - self.pos


def _value(r: _Reader, vtype: int, key: str, depth: int = 0) -> Any:
    """A scalar, a string (None if long), or ``{"type": ..., "length": n}`` for an array (skipped)."""
    what = f"the value of {quote(key)}"
    if vtype in _SCALARS:
        return r.scalar(_SCALARS[vtype], what)
    if vtype == _STRING:
        return r.string(what)
    if vtype != _ARRAY:
        raise _bad(f"{quote(key)} has unknown value type {vtype}")
    if depth >= _MAX_DEPTH:
        raise _bad(f"{quote(key)} nests arrays more than {_MAX_DEPTH} deep")
    etype, count = r.scalar("I", what), r.scalar("Q", what)
    if etype in _SCALARS:
        r.skip(count * struct.calcsize(_SCALARS[etype]), f"the array {quote(key)} ({count:,} items)")
    elif etype in (_STRING, _ARRAY):
        smallest = 8 if etype == _STRING else 12
        if count > r.remaining() // smallest:
            raise _bad(f"the array {quote(key)} declares {count:,} items, more than the file can hold")
        for _ in range(count):
            if etype == _STRING:
                r.skip(r.scalar("Q", what), what)
            else:
                _value(r, _ARRAY, key, depth + 1)
    else:
        raise _bad(f"the array {quote(key)} has unknown item type {etype}")
    return {"type": _TYPE_NAMES[etype], "length": count}


def _header(r: _Reader) -> tuple[int, dict[str, Any]]:
    """``(tensor count, key/values)`` after the magic and version."""
    n_tensors, n_kv = r.scalar("Q", "the tensor count"), r.scalar("Q", "the key/value count")
    if n_kv > min(_MAX_KV, r.remaining() // 13):  # the smallest key/value is 13 bytes
        raise _bad(f"it declares {n_kv:,} key/values, more than the file can hold (or over {_MAX_KV:,})")
    if n_tensors > min(_MAX_TENSORS, r.remaining() // 24):  # the smallest tensor info is 24 bytes
        raise _bad(f"it declares {n_tensors:,} tensors, more than the file can hold (or over {_MAX_TENSORS:,})")
    kv: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string("a metadata key", keep=_MAX_NAME)
        if key is None:
            raise _bad(f"a metadata key is longer than {_MAX_NAME} bytes")
        if key in kv:
            raise _bad(f"the metadata key {quote(key)} appears twice")
        kv[key] = _value(r, r.scalar("I", f"the type of {quote(key)}"), key)
    return n_tensors, kv


def _tensors(r: _Reader, count: int, alignment: int) -> tuple[int, dict[str, int]]:
    """``(parameters, {ggml type: tensor count})`` after checking every tensor lies inside the file."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    spans: list[tuple[int, int, str]] = []
    types: dict[str, int] = {}
    parameters = 0
    names: set[str] = set()
    for _ in range(count):
        name = r.string("a tensor name", keep=_MAX_NAME)
        if name is None or name in names:
            raise _bad("a tensor name is too long" if name is None else f"the tensor {quote(name)} appears twice")
        names.add(name)
        n_dims = r.scalar("I", f"the dimensions of {quote(name)}")
        if n_dims > _MAX_DIMS:
            raise _bad(f"the tensor {quote(name)} has {n_dims} dimensions (at most {_MAX_DIMS})")
        dims = [r.scalar("Q", f"the shape of {quote(name)}") for _ in range(n_dims)]
        type_id, offset = r.scalar("I", f"the type of {quote(name)}"), r.scalar("Q", f"the offset of {quote(name)}")
        try:
            ggml_type = GGMLQuantizationType(type_id)
            block, type_size = GGML_QUANT_SIZES[ggml_type]
        except (ValueError, KeyError):
            raise _bad(f"the tensor {quote(name)} has ggml type {type_id}, which this server does not know") from None
        numel = 1
        for d in dims:
            numel *= d
        if dims and dims[0] % block:
            raise _bad(f"the tensor {quote(name)} has {dims[0]} columns, not a multiple of {ggml_type.name}'s "
                       f"block of {block}")
        if offset % alignment:
            raise _bad(f"the tensor {quote(name)} starts at offset {offset:,}, not a multiple of {alignment}")
        spans.append((offset, offset + numel // block * type_size, name))
        types[ggml_type.name] = types.get(ggml_type.name, 0) + 1
        parameters += numel
    data_start = -(-r.pos // alignment) * alignment
    end_prev, prev = 0, ""
    for begin, end, name in sorted(spans):
        if begin < end_prev:
            raise _bad(f"the tensors {quote(prev)} and {quote(name)} overlap")
        if data_start + end > r.size:
            raise _bad(f"the tensor {quote(name)} ends at byte {data_start + end:,} but the file has {r.size:,} "
                       "bytes (a truncated upload?)")
        end_prev, prev = end, name
    return parameters, types


def _file_type(value: Any) -> str | None:
    from gguf.constants import LlamaFileType

    if not isinstance(value, int):
        return None
    try:
        name = LlamaFileType(value).name
    except ValueError:
        return str(value)
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def inspect_gguf(path: str | Path, *, task: str | None = None) -> ImportedModel:
    """Validate a GGUF file's header and tensor extents and describe it (``format="gguf"``).

    ``info`` holds ``version``, ``endianness``, ``architecture``, ``name``, ``context_length``, ``block_count``,
    ``embedding_length``, ``file_type`` (e.g. ``Q4_K_M``), ``tokenizer_model``, ``vocab_size``,
    ``has_chat_template``, ``parameters``, ``tensor_count``, ``tensor_types`` (tensors per ggml type),
    ``alignment`` and ``general`` (descriptive ``general.*`` strings). ``task``, when given, replaces the guess
    (``text-generation`` for language models, ``embedding`` for encoders, else ``unknown``).
    Raises InvalidInput for a wrong magic or version, a truncated file, counts or lengths larger than the file,
    no tensors, duplicate keys or tensors, unknown types, misaligned or out-of-file tensors and split models.
    """
    task = check_task(task)
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb", buffering=1 << 16) as fh:
        magic, raw_version = fh.read(4), fh.read(4)
        if magic != GGUF_MAGIC:
            raise file_error("The file does not start with the GGUF magic bytes; upload a .gguf model file.",
                             "invalid_gguf")
        if len(raw_version) < 4:
            raise _bad("it ends inside the header")
        little, big = struct.unpack("<I", raw_version)[0], struct.unpack(">I", raw_version)[0]
        version, endian = (little, "<") if little in (2, 3) else (big, ">") if big in (2, 3) else (little, "<")
        if version not in (2, 3):
            raise _bad(f"it has GGUF version {version}; only versions 2 and 3 are supported (convert it again with "
                       "a current llama.cpp)")
        reader = _Reader(fh, size, endian)
        reader.pos = 8
        n_tensors, kv = _header(reader)
        alignment = _int(kv.get("general.alignment", 32))
        if not alignment or alignment & (alignment - 1):
            raise _bad(f"general.alignment is {kv.get('general.alignment')!r}, not a power of two")
        split = _int(kv.get("split.count"))
        if split is not None and split > 1:
            raise file_error(f"This is one part of a GGUF model split into {split} files; merge them first "
                             "(llama-gguf-split --merge) and upload the single file.", "split_gguf")
        if n_tensors == 0:
            raise _bad("it holds no tensors (a vocabulary-only file?)")
        parameters, tensor_types = _tensors(reader, n_tensors, alignment)
    arch = kv.get("general.architecture") if isinstance(kv.get("general.architecture"), str) else None
    tokens = kv.get("tokenizer.ggml.tokens")
    info: dict[str, Any] = {
        "version": version,
        "endianness": "little" if endian == "<" else "big",
        "architecture": arch,
        "name": kv.get("general.name") if isinstance(kv.get("general.name"), str) else None,
        "context_length": _int(kv.get(f"{arch}.context_length")),
        "block_count": _int(kv.get(f"{arch}.block_count")),
        "embedding_length": _int(kv.get(f"{arch}.embedding_length")),
        "file_type": _file_type(kv.get("general.file_type")),
        "tokenizer_model": kv.get("tokenizer.ggml.model") if isinstance(kv.get("tokenizer.ggml.model"), str) else None,
        "vocab_size": tokens["length"] if isinstance(tokens, dict) else None,
        "has_chat_template": "tokenizer.chat_template" in kv,
        "parameters": parameters,
        "tensor_count": n_tensors,
        "tensor_types": tensor_types,
        "alignment": alignment,
        "general": {k: json_scalar(kv[f"general.{k}"]) for k in _GENERAL
                    if isinstance(kv.get(f"general.{k}"), str | int | float)},
    }
    notes: list[str] = []
    if task is None:
        task, reason = guess_gguf_task(arch, set(kv))
        notes.append(task_note(task, reason))
    return ImportedModel("gguf", task, text_signature(task, width=info["embedding_length"]), info, notes)
