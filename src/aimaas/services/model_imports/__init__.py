"""Validate models users bring from elsewhere before the registry records them.

Three kinds of upload are accepted (SECURITY.md, "Model artifacts"): an ONNX file, a zip of a Hugging Face
model directory with safetensors weights, and a GGUF file. Each importer inspects a local file the API layer
has already streamed to disk under a size cap, never runs code from it, never unpickles, and returns an
:class:`ImportedModel` (format, task, signature, info, notes) or raises
:class:`~aimaas.errors.InvalidInput` saying what is wrong and what to do. Heavy libraries (onnx,
onnxruntime, gguf) are imported only inside the importer that needs them.

* :func:`detect_import_format` / :func:`inspect_model`: pick the importer from magic bytes and the name.
* :func:`inspect_onnx`, :func:`inspect_hf_zip`, :func:`inspect_gguf`: the importers.
"""

from __future__ import annotations

from ._common import ImportedModel
from .detect import IMPORT_KINDS, detect_import_format, inspect_model
from .gguf_import import inspect_gguf
from .hf_import import inspect_hf_zip
from .onnx_import import inspect_onnx
from .safetensors_check import SafetensorsSummary, check_safetensors

__all__ = [
    "IMPORT_KINDS",
    "ImportedModel",
    "SafetensorsSummary",
    "check_safetensors",
    "detect_import_format",
    "inspect_gguf",
    "inspect_hf_zip",
    "inspect_model",
    "inspect_onnx",
]
