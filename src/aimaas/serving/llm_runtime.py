"""``transformers_llm``: a Hugging Face causal LM from a local directory, streaming text token by token.

The model and tokenizer load with ``local_files_only`` (never a hub call), ``use_safetensors`` (never a pickle)
and ``trust_remote_code=False``; bf16 on CUDA, float32 on CPU. Generation is our own decode loop over the
model's KV cache rather than ``model.generate`` in a thread: each step is one forward pass, so a set ``cancel``
event stops the work within one token, sampling draws from a per-request ``torch.Generator`` (the same
``seed`` gives the same text, whatever else the process does), and stop strings, EOS and token counts are
handled where the tokens are. The ``n`` choices of a request decode together as one batch.

Text leaves through :class:`IncrementalDecoder` (the windowed detokenisation vLLM uses): a piece is released
only once it decodes to whole characters, so a UTF-8 character split over several byte tokens never reaches
the client as a replacement character, and the pieces join to the decoded completion.
"""

from __future__ import annotations

import math
import secrets
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aimaas.errors import AimaasError, InvalidInput
from aimaas.serving.runtime import Generation, GenerationChunk, ModelRuntime, ModelSource

__all__ = ["IncrementalDecoder", "TransformersLLMRuntime"]

_PROMPT_CONTEXT = 5  # prompt tokens decoded with the first completion tokens: their leading space comes out right
_REPLACEMENT = "\ufffd"


class IncrementalDecoder:
    """Text of a growing token sequence, released in pieces that join to ``decode(completion)``.

    ``push(token)`` returns the newly complete text (often ``""``: a partial UTF-8 character, or a special
    token that decodes to nothing); ``flush()`` returns what is still held, at the end of the sequence.
    Decoding a short window (the last released tokens + the new ones) keeps each step O(1) in the length.
    """

    def __init__(self, tokenizer: Any, prompt_ids: Sequence[int]) -> None:
        self._tokenizer = tokenizer
        # The window: tokens released last time (decoded again for context: a SentencePiece word keeps its
        # leading space), then the tokens not released yet. It starts on the end of the prompt.
        self._ids = [int(t) for t in prompt_ids[max(len(prompt_ids) - _PROMPT_CONTEXT, 0):]]
        self._read = len(self._ids)  # window tokens before this index are released

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))

    def push(self, token: int) -> str:
        self._ids.append(int(token))
        return self._release(final=False)

    def flush(self) -> str:
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        before = self._decode(self._ids[:self._read])
        after = self._decode(self._ids)
        if len(after) <= len(before) or (after.endswith(_REPLACEMENT) and not final):
            return ""  # nothing new, or a character whose remaining bytes are still to come
        del self._ids[:self._read]  # what is released now starts the next window
        self._read = len(self._ids)
        return after[len(before):]


@dataclass
class _Choice:
    """One choice's progress: its decoded text, how much of it is released, and its token count."""

    index: int
    decoder: IncrementalDecoder
    text: str = ""  # decoded so far (cut at a stop string once one is found)
    sent: int = 0  # text[:sent] is released (yielded or in ``pending``)
    pending: str = ""  # released, not yet yielded
    tokens: int = 0
    finish: str | None = None
    closed: bool = False  # the last chunk went out


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of ``text`` could start a stop string (kept until the next token)."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best


def _check_request(request: Generation, max_n: int) -> None:
    if (request.prompt is None) == (request.messages is None):
        raise InvalidInput("Give either a prompt or messages (not both).", param="prompt")
    if request.prompt is not None and not isinstance(request.prompt, str):
        raise InvalidInput("prompt must be a string.", param="prompt")
    for i, message in enumerate(request.messages or []):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) \
                or not isinstance(message.get("content"), str):
            raise InvalidInput(f"messages[{i}] must be an object with string 'role' and 'content'.",
                               param=f"messages[{i}]")
    if isinstance(request.max_tokens, bool) or not isinstance(request.max_tokens, int) or request.max_tokens < 1:
        raise InvalidInput(f"max_tokens must be a positive integer; got {request.max_tokens!r}.", param="max_tokens")
    if not isinstance(request.temperature, int | float) or not math.isfinite(request.temperature) \
            or request.temperature < 0:
        raise InvalidInput(f"temperature must be a number >= 0; got {request.temperature!r}.", param="temperature")
    if not isinstance(request.top_p, int | float) or not 0 < request.top_p <= 1:
        raise InvalidInput(f"top_p must be in (0, 1]; got {request.top_p!r}.", param="top_p")
    if isinstance(request.n, bool) or not isinstance(request.n, int) or not 1 <= request.n <= max_n:
        raise InvalidInput(f"n must be an integer from 1 to {max_n}; got {request.n!r}.", param="n")
    if any(not isinstance(s, str) or not s for s in request.stop):
        raise InvalidInput("stop must hold non-empty strings.", param="stop")
    if request.seed is not None and (isinstance(request.seed, bool) or not isinstance(request.seed, int)):
        raise InvalidInput(f"seed must be an integer; got {request.seed!r}.", param="seed")


