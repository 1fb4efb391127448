"""The transformers LLM runtime on a tiny random Llama: streaming, sampling, stops, choices, cancel, counts."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from aimaas.errors import InvalidInput
from aimaas.serving.runtime import Generation, GenerationChunk, ModelSource, runtime_for

pytest.importorskip("transformers")
pytest.importorskip("torch")

from aimaas.serving.llm_runtime import IncrementalDecoder, TransformersLLMRuntime  # noqa: E402
from aimaas.testing.tiny_llm import CHAT_TEMPLATE, build_tiny_llama  # noqa: E402

PROMPT = "hello world"


def load(path: Path) -> TransformersLLMRuntime:
    runtime = runtime_for(ModelSource(path=path, format="safetensors", task="text-generation", model="tiny"))
    assert isinstance(runtime, TransformersLLMRuntime)
    runtime.load()
    return runtime


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def runtime(model_dir: Path) -> TransformersLLMRuntime:
    return load(model_dir)


def run(runtime: TransformersLLMRuntime, cancel: threading.Event | None = None,
        **kwargs: Any) -> list[GenerationChunk]:
    kwargs.setdefault("prompt", PROMPT)
    return list(runtime.generate(Generation(**kwargs), cancel or threading.Event()))


def text_of(chunks: list[GenerationChunk], index: int = 0) -> str:
    return "".join(c.text for c in chunks if c.index == index)


def last(chunks: list[GenerationChunk], index: int = 0) -> GenerationChunk:
    mine = [c for c in chunks if c.index == index]
    assert [c.finish_reason is not None for c in mine].count(True) == 1 and mine[-1].finish_reason is not None
    return mine[-1]


def hf_greedy(runtime: TransformersLLMRuntime, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """The completion ids of transformers' own greedy generate (EOS included when reached)."""
    import torch

    model, tokenizer = runtime._loaded()
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    return [int(t) for t in out[0, len(prompt_ids):]]


def test_streamed_greedy_text_equals_transformers_generate(runtime: TransformersLLMRuntime) -> None:
    _, tokenizer = runtime._loaded()
    prompt_ids = runtime.prompt_ids(Generation(prompt=PROMPT))
    expected_ids = hf_greedy(runtime, prompt_ids, 40)
    chunks = run(runtime, max_tokens=40, temperature=0)
    assert all(c.text for c in chunks[:-1])  # no empty piece before the last chunk
    assert all(c.finish_reason is None and c.completion_tokens == 0 for c in chunks[:-1])
    assert text_of(chunks) == tokenizer.decode(expected_ids, skip_special_tokens=True,
                                               clean_up_tokenization_spaces=False)
    end = last(chunks)
    assert end.completion_tokens == len(expected_ids)
    assert end.finish_reason == ("stop" if expected_ids[-1] in runtime._eos else "length")
    assert run(runtime, max_tokens=40, temperature=0) == chunks  # greedy is deterministic


def test_max_tokens_ends_with_length_and_counts(runtime: TransformersLLMRuntime) -> None:
    chunks = run(runtime, max_tokens=7, temperature=0)
    end = last(chunks)
    assert (end.finish_reason, end.completion_tokens, end.prompt_tokens) == ("length", 7, 3)  # <s> hello Ġworld
    assert runtime.count_tokens(PROMPT) == 2  # no BOS: the text alone
    assert runtime.count_tokens("") == 0


def test_seed_reproduces_sampling(runtime: TransformersLLMRuntime) -> None:
    texts = {seed: text_of(run(runtime, max_tokens=16, temperature=1.0, seed=seed)) for seed in (1, 2, 3)}
    assert text_of(run(runtime, max_tokens=16, temperature=1.0, seed=2)) == texts[2]
    assert len(set(texts.values())) > 1
    # A vanishing top_p keeps only the most likely token: sampling becomes greedy.
    greedy = text_of(run(runtime, max_tokens=16, temperature=0))
    assert text_of(run(runtime, max_tokens=16, temperature=1.0, top_p=1e-9, seed=5)) == greedy


def test_stop_strings_are_cut_and_never_streamed(runtime: TransformersLLMRuntime) -> None:
    full = text_of(run(runtime, max_tokens=40, temperature=0))
    stop = next(full[i:i + 3] for i in range(4, len(full) - 3) if "\ufffd" not in full[i:i + 3])
    cut = full[:full.find(stop)]
    chunks = run(runtime, max_tokens=40, temperature=0, stop=["never-there", stop])
    assert text_of(chunks) == cut
    assert last(chunks).finish_reason == "stop"
    assert last(chunks).completion_tokens < 40
    assert not any(stop in c.text for c in chunks)


def test_eos_token_ends_the_choice(runtime: TransformersLLMRuntime, model_dir: Path, tmp_path: Path) -> None:
    _, tokenizer = runtime._loaded()
    ids = hf_greedy(runtime, runtime.prompt_ids(Generation(prompt=PROMPT)), 6)
    eos = ids[3]
    copy = Path(shutil.copytree(model_dir, tmp_path / "model"))
    config = json.loads((copy / "generation_config.json").read_text())
    (copy / "generation_config.json").write_text(json.dumps({**config, "eos_token_id": [1, eos]}))
    chunks = run(load(copy), max_tokens=20, temperature=0)
    end = last(chunks)
    assert (end.finish_reason, end.completion_tokens) == ("stop", ids.index(eos) + 1)
    assert text_of(chunks) == tokenizer.decode(ids[:ids.index(eos)], skip_special_tokens=True,
                                               clean_up_tokenization_spaces=False)


