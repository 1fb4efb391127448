"""Importing external models: ONNX files, zipped Hugging Face directories and GGUF files.

Every input is built here on the fly: ONNX graphs with skl2onnx and ``onnx.helper``, safetensors weights with
``safetensors.numpy``, GGUF files with ``gguf.GGUFWriter``, and hand-crafted broken or hostile variants.
"""

from __future__ import annotations

import json
import pickle
import random
import stat
import struct
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aimaas.errors import InvalidInput, PayloadTooLarge
from aimaas.services.model_imports import (
    check_safetensors,
    detect_import_format,
    inspect_gguf,
    inspect_hf_zip,
    inspect_model,
    inspect_onnx,
)


def _fails(call, code, *args, cls=InvalidInput, **kwargs) -> str:
    with pytest.raises(cls) as err:
        call(*args, **kwargs)
    assert err.value.code == code, err.value.message
    assert err.value.param == "file"
    return err.value.message


# --------------------------------------------------------------------------------------------------- ONNX


@pytest.fixture(scope="module")
def sklearn_onnx() -> bytes:
    """A logistic regression on 4 float features converted by skl2onnx (ZipMap output: a sequence of maps)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = convert_sklearn(LogisticRegression().fit(X, y), initial_types=[("features", FloatTensorType([None, 4]))],
                            target_opset={"": 17, "ai.onnx.ml": 3})
    return model.SerializeToString()


def _helper_model(*, domain: str = "", op: str = "Add", init_dtype=np.float32, meta: dict | None = None):
    """``Y = op(X, W)`` with X of shape ``["batch", 3]``, built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(3, dtype=init_dtype), name="W")
    node = helper.make_node(op, ["X", "W"], ["Y"], domain=domain)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 3])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 3])], [weight])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="handmade")
    model.ir_version = 8
    for key, value in (meta or {}).items():
        onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, key: value})
    return model


def test_onnx_from_skl2onnx(tmp_path, sklearn_onnx):
    path = tmp_path / "lr.onnx"
    path.write_bytes(sklearn_onnx)
    result = inspect_onnx(path)
    assert result.format == "onnx" and result.task == "unknown"
    assert result.signature["inputs"] == [{"name": "features", "type": "tensor(float)", "shape": [None, 4]}]
    outputs = {o["name"]: o for o in result.signature["outputs"]}
    assert outputs["output_label"]["type"] == "tensor(int64)"
    assert outputs["output_probability"]["type"] == "seq(map(int64,tensor(float)))"
    assert result.info["producer"] == "skl2onnx"
    assert set(result.info["opsets"]) == {"", "ai.onnx.ml"}  # skl2onnx writes the lowest opsets the graph needs
    assert all(isinstance(v, int) and v >= 1 for v in result.info["opsets"].values())
    assert result.info["parameters"] == 0 and result.info["nodes"] >= 2  # ai.onnx.ml keeps weights in attributes
    assert "aimaas" not in result.info
    assert "pass a task" in result.notes[0]
    json.dumps(result.info)  # JSON-safe
    assert inspect_onnx(path, task="classification").task == "classification"


def test_onnx_symbolic_dims_and_aimaas_metadata(tmp_path):
    meta = {"aimaas.task": "regression", "aimaas.classes": "null", "aimaas.outputs": '{"prediction": "Y"}',
            "author": "someone"}
    path = tmp_path / "m.onnx"
    path.write_bytes(_helper_model(meta=meta).SerializeToString())
    result = inspect_onnx(path, task="classification")
    assert result.task == "regression"  # our own metadata wins: the runtime relies on it
    assert any("'classification' ignored" in n for n in result.notes)
    assert result.signature == {"inputs": [{"name": "X", "type": "tensor(float)", "shape": ["batch", 3]}],
                                "outputs": [{"name": "Y", "type": "tensor(float)", "shape": ["batch", 3]}]}
    assert result.info["aimaas"] == {"task": "regression", "classes": None, "outputs": {"prediction": "Y"}}
    assert result.info["metadata"] == {"author": "someone"}
    assert result.info["parameters"] == 3 and result.info["producer"] == "handmade"


