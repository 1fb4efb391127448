"""The ``text_transformer`` trainer: BPE tokenizer + Transformer encoder trained from scratch, its epoch events,
checkpoints and resume, ONNX export with dynamic batch and length, and safetensors weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")

from aimaas.errors import Conflict, InvalidInput  # noqa: E402
from aimaas.training import get_trainer, model_metadata, parity, run_onnx  # noqa: E402
from aimaas.training.onnx_check import onnx_feed  # noqa: E402
from aimaas.training.text_tokenizer import encode_texts, train_tokenizer  # noqa: E402
from aimaas.training.torch_text import TextTransformerTrainer  # noqa: E402

from ._text_data import topic_texts  # noqa: E402

# Small and quick: the topic words are easy to find, so a narrow network learns them in a few epochs.
QUICK = {"d_model": 32, "ff_dim": 64, "n_heads": 4, "batch_size": 32, "lr": 3e-3}
EPOCH_KEYS = {"event", "epoch", "epochs", "loss", "valid_score", "elapsed_s"}


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    X, y = topic_texts(240, seed=0)
    X_test, y_test = topic_texts(90, seed=1)
    events: list[dict[str, Any]] = []
    trainer = get_trainer("text_transformer")(max_epochs=25, patience=4, **QUICK)
    result = trainer.fit(X, y, report=events.append)
    return {"trainer": trainer, "result": result, "events": events, "X_test": X_test, "y_test": y_test}


def test_learns_the_topics_and_reports_each_epoch(fitted: dict[str, Any]) -> None:
    trainer, result, events = fitted["trainer"], fitted["result"], fitted["events"]
    accuracy = float(np.mean(trainer.predict(fitted["X_test"]) == fitted["y_test"].to_numpy()))
    assert accuracy >= 0.9, accuracy
    assert result.classes == ["computing", "cooking", "sports"] and result.features == ["text"]
    assert result.valid_score is not None and result.valid_score >= 0.9
    assert result.extra["valid_rows"] == 24 and result.extra["train_rows"] == 216  # 10 % held out, stratified
    assert result.extra["stop_reason"] in {"early_stopping", "max_epochs"}
    epochs = [e for e in events if e["event"] == "epoch"]
    assert len(epochs) == result.extra["epochs"] and [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
    assert all(set(e) >= EPOCH_KEYS and e["epochs"] == 25 for e in epochs)
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert events[0]["event"] == "fit_started" and events[-1]["event"] == "fit_finished"
    json.dumps(result.to_dict())


def test_onnx_has_dynamic_token_inputs_and_matches(fitted: dict[str, Any]) -> None:
    trainer, X_test = fitted["trainer"], fitted["X_test"]
    blob = trainer.export_onnx(X_test.head(3))
    assert blob[:1] != b"\x80"  # not a pickle
    model = onnx.load_from_string(blob)
    onnx.checker.check_model(model, full_check=True)
    assert {node.domain for node in model.graph.node} <= {""}
    for inp in model.graph.input:
        assert inp.name in {"input_ids", "attention_mask"}
        assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
        assert [d.dim_param for d in inp.type.tensor_type.shape.dim] == ["N", "L"]
    meta = model_metadata(blob)
    assert meta["input_kind"] == "text_tokens" and meta["max_length"] == 128
    assert meta["outputs"] == {"label": "label", "probabilities": "probabilities"}
    assert meta["classes"] == ["computing", "cooking", "sports"] and meta["params"]["d_model"] == 32
    assert json.loads(json.dumps(meta["tokenizer"]))["model"]["type"] == "BPE"
    report = parity(trainer, blob, X_test)
    assert report["label_agreement"] == 1.0 and report["max_abs_diff_proba"] < 1e-4
    # Other batch sizes and lengths than the traced sample: one row, an empty text, a text past max_length.
    odd = pd.DataFrame({"text": ["", "oven", "the match " * 200, None, "Compile the PYTHON code!"]})
    feed = onnx_feed(odd, meta)
    assert feed["input_ids"].shape == (5, 128) and feed["attention_mask"][0].tolist()[:3] == [1, 1, 0]
    for rows in (odd, odd.head(1), odd.tail(1)):
        assert parity(trainer, blob, rows)["max_abs_diff_proba"] < 1e-4
    out = run_onnx(blob, odd.tail(1))
    assert out.labels is not None and out.labels.tolist() == ["computing"]


def test_weights_round_trip_through_safetensors(fitted: dict[str, Any]) -> None:
    trainer, X_test = fitted["trainer"], fitted["X_test"]
    files = trainer.export_weights()
    assert set(files) == {"weights.safetensors", "config.json", "tokenizer.json"}
    assert all(data[:1] != b"\x80" for data in files.values())
    config = json.loads(files["config.json"])
    assert config["classes"] == ["computing", "cooking", "sports"] and config["net"]["d_model"] == 32
    assert json.loads(files["tokenizer.json"])["model"]["type"] == "BPE"
    again = TextTransformerTrainer.from_weights(files)
    np.testing.assert_array_equal(again.predict_proba(X_test), trainer.predict_proba(X_test))
    assert again.classes == trainer.classes
    with pytest.raises(InvalidInput):
        TextTransformerTrainer.from_weights({**files, "weights.safetensors": b"not safetensors"})
    with pytest.raises(InvalidInput):
        TextTransformerTrainer.from_weights({**files, "tokenizer.json": b"{}"})
    with pytest.raises(InvalidInput):
        TextTransformerTrainer.from_weights({"config.json": files["config.json"]})


def test_checkpoint_resume_continues_where_it_stopped(tmp_path: Path) -> None:
    X, y = topic_texts(90, seed=2)
    params = {**QUICK, "patience": None}
    first: list[dict[str, Any]] = []
    get_trainer("text_transformer")(max_epochs=2, **params).fit(X, y, report=first.append, checkpoint_dir=tmp_path)
    assert [e["epoch"] for e in first if e["event"] == "epoch"] == [1, 2]
    names = {p.name for p in tmp_path.iterdir()}
    assert {"state.json", "tokenizer.json"} <= names and not any(n.endswith((".pt", ".pkl", ".tmp")) for n in names)

    second: list[dict[str, Any]] = []
    resumed = get_trainer("text_transformer")(max_epochs=4, **params)
    result = resumed.fit(X, y, report=second.append, checkpoint_dir=tmp_path)
    assert second[1]["event"] == "resumed" and second[1]["epoch"] == 2
    assert [e["epoch"] for e in second if e["event"] == "epoch"] == [3, 4]
    assert result.extra["resumed_from"] == 2 and result.extra["epochs"] == 4

    # Every epoch reseeds from (seed, epoch): the resumed model is the one an uninterrupted fit makes.
    straight = get_trainer("text_transformer")(max_epochs=4, **params)
    straight.fit(X, y)
    np.testing.assert_array_equal(resumed.predict_proba(X), straight.predict_proba(X))
    assert resumed.export_onnx(X.head()) == straight.export_onnx(X.head())

    # Other data: the checkpoint does not fit it, so training starts over (and says so).
    other: list[dict[str, Any]] = []
    X2, y2 = topic_texts(90, seed=5)
    result = get_trainer("text_transformer")(max_epochs=1, **params).fit(X2, y2, report=other.append,
                                                                           checkpoint_dir=tmp_path)
    assert result.extra["resumed_from"] is None and "resumed" not in [e["event"] for e in other]


def test_a_raising_report_stops_the_fit(tmp_path: Path) -> None:
    X, y = topic_texts(60, seed=3)

    class Cancelled(Exception):
        pass

    def report(event: dict[str, Any]) -> None:
        if event["event"] == "epoch" and event["epoch"] == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        get_trainer("text_transformer")(max_epochs=10, **QUICK).fit(X, y, report=report, checkpoint_dir=tmp_path)
    assert json.loads((tmp_path / "state.json").read_text())["epoch"] == 2  # the epoch's checkpoint was kept


def test_budget_given_validation_rows_and_unseen_classes() -> None:
    X, y = topic_texts(60, seed=4)
    X_valid, y_valid = topic_texts(12, seed=6)
    y_valid = y_valid.where(y_valid != "sports", "gardening")
    trainer = get_trainer("text_transformer")(max_epochs=50, max_seconds=0.0, **QUICK)
    result = trainer.fit(X, y, X_valid=X_valid, y_valid=y_valid)
    assert result.extra["stop_reason"] == "max_seconds" and result.extra["epochs"] == 1
    assert result.extra["valid_rows"] == 8 and result.extra["train_rows"] == 60
    assert any("absent from the training rows" in note for note in result.notes)


@pytest.mark.parametrize(("params", "param"), [
    ({"d_model": 30, "n_heads": 4}, "n_heads"), ({"vocab_size": 5}, "vocab_size"), ({"dropout": 1.5}, "dropout"),
    ({"max_length": 2.5}, "max_length"), ({"lr": 0}, "lr"), ({"class_weight": "heavy"}, "class_weight"),
])
def test_bad_hyperparameters_are_named(params: dict[str, Any], param: str) -> None:
    X, y = topic_texts(30)
    with pytest.raises(InvalidInput) as info:
        get_trainer("text_transformer")(**params).fit(X, y)
    assert info.value.param == param


def test_tokenizer_is_deterministic_lowercases_and_truncates() -> None:
    X, _ = topic_texts(120)
    texts = X["text"].tolist()
    first = train_tokenizer(texts, vocab_size=500, max_length=6)
    assert first == train_tokenizer(texts, vocab_size=500, max_length=6)
    ids, mask = encode_texts(first, ["Oven OVEN oven", "", "a b c d e f g h"])
    assert ids.shape == (3, 6) and ids.dtype == np.int64
    assert ids[0, 1] == ids[0, 2] == ids[0, 3]  # lower-cased
    assert ids[1].tolist()[2:] == [0, 0, 0, 0] and mask[1].tolist() == [1, 1, 0, 0, 0, 0]
    assert mask[2].tolist() == [1] * 6  # truncated to max_length, [SEP] kept


def test_class_weight_integer_labels_and_unfitted_trainer() -> None:
    X, y = topic_texts(45)
    labels = y.map({"computing": 0, "cooking": 1, "sports": 2})
    keep = (labels != 2) | (np.arange(len(y)) < 20)  # sports is rare
    trainer = get_trainer("text_transformer")(max_epochs=2, class_weight="balanced", **QUICK)
    assert trainer.fit(X[keep], labels[keep]).classes == [0, 1, 2]
    predicted = trainer.predict(X.head(6))
    assert predicted.dtype == np.int64
    out = run_onnx(trainer.export_onnx(X.head(2)), X.head(6))
    assert out.labels is not None and out.labels.tolist() == predicted.tolist()
    with pytest.raises(Conflict):
        get_trainer("text_transformer")().predict(X)
    with pytest.raises(Conflict):
        get_trainer("text_transformer")().export_onnx(X)