def test_n_choices_stream_with_their_index(runtime: TransformersLLMRuntime) -> None:
    chunks = run(runtime, max_tokens=12, temperature=1.0, seed=11, n=2)
    assert {c.index for c in chunks} == {0, 1}
    ends = [last(chunks, i) for i in (0, 1)]
    assert all(e.prompt_tokens == 3 and 1 <= e.completion_tokens <= 12 for e in ends)
    assert text_of(chunks, 0) != text_of(chunks, 1)
    assert run(runtime, max_tokens=12, temperature=1.0, seed=11, n=2) == chunks
    greedy = run(runtime, max_tokens=12, temperature=0, n=2)
    assert text_of(greedy, 0) == text_of(greedy, 1) == text_of(run(runtime, max_tokens=12, temperature=0))


def test_messages_go_through_the_chat_template(runtime: TransformersLLMRuntime) -> None:
    _, tokenizer = runtime._loaded()
    assert tokenizer.chat_template == CHAT_TEMPLATE
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    ids = runtime.prompt_ids(Generation(messages=messages))
    rendered = tokenizer.decode(ids)
    assert rendered == "<s><|system|>\nbe brief<|end|>\n<|user|>\nhello<|end|>\n<|assistant|>\n"
    assert ids.count(tokenizer.bos_token_id) == 1  # the template's BOS only, none added on top
    chunks = run(runtime, prompt=None, messages=messages, max_tokens=8, temperature=0)
    assert last(chunks).prompt_tokens == len(ids)
    assert text_of(chunks) == tokenizer.decode(hf_greedy(runtime, ids, 8), skip_special_tokens=True,
                                               clean_up_tokenization_spaces=False)


def test_cancel_stops_within_one_token(runtime: TransformersLLMRuntime) -> None:
    cancel = threading.Event()
    seen: list[GenerationChunk] = []
    for chunk in runtime.generate(Generation(prompt=PROMPT, max_tokens=200, temperature=0), cancel):
        seen.append(chunk)
        if chunk.finish_reason is None and not cancel.is_set():
            cancel.set()
            at = len(seen)
    end = last(seen)
    assert end.finish_reason == "cancelled"
    assert len(seen) == at + 1  # only the closing chunk came after the cancel
    assert end.completion_tokens <= 4  # the first piece may need a few byte tokens
    cancelled = threading.Event()
    cancelled.set()
    assert run(runtime, cancel=cancelled, max_tokens=5) == [GenerationChunk(0, "", "cancelled", 3, 0)]


def test_incremental_decoder_never_splits_a_character(runtime: TransformersLLMRuntime) -> None:
    _, tokenizer = runtime._loaded()
    text = "hello 中文 straße 🙂 world"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split()) + 6  # the CJK, ß and emoji bytes are separate tokens
    decoder = IncrementalDecoder(tokenizer, tokenizer("say:")["input_ids"])
    pieces = [decoder.push(t) for t in ids] + [decoder.flush()]
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)
    assert "" in pieces  # held while a character was incomplete
    # A byte sequence that never completes comes out as the replacement character at the end.
    lone = tokenizer.convert_tokens_to_ids("\u00e4")  # byte 0xE4 starts a 3-byte character
    broken = IncrementalDecoder(tokenizer, [])
    assert broken.push(lone) == "" and broken.flush() == "\ufffd"


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"max_tokens": 0}, "max_tokens"),
    ({"temperature": -1.0}, "temperature"),
    ({"top_p": 0.0}, "top_p"),
    ({"n": 0}, "n"),
    ({"stop": [""]}, "stop"),
    ({"messages": [{"role": "user", "content": "x"}]}, "prompt"),
    ({"prompt": None, "messages": [{"role": "user"}]}, "messages[0]"),
    ({"max_tokens": 600}, "max_tokens"),
    ({"prompt": "hello " * 600}, "prompt"),
])
def test_bad_requests_name_the_field(runtime: TransformersLLMRuntime, kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as err:
        run(runtime, **kwargs)
    assert err.value.param == param


def test_tiny_llama_is_reproducible_and_leaves_the_rng_alone(model_dir: Path, tmp_path: Path) -> None:
    import torch

    torch.manual_seed(123)
    expected_draw = torch.rand(1)
    torch.manual_seed(123)
    again = build_tiny_llama(tmp_path / "again")
    assert torch.rand(1) == expected_draw  # the caller's random state is untouched
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"):
        assert (again / name).read_bytes() == (model_dir / name).read_bytes(), name
    other = build_tiny_llama(tmp_path / "other", vocab_words=["only", "these", "words"], seed=1)
    assert json.loads((other / "config.json").read_text())["vocab_size"] < 300
    assert (other / "model.safetensors").read_bytes() != (model_dir / "model.safetensors").read_bytes()