def test_onnx_custom_op_domain_refused(tmp_path):
    path = tmp_path / "custom.onnx"
    path.write_bytes(_helper_model(domain="com.example", op="FancyOp").SerializeToString())
    message = _fails(inspect_onnx, "onnx_custom_ops", path)
    assert "com.example:FancyOp" in message and "standard ONNX operators" in message


def test_onnx_external_data_refused(tmp_path):
    import onnx

    model = _helper_model()
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
                    size_threshold=0)
    message = _fails(inspect_onnx, "onnx_external_data", path)
    assert "'weights.bin'" in message and "save_as_external_data=False" in message


@pytest.mark.parametrize("damage", ["truncated", "garbage", "checker", "runtime"])
def test_onnx_corrupted(tmp_path, sklearn_onnx, damage):
    from onnx import helper

    if damage == "truncated":
        data = sklearn_onnx[: len(sklearn_onnx) // 2]
    elif damage == "garbage":
        data = bytes(random.Random(1).randrange(256) for _ in range(300))
    elif damage == "checker":  # a node reading an input nobody defines
        model = _helper_model()
        model.graph.node.append(helper.make_node("Relu", ["nowhere"], ["Z"]))
        data = model.SerializeToString()
    else:  # float + int64: the checker does not infer types, ONNX Runtime refuses the graph
        data = _helper_model(init_dtype=np.int64).SerializeToString()
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    message = _fails(inspect_onnx, "invalid_onnx", path)
    assert message.startswith("not a valid ONNX model")
    if damage == "checker":
        assert "onnx.checker" in message
    if damage == "runtime":
        assert "ONNX Runtime" in message


# --------------------------------------------------------------------------------------------- safetensors


def _safetensors(tensors: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save(tensors)


def _raw_safetensors(header: dict, data: bytes, *, length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def _chunks(data: bytes, size: int = 7):
    return (data[i: i + size] for i in range(0, len(data), size))


def test_safetensors_header_summary():
    data = _safetensors({"a": np.zeros((4, 8), np.float32), "b": np.ones(8, np.float16), "c": np.zeros(0, np.int8)})
    summary = check_safetensors(_chunks(data), "model.safetensors")
    assert summary.tensors == {"a", "b", "c"}
    assert summary.parameters == 40 and summary.dtypes == {"F32": 32, "F16": 8, "I8": 0}


_ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\x01\x00", "fewer than the 8-byte header length"),
        (struct.pack("<Q", 2**40) + b"{}", "declares a 1,099,511,627,776-byte header"),
        (struct.pack("<Q", 100) + b'{"a": 1}', "declares a 100-byte header but ends after 8"),
        (_raw_safetensors([1, 2], b""), "not a JSON object"),
        (struct.pack("<Q", 9) + b'{"a": 1,,', "not valid JSON"),
        (struct.pack("<Q", 18) + b'{"a": {}, "a": {}}', "duplicate key"),
        (_raw_safetensors({"t": {"dtype": "F32", "shape": [2]}}, b"\0" * 8), "needs 'dtype', 'shape'"),
        (_raw_safetensors({"t": {**_ENTRY, "dtype": "Q4"}}, b"\0" * 8), "unknown dtype 'Q4'"),
        (_raw_safetensors({"t": {**_ENTRY, "shape": [-2]}}, b"\0" * 8), "non-negative integers"),
        (_raw_safetensors({"t": {**_ENTRY, "data_offsets": [8, 0]}}, b"\0" * 8), "0 <= begin <= end"),
        (_raw_safetensors({"t": {**_ENTRY, "shape": [3]}}, b"\0" * 8), "spans 8 bytes but its F32 shape [3] needs 12"),
        (_raw_safetensors({"t": _ENTRY, "u": {**_ENTRY, "data_offsets": [4, 12]}}, b"\0" * 12), "overlaps"),
        (_raw_safetensors({"t": {**_ENTRY, "data_offsets": [4, 12]}}, b"\0" * 12), "leaves a gap"),
        (_raw_safetensors({"t": _ENTRY}, b"\0" * 5), "cover 8 bytes of data but the file holds 5"),
        (_raw_safetensors({"t": _ENTRY}, b"\0" * 9), "cover 8 bytes of data but the file holds 9"),
        (_raw_safetensors({"t": _ENTRY, "__metadata__": {"k": 1}}, b"\0" * 8), "'__metadata__' must map strings"),
    ],
)
def test_safetensors_invalid(data, needle):
    message = _fails(check_safetensors, "invalid_safetensors", _chunks(data), "w.safetensors")
    assert needle in message and "'w.safetensors'" in message


def test_safetensors_every_truncation_and_corruption_is_an_input_error():
    data = _safetensors({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(5, np.int64)})
    for cut in range(len(data)):
        with pytest.raises(InvalidInput):
            check_safetensors(_chunks(data[:cut], 13), "w.safetensors")
    rng = random.Random(0)
    header_end = 8 + struct.unpack_from("<Q", data)[0]
    outcomes = Counter()
    for _ in range(300):  # flipped header bytes: accepted or refused, never another exception
        damaged = bytearray(data)
        damaged[rng.randrange(header_end)] ^= 1 << rng.randrange(8)
        try:
            check_safetensors(_chunks(bytes(damaged), 13), "w.safetensors")
            outcomes["accepted"] += 1
        except InvalidInput:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 150, outcomes


# ------------------------------------------------------------------------------------------ Hugging Face zip


_LLAMA_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 8,
                 "num_hidden_layers": 1, "vocab_size": 16, "torch_dtype": "float32"}