class TransformersLLMRuntime(ModelRuntime):
    """A causal LM served from ``source.path`` (a Hugging Face directory with safetensors weights).

    Options: ``device`` (default CUDA when available, else CPU), ``dtype`` (a torch dtype name; default
    ``bfloat16`` on CUDA, ``float32`` on CPU) and ``max_n`` (the most choices one request may ask for).

    ``generate`` yields, per choice, pieces of text as they are decoded and then one last chunk with
    ``finish_reason`` (``stop`` for EOS or a stop string, ``length`` at ``max_tokens``, ``cancelled`` when
    ``cancel`` was set) and the token counts: ``prompt_tokens`` (the prompt as the model read it, special tokens
    included) and ``completion_tokens`` (tokens sampled for that choice, an EOS included). A stop string is cut
    from the text together with what follows it; text that may be the start of a stop string is held back
    until the next tokens tell. Bad requests raise InvalidInput naming the field before any work.
    """

    kind = "transformers_llm"
    capabilities = frozenset({"generate"})

    def __init__(self, source: ModelSource, *, device: str | None = None, dtype: str | None = None,
                 max_n: int = 16) -> None:
        super().__init__(source)
        self._device_name = device
        self._dtype_name = dtype
        self.max_n = max_n
        self._model: Any = None
        self._tokenizer: Any = None
        self._eos: frozenset[int] = frozenset()
        self._context = 0

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a replica's log is not a terminal
        path = str(self.source.path)
        device = self._device_name or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = getattr(torch, self._dtype_name or ("bfloat16" if device.startswith("cuda") else "float32"))
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
            model: Any = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, use_safetensors=True,
                                                              trust_remote_code=False, dtype=dtype)
        except (OSError, ValueError, KeyError) as exc:
            raise AimaasError(f"Could not load the language model {self.source.model!r}: {exc}",
                              code="model_load_failed") from exc
        model.to(device).eval()
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(int(tokenizer.eos_token_id))
        self._model, self._tokenizer, self._eos = model, tokenizer, frozenset(eos_ids)
        self._context = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        self.memory_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))

    def close(self) -> None:
        self._model = self._tokenizer = None

    def _loaded(self) -> tuple[Any, Any]:
        if self._model is None:
            raise AimaasError(f"The model {self.source.model!r} is not loaded yet.", code="model_not_loaded")
        return self._model, self._tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone (no BOS or other special token added)."""
        _, tokenizer = self._loaded()
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, request: Generation) -> list[int]:
        """The token ids the model reads for ``request``: the prompt with the tokenizer's special tokens, or the
        messages rendered by the chat template with the generation prompt."""
        _, tokenizer = self._loaded()
        if request.messages is None:
            return [int(t) for t in tokenizer(request.prompt or "")["input_ids"]]
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidInput(f"The model {self.source.model!r} has no chat template; send a prompt instead of "
                               "messages.", param="messages")
        try:
            text = tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        except Exception as exc:  # the template may raise on roles it does not know (jinja2 TemplateError)
            raise InvalidInput(f"The model's chat template refused the messages: {exc}", param="messages") from None
        return [int(t) for t in tokenizer(str(text), add_special_tokens=False)["input_ids"]]

    def generate(self, request: Generation, cancel: threading.Event) -> Iterator[GenerationChunk]:
        model, tokenizer = self._loaded()
        _check_request(request, self.max_n)
        prompt = self.prompt_ids(request)
        param = "messages" if request.messages is not None else "prompt"
        if not prompt:
            raise InvalidInput("The prompt is empty.", param=param)
        if self._context and len(prompt) + request.max_tokens > self._context:
            raise InvalidInput(f"The model reads at most {self._context} tokens; the prompt has {len(prompt)} and "
                               f"max_tokens asks for {request.max_tokens} more. Shorten the {param} or lower "
                               "max_tokens.", param="max_tokens" if len(prompt) < self._context else param)
        return self._decode_loop(model, tokenizer, request, prompt, cancel)

    def _decode_loop(self, model: Any, tokenizer: Any, request: Generation, prompt: list[int],
                     cancel: threading.Event) -> Iterator[GenerationChunk]:
        import torch

        device = next(model.parameters()).device
        generator = torch.Generator(device=device)
        generator.manual_seed(request.seed if request.seed is not None else secrets.randbits(63))
        choices = [_Choice(i, IncrementalDecoder(tokenizer, prompt)) for i in range(request.n)]
        inputs = torch.tensor([prompt] * request.n, dtype=torch.long, device=device)
        cache = None
        reason = "length"
        for _ in range(request.max_tokens):
            if cancel.is_set():
                reason = "cancelled"
                break
            with torch.inference_mode():
                out = model(input_ids=inputs, past_key_values=cache, use_cache=True, logits_to_keep=1)
                cache = out.past_key_values
                tokens = _sample(out.logits[:, -1, :], request.temperature, request.top_p, generator)
            inputs = tokens[:, None]
            for choice, token in zip(choices, tokens.tolist(), strict=True):
                if choice.finish is None:
                    self._advance(choice, int(token), request)
            yield from self._chunks(choices, len(prompt))
            if all(c.finish is not None for c in choices):
                return
        for choice in choices:
            if choice.finish is None:
                self._end(choice, reason, request.stop)
        yield from self._chunks(choices, len(prompt))

    def _advance(self, choice: _Choice, token: int, request: Generation) -> None:
        choice.tokens += 1
        if token in self._eos:
            self._end(choice, "stop", request.stop)
            return
        choice.text += choice.decoder.push(token)
        if request.stop:
            if self._cut_at_stop(choice, request.stop):
                self._release(choice, len(choice.text))
            else:
                self._release(choice, len(choice.text) - _held_back(choice.text, request.stop))
        else:
            self._release(choice, len(choice.text))

    @staticmethod
    def _cut_at_stop(choice: _Choice, stops: Sequence[str]) -> bool:
        """Cut the text at the first stop string and finish the choice; True if one was found.

        Released text never holds the start of a stop string (see :func:`_held_back`), so a stop string always
        starts at or after ``sent`` and searching from a little before it is enough."""
        start = max(choice.sent - max(len(s) for s in stops), 0)
        found = [p for p in (choice.text.find(s, start) for s in stops) if p >= 0]
        if not found:
            return False
        choice.text = choice.text[:min(found)]
        choice.finish = "stop"
        return True

    def _end(self, choice: _Choice, reason: str, stops: Sequence[str]) -> None:
        choice.text += choice.decoder.flush()
        if not (stops and self._cut_at_stop(choice, stops)):
            choice.finish = reason
        self._release(choice, len(choice.text))

    @staticmethod
    def _release(choice: _Choice, upto: int) -> None:
        if upto > choice.sent:
            choice.pending += choice.text[choice.sent:upto]
            choice.sent = upto

    @staticmethod
    def _chunks(choices: list[_Choice], prompt_tokens: int) -> Iterator[GenerationChunk]:
        for choice in choices:
            if choice.closed:
                continue
            if choice.finish is not None:
                choice.closed = True
                yield GenerationChunk(choice.index, choice.pending, choice.finish, prompt_tokens, choice.tokens)
            elif choice.pending:
                yield GenerationChunk(choice.index, choice.pending)
            choice.pending = ""


def _sample(logits: Any, temperature: float, top_p: float, generator: Any) -> Any:
    """Next token per row: argmax at temperature 0, else a draw from the tempered, nucleus-truncated softmax."""
    import torch

    if temperature == 0:
        return logits.argmax(dim=-1)
    scores = logits.float() / temperature
    if top_p < 1:
        ordered, order = scores.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        # Keep the most likely tokens until their mass reaches top_p (the first one always stays).
        ordered[probs.cumsum(dim=-1) - probs > top_p] = -math.inf
        scores = torch.full_like(scores, -math.inf).scatter(-1, order, ordered)
    return torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(-1)
