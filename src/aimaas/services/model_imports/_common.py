"""What an import inspection returns, and the small helpers the format modules share (private)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from aimaas.errors import InvalidInput

__all__ = ["ImportedModel", "check_task", "file_error", "is_task", "json_scalar", "quote", "task_note",
           "text_signature"]

ImportFormat = Literal["onnx", "safetensors", "gguf"]

#: Task names are short kebab-case words ("text-generation", "classification", "embedding", ...).
_TASK = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
UNKNOWN_TASK = "unknown"


@dataclass(frozen=True, slots=True)
class ImportedModel:
    """What the registry records about a model a user imports (not one we trained).

    * ``format``: the :data:`~aimaas.domain.registry.MODEL_FORMATS` value: ``onnx``, ``safetensors`` (a Hugging
      Face directory) or ``gguf``.
    * ``task``: what the model does (``text-generation``, ``embedding``, ``classification``, ... or ``unknown``).
    * ``signature``: ``{"inputs": [...], "outputs": [...]}``, each item a dict with ``name``, ``type`` and, where
      known, ``shape`` (ints; symbolic dimensions as strings; unknown ones as None).
    * ``info``: format-specific facts (parameter count, architecture, opsets, ...); plain JSON values only.
    * ``notes``: human-readable remarks (what was guessed, ignored or stripped), for the model card.
    """

    format: ImportFormat
    task: str
    signature: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def file_error(message: str, code: str) -> InvalidInput:
    """An error about the uploaded model file (``param="file"``); ``message`` says what to do."""
    return InvalidInput(message, code=code, param="file")


def quote(name: str, limit: int = 80) -> str:
    """A file or key name for an error message: repr-quoted and shortened (names come from the upload)."""
    text = name if len(name) <= limit else name[: limit - 1] + "…"
    return repr(text)


def is_task(name: object) -> bool:
    """Whether ``name`` is a well-formed task name."""
    return isinstance(name, str) and bool(_TASK.match(name))


def check_task(task: str | None) -> str | None:
    """``task`` if it is None or a short kebab-case word; InvalidInput (``param="task"``) otherwise."""
    if task is None:
        return None
    if not is_task(task):
        raise InvalidInput(f"invalid task {str(task)[:40]!r}: use 1-64 lower-case letters, digits or '-' "
                           "starting with a letter (for example 'text-generation' or 'embedding')", param="task")
    return task


def text_signature(task: str, *, width: int | None = None, labels: list[str] | None = None) -> dict[str, Any]:
    """The signature of a text model for ``task`` (inputs are strings; outputs depend on the task)."""
    text_in = [{"name": "text", "type": "string", "shape": [None]}]
    if task == "text-generation":
        return {"inputs": [{"name": "prompt", "type": "string", "shape": [None]}],
                "outputs": [{"name": "text", "type": "string", "shape": [None]}]}
    if task == "embedding":
        return {"inputs": text_in, "outputs": [{"name": "embedding", "type": "float32", "shape": [None, width]}]}
    if task == "text-classification":
        n = len(labels) if labels else None
        return {"inputs": text_in, "outputs": [{"name": "label", "type": "string", "shape": [None]},
                                               {"name": "probabilities", "type": "float32", "shape": [None, n]}]}
    return {"inputs": [], "outputs": []}


def task_note(task: str, reason: str) -> str:
    """The note recording how the task was chosen, telling the user how to change it."""
    return f"task {task!r} {reason}; pass a task to " + ("set it" if task == UNKNOWN_TASK else "override it")


def json_scalar(value: Any) -> Any:
    """``value`` as a JSON-safe scalar: non-finite floats become strings, bytes are decoded."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
