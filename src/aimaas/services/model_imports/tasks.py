"""Guess what an imported model does from its declared architecture (pure functions).

The guesses are deliberately conservative: a model we cannot place is ``unknown`` and the user names its task.
"""

from __future__ import annotations

from typing import Any

from ._common import UNKNOWN_TASK

__all__ = ["guess_gguf_task", "guess_hf_task"]

#: Architecture-name endings (``LlamaForCausalLM``) and the task they mean.
_HEAD_TASKS: tuple[tuple[str, str], ...] = (
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),  # GPT-2 style naming
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForImageClassification", "image-classification"),
)
#: Encoder families whose bare ``*Model`` checkpoints are used as sentence encoders.
_ENCODER_TYPES = frozenset({"bert", "roberta", "xlm-roberta", "mpnet", "distilbert", "albert", "electra",
                            "deberta", "deberta-v2", "camembert", "nomic_bert", "modernbert", "e5", "bge",
                            "new", "xlm", "jina_bert"})
#: GGUF architectures that are encoders (llama.cpp serves them as embedding models) or not text models at all.
_GGUF_ENCODERS = frozenset({"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "neo-bert", "modern-bert",
                            "t5encoder"})
_GGUF_NOT_TEXT = frozenset({"clip", "wavtokenizer-dec"})


def guess_hf_task(config: dict[str, Any], *, sentence_transformers: bool = False) -> tuple[str, str]:
    """``(task, why)`` for a Hugging Face ``config.json``; ``sentence_transformers`` when ``modules.json`` exists."""
    if sentence_transformers:
        return "embedding", "from modules.json (a sentence-transformers model)"
    declared = config.get("architectures")
    architectures = [a for a in declared if isinstance(a, str)] if isinstance(declared, list) else []
    for arch in architectures:
        for ending, task in _HEAD_TASKS:
            if arch.endswith(ending):
                return task, f"guessed from the architecture {arch}"
    model_type = config.get("model_type")
    bare = not architectures or all(a.endswith("Model") for a in architectures)
    if isinstance(model_type, str) and model_type.lower() in _ENCODER_TYPES and bare:
        return "embedding", f"guessed from the {model_type} encoder without a task head"
    return UNKNOWN_TASK, "unknown: the architecture does not say"


def guess_gguf_task(architecture: str | None, keys: set[str]) -> tuple[str, str]:
    """``(task, why)`` for a GGUF file's ``general.architecture`` and the set of its metadata keys."""
    if not architecture:
        return UNKNOWN_TASK, "unknown: the file names no architecture"
    if architecture in _GGUF_NOT_TEXT or "clip" in architecture:
        return UNKNOWN_TASK, f"unknown: {architecture!r} is not a text model"
    if architecture in _GGUF_ENCODERS or f"{architecture}.pooling_type" in keys:
        return "embedding", f"guessed from the encoder architecture {architecture!r}"
    if "tokenizer.ggml.model" in keys:
        return "text-generation", f"guessed from the language-model architecture {architecture!r}"
    return UNKNOWN_TASK, f"unknown: {architecture!r} has no tokenizer"
