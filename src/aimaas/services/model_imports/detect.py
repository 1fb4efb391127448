"""Tell which importer an uploaded model file needs, from its first bytes and (for ONNX) its name.

Magic bytes decide where a format has them (GGUF, zip); ONNX is a bare protobuf, so it needs the ``.onnx``
extension and a plausible first field, and the full parse happens in the importer. Pickle is refused both by
its magic (protocol 2+ starts with ``\\x80`` and the protocol number) and by the names its checkpoints use;
PyTorch's ``.pt`` files are zips holding a pickle, so the name check comes before the zip magic.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ._common import ImportedModel, file_error
from .gguf_import import GGUF_MAGIC, inspect_gguf
from .hf_import import inspect_hf_zip
from .onnx_import import inspect_onnx

__all__ = ["IMPORT_KINDS", "detect_import_format", "inspect_model"]

#: What :func:`detect_import_format` answers: the importer to run.
IMPORT_KINDS = ("onnx", "hf_zip", "gguf")
_PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".joblib"})
_OTHER_FRAMEWORKS = frozenset({".h5", ".hdf5", ".keras", ".npy", ".npz", ".msgpack", ".pb", ".tflite"})
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with entries; an empty zip
# First byte of a serialized ModelProto: the tag of one of its fields (ir_version, producer_name, ..., graph,
# opset_import, metadata_props, training_info, functions); serializers write fields in number order.
_ONNX_FIRST = frozenset({0x08, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA})
_ACCEPTED = ("a .onnx file, a .gguf file, or a .zip of a Hugging Face model directory (config.json + "
             "*.safetensors + tokenizer files)")


def _pickle_refused(what: str) -> Exception:
    return file_error(f"{what}: pickle-based checkpoints are refused; convert to safetensors or ONNX "
                      f"(upload {_ACCEPTED}).", "pickle_refused")


def detect_import_format(path: str | Path, filename: str) -> str:
    """The importer ``path`` needs: ``"onnx"``, ``"hf_zip"`` or ``"gguf"`` (see :data:`IMPORT_KINDS`).

    ``filename`` is the client's name for the upload (metadata only: used for its extension).
    The GGUF magic wins over the name. Raises InvalidInput: ``pickle_refused`` for ``.pt``/``.pth``/``.bin``/
    ``.pkl``/``.ckpt``/``.joblib`` names (PyTorch's zip checkpoints included) or pickle content (protocol 2-5);
    ``missing_config`` for a lone ``.safetensors`` file; ``invalid_onnx`` for a ``.onnx`` name whose bytes cannot
    be ONNX; ``unsupported_model_format`` for anything else (empty files included).
    """
    name = PurePosixPath(str(filename).replace("\\", "/")).name
    suffix = PurePosixPath(name.lower()).suffix
    with Path(path).open("rb") as fh:
        head = fh.read(16)
    if head.startswith(GGUF_MAGIC):  # checked first: old llama.cpp files were named .bin, and GGUF never unpickles
        return "gguf"
    if suffix in _PICKLE_SUFFIXES:
        raise _pickle_refused(f"{name[:80]!r} is a {suffix} checkpoint")
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise _pickle_refused(f"{name[:80]!r} holds a pickle (protocol {head[1]})")
    if head.startswith(_ZIP_MAGICS):
        return "hf_zip"
    if suffix == ".safetensors" or (len(head) > 9 and head[8:10] == b'{"' and not any(head[4:8])):
        raise file_error("A safetensors file alone lacks the model's configuration: zip the whole model directory "
                         "(config.json, *.safetensors and the tokenizer files) and upload the zip.", "missing_config")
    if suffix == ".onnx":
        if head and head[0] in _ONNX_FIRST:
            return "onnx"
        raise file_error(f"{name[:80]!r} is named .onnx but does not start like an ONNX model; export it again.",
                         "invalid_onnx")
    if suffix in _OTHER_FRAMEWORKS:
        raise file_error(f"{suffix} files are not accepted; convert the model to ONNX or safetensors and upload "
                         f"{_ACCEPTED}.", "unsupported_model_format")
    what = "The file is empty" if not head else f"Could not recognise {name[:80]!r} as a model"
    raise file_error(f"{what}; upload {_ACCEPTED}.", "unsupported_model_format")


def inspect_model(path: str | Path, filename: str, *, task: str | None = None, max_entries: int = 1_000,
                  max_bytes: int = 128 * 1024**3, max_ratio: float = 200.0) -> ImportedModel:
    """Detect the upload's format (:func:`detect_import_format`) and run its importer.

    ``task`` is the user's task (see each importer for when it applies); the limits bound zip archives.
    """
    kind = detect_import_format(path, filename)
    if kind == "gguf":
        return inspect_gguf(path, task=task)
    if kind == "hf_zip":
        return inspect_hf_zip(path, task=task, max_entries=max_entries, max_bytes=max_bytes, max_ratio=max_ratio)
    return inspect_onnx(path, task=task)
