"""Run an import inspection in a child process, and repack a checked Hugging Face zip.

SECURITY.md keeps tenant-supplied files away from the API process's parsers where it can: ONNX Runtime
parsing an uploaded graph, or a GGUF header, runs in ``python -m aimaas.services.model_imports.isolated``, which
answers one line of JSON. A crash, a hang (killed after ``timeout_s``) or a hostile file there cannot take the
server down; the API process only reads JSON back (never a pickle).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from aimaas.errors import AimaasError, InvalidInput
from aimaas.services.model_imports._common import ImportedModel

__all__ = ["inspect_isolated", "repack_hf_zip"]

_CHUNK = 1024 * 1024


def inspect_isolated(path: Path, filename: str, *, task: str | None = None, limits: dict[str, Any] | None = None,
                     timeout_s: float = 600.0) -> ImportedModel:
    """:func:`~aimaas.services.model_imports.inspect_model` in a child process; the same result or error."""
    request = json.dumps({"path": str(path), "filename": filename, "task": task, "limits": limits or {}})
    try:
        done = subprocess.run([sys.executable, "-m", __name__], input=request.encode(), capture_output=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise InvalidInput(f"checking the model file took longer than {timeout_s:.0f} s; it was refused",
                           param="file") from None
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise InvalidInput(f"the model file could not be checked (the checker exited with {done.returncode}); "
                           "it may be corrupt", param="file")
    if "error" in answer:
        err = answer["error"]
        raise InvalidInput(str(err.get("message"))[:2000], param=err.get("param") or "file",
                           code=err.get("code") or "invalid_model_file")
    ok = answer["ok"]
    return ImportedModel(format=ok["format"], task=ok["task"], signature=ok["signature"], info=ok["info"],
                         notes=list(ok["notes"]))


def repack_hf_zip(source: Path, target: Path, root: str, names: list[str]) -> None:
    """Copy only the checked members ``names`` (relative to ``root``) into a new uncompressed zip, so files the
    check did not read (hidden files, archiver junk) never reach the store. Safetensors do not compress."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as dst:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            with src.open(root + name) as reader, dst.open(info, "w", force_zip64=True) as writer:
                while chunk := reader.read(_CHUNK):
                    writer.write(chunk)


def _main() -> None:  # the child: one JSON request on stdin, one JSON answer on stdout
    from aimaas.services.model_imports.detect import inspect_model

    request = json.loads(sys.stdin.read())
    try:
        model = inspect_model(Path(request["path"]), request["filename"], task=request.get("task"),
                              **request.get("limits", {}))
        answer: dict[str, Any] = {"ok": {"format": model.format, "task": model.task, "signature": model.signature,
                                         "info": model.info, "notes": model.notes}}
    except AimaasError as exc:
        answer = {"error": {"message": exc.message, "param": exc.param, "code": exc.code}}
    sys.stdout.write("\n" + json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    _main()
