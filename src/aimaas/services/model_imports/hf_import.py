"""Inspect a zip of a Hugging Face model directory (``config.json`` + ``*.safetensors`` + tokenizer files).

The archive is read with the dataset uploads' :class:`~aimaas.services.datasets.archives.SafeZip` (no absolute
or ``..`` paths, no links, bounded entries, bytes and compression ratio, sizes re-checked while decompressing)
and nothing is extracted. Every member must be on an allow-list of inert files; pickle-based checkpoints and
code are refused by name before a byte is read, so a refusal is immediate. Each safetensors file is then
validated while it streams out of the archive (:func:`~.safetensors_check.check_safetensors`); the other members
are decompressed too, so a corrupt or lying archive is caught now rather than at deployment.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ._common import ImportedModel, check_task, file_error, quote, task_note, text_signature
from .safetensors_check import SafetensorsSummary, check_safetensors
from .tasks import guess_hf_task

if TYPE_CHECKING:
    from aimaas.services.datasets.archives import SafeZip

__all__ = ["inspect_hf_zip"]

_GiB = 1024**3
_MAX_JSON = 64 * 1024 * 1024  # config / tokenizer_config / index files we parse (tokenizer configs reach MBs)
#: Checkpoint formats that unpickle (or are framework-specific) and so are refused with a "convert" hint.
REFUSED_WEIGHTS = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".h5", ".hdf5", ".keras",
                             ".msgpack", ".joblib", ".npy", ".npz", ".ot"})
#: Code the server would be asked to run (``trust_remote_code`` models): never accepted.
REFUSED_CODE = frozenset({".py", ".pyc", ".pyo", ".pyd", ".so", ".dll", ".dylib", ".exe", ".sh", ".ipynb"})
_ALLOWED_SUFFIXES = frozenset({".safetensors", ".json", ".txt", ".md", ".tiktoken", ".jinja"})
_ALLOWED_NAMES = frozenset({"tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "source.spm",
                            "target.spm", ".gitattributes", "license", "licence", "notice", "copying"})
_TOKENIZER_NAMES = frozenset({"tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model",
                              "merges.txt"})
_PARSED = frozenset({"config.json", "tokenizer_config.json", "modules.json"})
_CONFIG_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size",
                "max_position_embeddings", "torch_dtype", "dtype")


def _kind(rel: str) -> str:
    """``weights`` / ``code`` (refused), ``ok`` (allow-listed) or ``unknown`` for an archive member name."""
    lower = PurePosixPath(rel).name.lower()
    suffix = PurePosixPath(lower).suffix
    if suffix in REFUSED_WEIGHTS:
        return "weights"
    if suffix in REFUSED_CODE:
        return "code"
    if suffix in _ALLOWED_SUFFIXES or lower in _ALLOWED_NAMES or lower.startswith("vocab."):
        return "ok"
    return "unknown"


def _names(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(quote(n) for n in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _check_members(rels: list[str], junk: list[str]) -> None:
    """Refuse checkpoints (even hidden ones), code and unknown files, naming them and saying what to do."""
    kinds = {rel: _kind(rel) for rel in rels}
    weights = [r for r, k in kinds.items() if k == "weights"]
    weights += [j for j in junk if not j.startswith("__MACOSX/") and _kind(j) == "weights"]
    if weights:
        raise file_error(f"The archive holds {_names(weights)}: pickle-based or framework-specific checkpoints are "
                         "refused. Convert the weights to safetensors (save_pretrained(dir, safe_serialization=True)"
                         ") and remove these files.", "pickle_refused")
    code = [r for r, k in kinds.items() if k == "code"]
    if code:
        raise file_error(f"The archive holds code ({_names(code)}); the server never runs uploaded code, so models "
                         "that need trust_remote_code cannot be imported. Remove these files.", "code_refused")
    unknown = [r for r, k in kinds.items() if k == "unknown"]
    if unknown:
        raise file_error(f"The archive holds {_names(unknown)}, which a model directory may not contain here. "
                         "Allowed: *.safetensors, *.json, *.txt, *.md, *.jinja, *.tiktoken, tokenizer.model, "
                         "vocab.*, LICENSE. Remove the other files.", "unsupported_model_file")
    seen: dict[str, str] = {}
    for rel in rels:  # two entries may not name one file (the checked one and the extracted one could differ)
        if (key := rel.lower()) in seen:
            raise file_error(f"The archive holds {quote(seen[key])} and {quote(rel)}, which name the same file. "
                             "Re-create the archive from the model directory.", "unsafe_archive")
        seen[key] = rel


def _labels(id2label: Any) -> list[str] | None:
    """``id2label`` values in id order (keys are strings of integers in config.json)."""
    if not isinstance(id2label, dict) or not id2label:
        return None
    return [str(v) for _, v in sorted(id2label.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else -1)]


def _strip_root(members: list[zipfile.ZipInfo]) -> str:
    """The single top-level folder every member sits in (``"name/"``), or ``""``."""
    parts = [PurePosixPath(m.filename).parts for m in members]
    tops = {p[0] for p in parts}
    if len(tops) == 1 and all(len(p) > 1 for p in parts):
        return tops.pop() + "/"
    return ""


def _read_json(archive: SafeZip, info: zipfile.ZipInfo, rel: str) -> Any:
    if info.file_size > _MAX_JSON:
        raise file_error(f"{quote(rel)} is {info.file_size:,} bytes; at most {_MAX_JSON:,} are read.", "invalid_json")
    try:
        return json.loads(archive.read(info).decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise file_error(f"{quote(rel)} is not valid UTF-8 JSON ({str(exc)[:120]}). Fix or re-save it.",
                         "invalid_json") from None


def _check_index(index: Any, rel: str, weights: dict[str, SafetensorsSummary]) -> set[str]:
    """The shard files a ``*.safetensors.index.json`` names, after checking they hold what it says."""
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise file_error(f"{quote(rel)} has no 'weight_map' object of tensor -> file.", "invalid_json")
    folder = str(PurePosixPath(rel).parent)
    shards: set[str] = set()
    for tensor, shard in weight_map.items():
        key = shard if folder == "." else f"{folder}/{shard}"
        if key not in weights:
            raise file_error(f"{quote(rel)} puts tensor {quote(tensor)} in {quote(shard)}, which the archive lacks. "
                             "Include every shard.", "missing_shard")
        if tensor not in weights[key].tensors:
            raise file_error(f"{quote(rel)} puts tensor {quote(tensor)} in {quote(shard)}, which does not hold it.",
                             "missing_shard")
        shards.add(key)
    return shards


@dataclass(slots=True)
class _Contents:
    """What the archive holds, by name relative to the stripped ``root``."""

    root: str
    members: dict[str, zipfile.ZipInfo]
    json: dict[str, Any] = field(default_factory=dict)  # the JSON files we read, parsed
    weights: dict[str, SafetensorsSummary] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _scan(path: Path, max_entries: int, max_bytes: int, max_ratio: float) -> _Contents:
    """Vet every entry, then stream every member once: safetensors validated, the JSON we need parsed."""
    from aimaas.services.datasets.archives import IngestLimits, SafeZip, is_junk

    with SafeZip(path, IngestLimits(max_entries, max_bytes, max_ratio)) as archive:
        with zipfile.ZipFile(path) as raw:  # every entry, junk included (SafeZip already vetted them all)
            junk = [i.filename for i in raw.infolist() if not i.is_dir() and is_junk(i.filename)]
        root = _strip_root(archive.members)
        out = _Contents(root, {m.filename[len(root):]: m for m in archive.members})
        _check_members([m.filename[len(root):] for m in archive.members], junk)
        if root:
            out.notes.append(f"stripped the top-level folder {root!r}")
        if junk:
            out.notes.append(f"ignored {len(junk)} hidden or archiver file(s) such as {junk[0]!r}")
        if "config.json" not in out.members:
            raise file_error("The archive has no config.json at its top level (or inside one top-level folder). "
                             "Zip the directory that save_pretrained wrote.", "missing_config")
        for rel, member in sorted(out.members.items()):
            if rel.lower().endswith(".safetensors"):
                out.weights[rel] = check_safetensors(archive.iter_chunks(member), rel)
            elif rel in _PARSED or rel.endswith(".safetensors.index.json"):
                out.json[rel] = _read_json(archive, member, rel)
            else:
                for _ in archive.iter_chunks(member):  # decompress: CRC and real sizes are checked as it goes
                    pass
    return out


def _parameters(contents: _Contents) -> dict[str, int]:
    """Parameters per dtype over the weight files, each sharded set counted once (see the index check)."""
    counted = set(contents.weights)
    for rel in [r for r in contents.json if r.endswith(".safetensors.index.json")]:
        shards = _check_index(contents.json[rel], rel, contents.weights)
        folder = str(PurePosixPath(rel).parent)
        extra = {w for w in contents.weights if str(PurePosixPath(w).parent) == folder} - shards
        if extra:  # e.g. Mistral's consolidated.safetensors next to the HF shards
            counted -= extra
            contents.notes.append(f"{_names(sorted(extra))} not in {rel!r}: assumed to repeat the indexed weights, "
                                  "not counted")
    dtypes: dict[str, int] = {}
    for rel in sorted(counted):
        for dtype, n in contents.weights[rel].dtypes.items():
            dtypes[dtype] = dtypes.get(dtype, 0) + n
    return dtypes


def inspect_hf_zip(path: str | Path, *, task: str | None = None, max_entries: int = 1_000,
                   max_bytes: int = 128 * _GiB, max_ratio: float = 200.0) -> ImportedModel:
    """Validate a zipped Hugging Face model directory and describe it (``format="safetensors"``).

    A single top-level folder is stripped. ``config.json`` (a JSON object) and at least one ``*.safetensors``
    file are required. ``info`` holds ``model_type``, ``architectures``, ``parameters`` (from the safetensors
    headers), ``dtypes`` (parameters per dtype), ``has_tokenizer``, ``has_chat_template``,
    ``sentence_transformers``, ``labels`` (``id2label`` values or None), ``config`` (size fields), ``weights``
    (per safetensors file), ``files`` (accepted members, names relative to the stripped ``root``; hidden and
    archiver files are not listed) and ``total_bytes``. ``task``, when given, replaces the task guessed from the
    architectures. The limits bound the archive's entries, expanded bytes and per-entry compression ratio.
    Raises InvalidInput for unsafe or oversized archives, refused or unknown members, a missing or invalid
    config, invalid safetensors files or a sharding index naming missing tensors.
    """
    task = check_task(task)
    contents = _scan(Path(path), max_entries, max_bytes, max_ratio)
    config = contents.json["config.json"]
    if not isinstance(config, dict):
        raise file_error("config.json must hold a JSON object (the model's configuration).", "invalid_config")
    if not contents.weights:
        raise file_error("The archive holds no .safetensors weights. Save the model with "
                         "save_pretrained(dir, safe_serialization=True) and zip that directory.", "missing_weights")
    dtypes = _parameters(contents)
    tok_config = contents.json.get("tokenizer_config.json")
    names = {PurePosixPath(rel).name.lower() for rel in contents.members}
    has_tokenizer = bool(names & _TOKENIZER_NAMES) or any(n.startswith("vocab.") or n.endswith(".tiktoken")
                                                          for n in names)
    has_chat_template = (any(n.endswith(".jinja") for n in names) or "chat_template.json" in names
                         or (isinstance(tok_config, dict) and bool(tok_config.get("chat_template"))))
    is_st = "modules.json" in contents.json
    notes = contents.notes
    if task is None:
        task, reason = guess_hf_task(config, sentence_transformers=is_st)
        notes.append(task_note(task, reason))
    if config.get("auto_map"):
        notes.append("config.json has an auto_map (custom modelling code), which the server will not run")
    labels = _labels(config.get("id2label"))
    width = next((config[k] for k in ("hidden_size", "d_model", "n_embd") if isinstance(config.get(k), int)), None)
    architectures = config.get("architectures")
    info: dict[str, Any] = {
        "model_type": config.get("model_type") if isinstance(config.get("model_type"), str) else None,
        "architectures": [str(a) for a in architectures] if isinstance(architectures, list) else [],
        "parameters": sum(dtypes.values()),
        "dtypes": dtypes,
        "has_tokenizer": has_tokenizer,
        "has_chat_template": has_chat_template,
        "sentence_transformers": is_st,
        "labels": labels,
        "config": {k: config[k] for k in _CONFIG_KEYS if isinstance(config.get(k), int | str)},
        "weights": [{"file": rel, "tensors": len(s.tensors), "parameters": s.parameters}
                    for rel, s in sorted(contents.weights.items())],
        "root": contents.root,
        "files": [{"name": rel, "size": m.file_size} for rel, m in sorted(contents.members.items())],
        "total_bytes": sum(m.file_size for m in contents.members.values()),
    }
    return ImportedModel("safetensors", task, text_signature(task, width=width, labels=labels), info, notes)
