"""The tokenizer of the ``text_transformer`` trainer and the ``text_tokens`` ONNX feed.

A BPE tokenizer from the ``tokenizers`` library (BPE because its trainer is deterministic: the same texts give
the same JSON, which WordPiece's trainer does not), serialised as the library's JSON. That JSON travels in the
model's ``aimaas.tokenizer`` metadata with truncation and padding configured, so a server encodes texts with
:func:`token_feed` and nothing but ``tokenizers`` (imported on first use; no torch).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aimaas.errors import AimaasError
from aimaas.training import text_encoder

__all__ = ["SPECIAL_TOKENS", "checkpointed_tokenizer", "encode_texts", "token_feed", "train_tokenizer"]

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP)  # ids 0..3, in this order; PAD is 0
TOKENIZER_FILE = "tokenizer.json"


def train_tokenizer(texts: list[str], *, vocab_size: int, max_length: int, min_frequency: int = 2,
                    lowercase: bool = True) -> str:
    """A BPE tokenizer trained on ``texts``, as the JSON string of a ``tokenizers.Tokenizer``.

    BERT-style normalisation (lower-casing when asked) and pre-tokenization (words and punctuation); ids 0-3
    are ``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``; ``vocab_size`` is an upper bound. Every encoding is
    ``[CLS] pieces [SEP]`` truncated to ``max_length`` ids, and a batch is padded with ``[PAD]`` to its
    longest row. The same texts and settings give the same JSON.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                      strip_accents=None, lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{CLS} $A {SEP}",
                                                             special_tokens=[(CLS, 2), (SEP, 3)])
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=0, pad_token=PAD)
    return str(tokenizer.to_str())


@lru_cache(maxsize=16)
def _tokenizer(tokenizer_json: str) -> Any:
    # Parsing a tokenizer costs milliseconds; a server encodes many batches with the same one.
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer_json)


def vocab_size(tokenizer_json: str) -> int:
    """How many ids the tokenizer can produce."""
    return int(_tokenizer(tokenizer_json).get_vocab_size(with_added_tokens=True))


def encode_texts(tokenizer_json: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask)`` as int64 ``[N, L]``, ``L`` the longest encoding of the batch (at least 2:
    every text gets ``[CLS]`` and ``[SEP]``)."""
    if not texts:
        return np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2), dtype=np.int64)
    encodings = _tokenizer(tokenizer_json).encode_batch(texts)
    ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
    mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


def token_feed(X: pd.DataFrame, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """The ONNX feed of a ``text_tokens`` model: ``{"input_ids", "attention_mask"}`` for the rows' ``text``,
    encoded with the tokenizer in the model's metadata (:func:`aimaas.training.onnx_check.model_metadata`)."""
    tokenizer = meta.get("tokenizer")
    if isinstance(tokenizer, dict):  # model_metadata decodes the JSON; the tokenizer wants it as text
        tokenizer = json.dumps(tokenizer)
    if not isinstance(tokenizer, str):
        raise AimaasError("This text model carries no tokenizer (aimaas.tokenizer).", code="invalid_model")
    ids, mask = encode_texts(tokenizer, text_encoder.text_column(X))
    return {"input_ids": ids, "attention_mask": mask}


def checkpointed_tokenizer(checkpoint_dir: Path | None, texts: list[str], settings: dict[str, Any]) -> str:
    """:func:`train_tokenizer` ``(texts, **settings)``, reusing the one saved in ``checkpoint_dir`` for the same
    texts and settings (a resumed fit must see the very ids it was trained on) and saving a new one there."""
    digest = hashlib.sha256(json.dumps({"texts": texts, "settings": settings}, sort_keys=True).encode()).hexdigest()
    path = checkpoint_dir / TOKENIZER_FILE if checkpoint_dir is not None else None
    if path is not None and path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("source") == digest and isinstance(saved.get("tokenizer"), str):
                return str(saved["tokenizer"])
        except (OSError, ValueError, AttributeError):
            pass  # damaged or foreign: train again and replace it
    tokenizer = train_tokenizer(texts, **settings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _atomic_write(path, json.dumps({"source": digest, "tokenizer": tokenizer}).encode())
    return tokenizer


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, rename: readers see the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
