"""ModelRuntime: what a replica runs, one backend per kind of model, registered by name.

A runtime is built from a :class:`ModelSource` (a model version's files on local disk and what the registry
knows about it), loaded once (``load`` may block for seconds: call it in a thread), then called with
*batches*: several requests' rows or texts at once. Every call is synchronous and thread-safe enough to be
called from one worker thread at a time; the replica owns concurrency. Heavy libraries are imported in
``load``, never at module import.

Backends (``runtime_for`` picks one from the version's format and task):

* ``onnx``: everything our training exports, and imported ONNX (:mod:`aimaas.serving.onnx_runtime`).
* ``sentence_transformers``: text embeddings (:mod:`aimaas.serving.embedding_runtime`).
* ``transformers_llm``: Hugging Face causal LMs from a local directory (:mod:`aimaas.serving.llm_runtime`).
* ``llama_cpp``: GGUF files through ``llama-cpp-python`` when installed (not shipped yet).
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from aimaas.errors import InvalidInput

__all__ = [
    "Capability",
    "Generation",
    "GenerationChunk",
    "ModelRuntime",
    "ModelSource",
    "Prediction",
    "register_runtime",
    "runtime_for",
    "runtime_names",
]

Capability = str  # "predict" | "embed" | "generate"


@dataclass(frozen=True)
class ModelSource:
    """A model version ready to load: ``path`` is the ONNX/GGUF file or the extracted model directory."""

    path: Path
    format: str  # onnx | safetensors | gguf
    task: str
    signature: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # the registry's lineage["info"] for imports
    model: str = ""  # model name, for messages
    version: int = 0


@dataclass(frozen=True, slots=True)
class Prediction:
    """One row's answer: ``label`` and ``probabilities`` (class → p) for classifiers, ``value`` for
    regression, ``cluster`` for clustering, ``outputs`` (output name → value) for an imported graph whose
    outputs have no known meaning; absent ones are None."""

    label: Any = None
    probabilities: dict[str, float] | None = None
    value: float | None = None
    cluster: int | None = None
    outputs: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("label", self.label), ("probabilities", self.probabilities),
                                  ("value", self.value), ("cluster", self.cluster), ("outputs", self.outputs))
                if v is not None}


@dataclass(frozen=True)
class Generation:
    """A text-generation request. ``prompt`` is plain text (completions) and ``messages`` a chat (then the
    runtime applies the tokenizer's chat template). ``stop`` strings end a choice; ``n`` choices are produced;
    ``seed`` makes sampling reproducible; ``temperature`` 0 means greedy."""

    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    n: int = 1
    seed: int | None = None


@dataclass(frozen=True)
class GenerationChunk:
    """A piece of one choice's text. The last chunk of a choice has ``finish_reason`` (``stop``, ``length``, or
    ``cancelled`` when the request was cancelled) and the token counts; earlier chunks have None."""

    index: int
    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ModelRuntime(ABC):
    """A loaded model. Subclasses set ``kind`` and ``capabilities`` and implement the calls they support.

    * ``predict(rows)``: rows are dicts (column → value; ``text`` for text models, ``image`` as base64 or
      bytes for image models); returns one :class:`Prediction` per row. Bad rows raise InvalidInput naming
      the column and the row index.
    * ``embed(texts)``: ``(vectors as list of float lists, tokens per text)``.
    * ``generate(request, cancel)``: yields :class:`GenerationChunk` s as tokens are produced, stopping
      within one token once ``cancel`` is set.
    * ``count_tokens(text)``: the model's token count (usage metering).
    """

    kind: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self.memory_bytes = 0  # an estimate once loaded, for the memory budget

    @abstractmethod
    def load(self) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model (default: drop references and let the garbage collector do it)."""

    def predict(self, rows: Sequence[dict[str, Any]]) -> list[Prediction]:
        raise InvalidInput(f"model {self.source.model!r} does not predict rows (it is a {self.source.task} model)",
                           param="model")

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], list[int]]:
        raise InvalidInput(f"model {self.source.model!r} does not make embeddings", param="model")

    def generate(self, request: Generation, cancel: threading.Event) -> Iterator[GenerationChunk]:
        raise InvalidInput(f"model {self.source.model!r} does not generate text", param="model")

    def count_tokens(self, text: str) -> int:
        return len(text.split())


_RUNTIMES: dict[str, str] = {
    "onnx": "aimaas.serving.onnx_runtime:OnnxModelRuntime",
    "sentence_transformers": "aimaas.serving.embedding_runtime:EmbeddingRuntime",
    "transformers_llm": "aimaas.serving.llm_runtime:TransformersLLMRuntime",
}


def register_runtime(kind: str, target: str) -> None:
    """Register a backend as ``"module:Class"`` (imported on first use)."""
    _RUNTIMES[kind] = target


def runtime_names() -> list[str]:
    return sorted(_RUNTIMES)


def runtime_kind(source: ModelSource) -> str:
    """Which backend serves ``source``: ONNX files by ``onnx``; safetensors directories by
    ``sentence_transformers`` (task embedding) or ``transformers_llm`` (text-generation); GGUF by ``llama_cpp``."""
    if source.format == "onnx":
        return "onnx"
    if source.format == "safetensors":
        if source.task == "embedding":
            return "sentence_transformers"
        if source.task == "text-generation":
            return "transformers_llm"
    if source.format == "gguf":
        return "llama_cpp"
    raise InvalidInput(f"no runtime serves a {source.format} model with task {source.task!r}", param="model")


def runtime_for(source: ModelSource) -> ModelRuntime:
    """A new, unloaded runtime for ``source`` (InvalidInput when no installed backend serves it)."""
    kind = runtime_kind(source)
    target = _RUNTIMES.get(kind)
    if target is None:
        raise InvalidInput(f"the {kind} runtime is not available on this server (for GGUF install "
                           "'aimaas[llama]')", param="model")
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    runtime: ModelRuntime = cls(source)
    return runtime