def _zip(tmp_path: Path, entries: dict[str, bytes | str], name: str = "model.zip", **kwargs) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=kwargs.get("compression", zipfile.ZIP_DEFLATED)) as zf:
        for entry, data in entries.items():
            zf.writestr(entry, data.encode() if isinstance(data, str) else data)
    return path


def _llama_entries(prefix: str = "") -> dict[str, bytes | str]:
    weights = {"embed.weight": np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32),
               "norm.weight": np.ones(8, np.float16)}
    return {
        f"{prefix}config.json": json.dumps(_LLAMA_CONFIG),
        f"{prefix}model.safetensors": _safetensors(weights),
        f"{prefix}tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "BPE"}}),
        f"{prefix}tokenizer_config.json": json.dumps({"chat_template": "{% for m in messages %}{{ m }}{% endfor %}"}),
        f"{prefix}generation_config.json": "{}",
        f"{prefix}README.md": "# tiny llama",
        f"{prefix}LICENSE": "MIT",
        f"{prefix}.gitattributes": "*.safetensors filter=lfs",
        "__MACOSX/._config.json": b"\x00\x05\x16\x07",
    }


def test_hf_causal_lm_in_a_top_level_folder(tmp_path):
    path = _zip(tmp_path, _llama_entries("tiny-llama/"))
    result = inspect_hf_zip(path)
    assert result.format == "safetensors" and result.task == "text-generation"
    info = result.info
    assert info["model_type"] == "llama" and info["architectures"] == ["LlamaForCausalLM"]
    assert info["parameters"] == 16 * 8 + 8 and info["dtypes"] == {"F32": 128, "F16": 8}
    assert info["has_tokenizer"] and info["has_chat_template"] and not info["sentence_transformers"]
    assert info["root"] == "tiny-llama/"
    assert [f["name"] for f in info["files"]] == ["LICENSE", "README.md", "config.json", "generation_config.json",
                                                  "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    assert info["weights"] == [{"file": "model.safetensors", "tensors": 2, "parameters": 136}]
    assert info["config"] == {"hidden_size": 8, "num_hidden_layers": 1, "vocab_size": 16, "torch_dtype": "float32"}
    assert result.signature["inputs"][0]["name"] == "prompt"
    notes = " ".join(result.notes)
    assert "'tiny-llama/'" in notes and "LlamaForCausalLM" in notes and "ignored 2 hidden or archiver" in notes
    json.dumps(info)
    assert inspect_hf_zip(path, task="summarization").task == "summarization"


def test_hf_sentence_transformers_is_an_embedding_model(tmp_path):
    entries = {
        "config.json": json.dumps({"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 4}),
        "model.safetensors": _safetensors({"emb": np.zeros((10, 4), np.float32)}),
        "modules.json": json.dumps([{"idx": 0, "name": "0", "path": "",
                                     "type": "sentence_transformers.models.Transformer"}]),
        "1_Pooling/config.json": json.dumps({"word_embedding_dimension": 4}),
        "vocab.txt": "[PAD]\n[UNK]\nhello\n",
        "sentence_bert_config.json": "{}",
    }
    result = inspect_hf_zip(_zip(tmp_path, entries))
    assert result.task == "embedding" and result.info["sentence_transformers"]
    assert result.info["has_tokenizer"] and not result.info["has_chat_template"]
    assert result.signature["outputs"] == [{"name": "embedding", "type": "float32", "shape": [None, 4]}]


def test_hf_classifier_and_sharded_weights(tmp_path):
    config = {"model_type": "roberta", "architectures": ["RobertaForSequenceClassification"],
              "id2label": {"1": "positive", "0": "negative", "10": "mixed"}}
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                            "b": "model-00002-of-00002.safetensors"}}
    entries = {
        "config.json": json.dumps(config),
        "model-00001-of-00002.safetensors": _safetensors({"a": np.zeros((3, 2), np.float32)}),
        "model-00002-of-00002.safetensors": _safetensors({"b": np.zeros(5, np.float32)}),
        "model.safetensors.index.json": json.dumps(index),
        "consolidated.safetensors": _safetensors({"a": np.zeros((3, 2), np.float32), "b": np.zeros(5, np.float32)}),
    }
    result = inspect_hf_zip(_zip(tmp_path, entries))
    assert result.task == "text-classification"
    assert result.info["labels"] == ["negative", "positive", "mixed"]
    assert result.info["parameters"] == 11  # the consolidated copy is not counted twice
    assert any("consolidated.safetensors" in n for n in result.notes)
    assert result.signature["outputs"][1] == {"name": "probabilities", "type": "float32", "shape": [None, 3]}

    index["weight_map"]["c"] = "model-00003-of-00003.safetensors"
    entries["model.safetensors.index.json"] = json.dumps(index)
    message = _fails(inspect_hf_zip, "missing_shard", _zip(tmp_path, entries, "missing.zip"))
    assert "'model-00003-of-00003.safetensors'" in message


@pytest.mark.parametrize(
    ("extra", "code", "needles"),
    [
        ({"pytorch_model.bin": b"\x80\x04pickle"}, "pickle_refused", ["'pytorch_model.bin'", "safetensors"]),
        ({"training_args.bin": b"x", "rng.pth": b"x"}, "pickle_refused", ["'training_args.bin'", "'rng.pth'"]),
        ({".cache/state.pkl": b"x"}, "pickle_refused", ["'.cache/state.pkl'"]),
        ({"flax_model.msgpack": b"x"}, "pickle_refused", ["'flax_model.msgpack'"]),
        ({"modeling_custom.py": "import os"}, "code_refused", ["'modeling_custom.py'", "trust_remote_code"]),
        ({"onnx/model.onnx": b"x"}, "unsupported_model_file", ["'onnx/model.onnx'", "Allowed:"]),
        ({"Config.json": "{}"}, "unsafe_archive", ["'Config.json'", "same file"]),
    ],
)
def test_hf_refused_members(tmp_path, extra, code, needles):
    entries = {**_llama_entries(), **extra}
    message = _fails(inspect_hf_zip, code, _zip(tmp_path, entries))
    assert all(n in message for n in needles), message


def test_hf_unsafe_archives(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr(zipfile.ZipInfo("../evil.safetensors"), "x")
    assert "outside the archive" in _fails(inspect_hf_zip, "unsafe_archive", path)

    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("model.safetensors")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    assert "symbolic link" in _fails(inspect_hf_zip, "unsafe_archive", path)

    bomb = _zip(tmp_path, {"config.json": "{}", "notes.txt": b"\x00" * (3 * 1024 * 1024)}, "bomb.zip")
    message = _fails(inspect_hf_zip, "archive_too_large", bomb, cls=PayloadTooLarge)
    assert "zip bomb" in message and "'notes.txt'" in message

    many = _zip(tmp_path, _llama_entries(), "many.zip")
    assert "entries" in _fails(inspect_hf_zip, "archive_too_large", many, cls=PayloadTooLarge, max_entries=4)
    assert "expands to" in _fails(inspect_hf_zip, "archive_too_large", many, cls=PayloadTooLarge, max_bytes=500)


@pytest.mark.parametrize(
    ("change", "code", "needle"),
    [
        ({"config.json": None}, "missing_config", "no config.json"),
        ({"config.json": "[1, 2]"}, "invalid_config", "JSON object"),
        ({"config.json": "{oops"}, "invalid_json", "'config.json' is not valid"),
        ({"model.safetensors": None}, "missing_weights", "no .safetensors"),
        ({"model.safetensors": _raw_safetensors({"t": _ENTRY}, b"\0" * 4)}, "invalid_safetensors", "holds 4"),
    ],
)
def test_hf_missing_or_invalid_parts(tmp_path, change, code, needle):
    entries = {k: v for k, v in {**_llama_entries(), **change}.items() if v is not None}
    assert needle in _fails(inspect_hf_zip, code, _zip(tmp_path, entries))


# ------------------------------------------------------------------------------------------------------ GGUF


def _write_gguf(path: Path, *, arch: str = "llama", endian=None, extra=None) -> Path:
    import gguf

    kwargs = {"endianess": endian} if endian is not None else {}
    writer = gguf.GGUFWriter(path, arch, **kwargs)
    writer.add_name("tiny")
    writer.add_context_length(2048)
    writer.add_block_count(2)
    writer.add_embedding_length(32)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"tok{i}" for i in range(10)])
    writer.add_token_scores([0.0] * 10)
    writer.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    if extra:
        extra(writer)
    writer.add_tensor("token_embd.weight", np.ones((4, 32), np.float16))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((2, 34), np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("output_norm.weight", np.ones(32, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def gguf_file(tmp_path) -> Path:
    return _write_gguf(tmp_path / "tiny.gguf")


def test_gguf_header(gguf_file):
    import gguf

    result = inspect_gguf(gguf_file)
    assert result.format == "gguf" and result.task == "text-generation"
    info = result.info
    assert {k: info[k] for k in ("version", "endianness", "architecture", "name", "context_length", "block_count",
                                 "embedding_length", "file_type", "tokenizer_model", "vocab_size",
                                 "has_chat_template", "tensor_count", "alignment")} == {
        "version": 3, "endianness": "little", "architecture": "llama", "name": "tiny", "context_length": 2048,
        "block_count": 2, "embedding_length": 32, "file_type": "Q8_0", "tokenizer_model": "llama",
        "vocab_size": 10, "has_chat_template": True, "tensor_count": 3, "alignment": 32}
    assert info["tensor_types"] == {"F16": 1, "Q8_0": 1, "F32": 1}
    reader = gguf.GGUFReader(gguf_file)  # the reference reader agrees on the parameter count
    assert info["parameters"] == sum(int(t.n_elements) for t in reader.tensors) == 128 + 64 + 32
    assert result.signature["inputs"] == [{"name": "prompt", "type": "string", "shape": [None]}]
    json.dumps(info)


def test_gguf_big_endian_embedding_model(tmp_path):
    import gguf

    path = _write_gguf(tmp_path / "bert.gguf", arch="bert", endian=gguf.GGUFEndian.BIG,
                       extra=lambda w: w.add_pooling_type(gguf.PoolingType.MEAN))
    result = inspect_gguf(path)
    assert result.info["endianness"] == "big" and result.info["architecture"] == "bert"
    assert result.task == "embedding" and result.signature["outputs"][0]["shape"] == [None, 32]
    assert result.info["parameters"] == 224


def test_gguf_split_model_refused(tmp_path):
    path = _write_gguf(tmp_path / "part.gguf", extra=lambda w: w.add_uint16("split.count", 3))
    assert "llama-gguf-split --merge" in _fails(inspect_gguf, "split_gguf", path)


def test_gguf_every_truncation_is_an_input_error(gguf_file, tmp_path):
    data = gguf_file.read_bytes()
    codes, messages = set(), []
    for cut in [*range(4, 700), *range(700, len(data) - 1, 16)]:  # every byte of the header, then every 16
        cut_path = tmp_path / f"cut{cut}.gguf"  # a new file: truncating one in place costs ~1-3 ms here
        cut_path.write_bytes(data[:cut])
        try:
            inspect_gguf(cut_path)
        except InvalidInput as exc:
            codes.add(exc.code)
            messages.append(exc.message)
        else:
            raise AssertionError(f"a file cut at byte {cut} was accepted")
    assert codes == {"invalid_gguf"} and "truncated" in messages[-1]


def test_gguf_corruption_never_crashes(gguf_file, tmp_path):
    data = gguf_file.read_bytes()
    rng = random.Random(0)
    outcomes = Counter()
    for i in range(300):
        damaged = bytearray(data)
        damaged[rng.randrange(4, 700)] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flip{i}.gguf"
        path.write_bytes(bytes(damaged))
        try:
            inspect_gguf(path)
            outcomes["accepted"] += 1
        except InvalidInput:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 50 and outcomes["accepted"] > 50, outcomes  # names and values may change freely


def _gguf_header(n_tensors: int, n_kv: int, body: bytes = b"", version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + body


def _kv_string(key: str, length: int | None = None, value: bytes = b"") -> bytes:
    k = key.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<IQ", 8, len(value) if length is None else length) + value


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (_gguf_header(2**62, 0, b"\0" * 64), "declares 4,611,686,018,427,387,904 tensors"),
        (_gguf_header(0, 2**62, b"\0" * 64), "declares 4,611,686,018,427,387,904 key/values"),
        (_gguf_header(0, 1, _kv_string("general.name", 2**60)), "needs 1,152,921,504,606,846,976 bytes"),
        (_gguf_header(0, 1, struct.pack("<Q", 2000) + b"k" * 2000 + b"\0" * 16), "longer than 1024 bytes"),
        (_gguf_header(0, 1, struct.pack("<Q", 4) + b"toks" + struct.pack("<IIQ", 9, 8, 2**40) + b"\0" * 16),
         "declares 1,099,511,627,776 items"),
        (_gguf_header(0, 1, struct.pack("<Q", 4) + b"nums" + struct.pack("<IIQ", 9, 6, 2**40)), "'nums'"),
        (_gguf_header(0, 2, _kv_string("a", value=b"x") * 2), "appears twice"),
        (_gguf_header(0, 1, struct.pack("<Q", 1) + b"a" + struct.pack("<I", 42) + b"\0" * 8), "value type 42"),
        (_gguf_header(0, 0, version=1), "version 1"),
        (_gguf_header(0, 0, version=7), "version 7"),
        (_gguf_header(0, 1, _kv_string("general.architecture", value=b"llama")), "holds no tensors"),
    ],
)
def test_gguf_hostile_headers(tmp_path, data, needle):
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    message = _fails(inspect_gguf, "invalid_gguf", path)
    assert needle in message, message


def _tensor_info(name: bytes, dims: tuple[int, ...], ggml_type: int, offset: int) -> bytes:
    return struct.pack("<Q", len(name)) + name + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, ggml_type, offset)


_W4 = _tensor_info(b"w", (4,), 0, 0)


@pytest.mark.parametrize(
    ("infos", "needle"),
    [
        ([_tensor_info(b"w", (1024,), 0, 0)], "'w' ends at byte 4,160 but the file has 256 bytes"),
        ([_tensor_info(b"w", (4,), 99, 0)], "ggml type 99"),
        ([_tensor_info(b"w", (4,), 0, 8)], "offset 8, not a multiple of 32"),
        ([_tensor_info(b"w", (16,), 8, 0)], "16 columns, not a multiple of Q8_0's block of 32"),
        ([_tensor_info(b"w", (1, 1, 1, 1, 1), 0, 0)], "5 dimensions"),
        ([_W4, _tensor_info(b"w", (4,), 0, 32)], "'w' appears twice"),
        ([_tensor_info(b"w", (16,), 0, 0), _tensor_info(b"v", (4,), 0, 32)], "'w' and 'v' overlap"),
    ],
)
def test_gguf_bad_tensor_infos(tmp_path, infos, needle):
    path = tmp_path / "bad.gguf"
    path.write_bytes(_gguf_header(len(infos), 0, b"".join(infos)).ljust(256, b"\0"))
    message = _fails(inspect_gguf, "invalid_gguf", path)
    assert needle in message, message


# ------------------------------------------------------------------------------------------- detect + dispatch


def test_detect_and_inspect_each_format(tmp_path, sklearn_onnx, gguf_file):
    onnx_path = tmp_path / "upload-1"
    onnx_path.write_bytes(sklearn_onnx)
    zip_path = _zip(tmp_path, _llama_entries())
    assert detect_import_format(onnx_path, "classifier.ONNX") == "onnx"
    assert detect_import_format(zip_path, "llama.zip") == "hf_zip"
    assert detect_import_format(gguf_file, "whatever.gguf") == "gguf"
    assert detect_import_format(gguf_file, "ggml-model-q8_0.bin") == "gguf"  # the magic wins over a pickle-ish name
    assert inspect_model(onnx_path, "classifier.onnx").format == "onnx"
    assert inspect_model(zip_path, "my model").task == "text-generation"
    assert inspect_model(gguf_file, "tiny.gguf", task="chat").task == "chat"


@pytest.mark.parametrize(
    ("content", "filename", "code", "needle"),
    [
        (pickle.dumps({"w": [1.0]}, protocol=4), "weights.dat", "pickle_refused", "pickle (protocol 4)"),
        (pickle.dumps({"w": [1.0]}, protocol=2), "model.onnx", "pickle_refused", "pickle-based checkpoints"),
        (b"PK\x03\x04" + b"\0" * 40, "model.pt", "pickle_refused", "convert to safetensors or ONNX"),
        (b"anything", "C:\\models\\pytorch_model.bin", "pickle_refused", "'pytorch_model.bin' is a .bin"),
        (_safetensors({"a": np.zeros(2, np.float32)}), "model.safetensors", "missing_config", "zip the whole"),
        (_safetensors({"a": np.zeros(2, np.float32)}), "weights", "missing_config", "config.json"),
        (b"\xff\xfe garbage", "model.onnx", "invalid_onnx", "does not start like an ONNX model"),
        (b"\x89HDF\r\n\x1a\n", "model.h5", "unsupported_model_format", ".h5 files are not accepted"),
        (b"", "model.gguf", "unsupported_model_format", "The file is empty"),
        (b"hello", "notes.txt", "unsupported_model_format", "Could not recognise 'notes.txt'"),
    ],
)
def test_detect_refusals(tmp_path, content, filename, code, needle):
    path = tmp_path / "upload"
    path.write_bytes(content)
    message = _fails(detect_import_format, code, path, filename)
    assert needle in message, message


def test_invalid_task_names_the_parameter(tmp_path, gguf_file):
    with pytest.raises(InvalidInput) as err:
        inspect_gguf(gguf_file, task="Text Generation!")
    assert err.value.param == "task" and "kebab" not in err.value.message and "lower-case" in err.value.message
