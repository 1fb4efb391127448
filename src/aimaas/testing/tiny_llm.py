"""A tiny, randomly initialised Llama model written to disk, for tests of LLM serving (no download ever).

:func:`build_tiny_llama` writes a directory that ``AutoModelForCausalLM.from_pretrained(dir)`` and
``AutoTokenizer.from_pretrained(dir)`` load offline, laid out like a real Hugging Face model:

* ``config.json`` + ``model.safetensors`` + ``generation_config.json``: a Llama architecture (hidden size 32,
  2 layers, 2 heads by default) with random weights, so a few hundred tokens decode in well under a second;
* ``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json``: a byte-level BPE tokenizer trained
  on the fly on ``vocab_words`` with the ``tokenizers`` library. Every byte is in the vocabulary, so any text
  encodes and a character of several UTF-8 bytes may be split over several tokens (what the incremental
  detokenizer of a runtime must handle). ``<s>`` is prepended to every encoding; ``tokenizer_config.json``
  holds a Jinja chat template (``<|role|>`` headers, ``<|end|>`` closing each message), and
  ``generation_config.json`` lists both ``</s>`` and ``<|end|>`` as EOS tokens, as chat models do.

torch, transformers and tokenizers are imported when the function runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["CHAT_TEMPLATE", "DEFAULT_WORDS", "SPECIAL_TOKENS", "build_tiny_llama"]

BOS, EOS, PAD, END = "<s>", "</s>", "<pad>", "<|end|>"
SPECIAL_TOKENS = (BOS, EOS, PAD, "<|system|>", "<|user|>", "<|assistant|>", END)  # ids 0..6, in this order

#: Each message becomes ``<|role|>\ncontent<|end|>\n``; the generation prompt opens the assistant's turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

DEFAULT_WORDS: tuple[str, ...] = (
    "the", "a", "model", "serves", "tokens", "quickly", "and", "slowly", "hello", "world", "cat", "dog", "runs",
    "over", "under", "tree", "river", "blue", "green", "red", "one", "two", "three", "four", "five", "yes", "no",
    "stop", "go", "end", "café", "naïve", "über", "日本", "語", "😀", ".", ",", "!", "?",
)


def _tokenizer_json(words: Sequence[str]) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    # The full byte alphabet: no unknown token is needed, and multi-byte characters may split across tokens.
    trainer = trainers.BpeTrainer(vocab_size=256 + len(SPECIAL_TOKENS) + 4 * len(words), min_frequency=1,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # Words both alone and after a space, as running text has them; repeated so that whole words merge.
    corpus = [" ".join(words)] * 3 + list(words)
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                             special_tokens=[(BOS, 0)])
    return str(tokenizer.to_str())


def build_tiny_llama(directory: str | Path, *, vocab_words: Sequence[str] = DEFAULT_WORDS, seed: int = 0,
                     hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2,
                     max_position_embeddings: int = 512) -> Path:
    """Write a tiny random Llama causal LM with its tokenizer into ``directory`` (created if needed) and
    return it. The same arguments write the same weights and tokenizer. The caller's torch random state is
    left as it was."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if not vocab_words:
        raise ValueError("vocab_words must hold at least one word")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_json = _tokenizer_json(vocab_words)
    (out / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    vocab_size = len(json.loads(tokenizer_json)["model"]["vocab"])
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast", **special, "model_max_length": max_position_embeddings,
        "additional_special_tokens": list(SPECIAL_TOKENS[3:]), "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings, bos_token_id=0, eos_token_id=1, pad_token_id=2,
        tie_word_embeddings=False, initializer_range=0.2,  # wide weights: peaked, varied next-token choices
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).eval()
    # As chat models do, generation ends at the end of the assistant's turn as well as at </s>.
    model.generation_config.eos_token_id = [SPECIAL_TOKENS.index(EOS), SPECIAL_TOKENS.index(END)]
    model.save_pretrained(out)
    return out
