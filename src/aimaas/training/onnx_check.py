"""Run an exported model with ONNX Runtime on raw rows, and measure its parity with the trainer.

This is the reference for how a server turns raw rows into ONNX tensors. The model's ``aimaas.input_kind``
metadata names the feed builder (:data:`FEEDS`):

* ``columns`` (the default): from the ``aimaas.inputs`` feature plan, one ``[N, 1]`` tensor per used column,
  float32 (NaN = missing), int64, or string (``""`` = missing);
* ``image``: the ``image`` column's encoded files decoded and normalised as ``aimaas.image`` says;
* ``text_tokens``: the ``text`` column tokenized with the tokenizer held in ``aimaas.tokenizer``;
* ``text_embedding``: the ``text`` column embedded by the sentence encoder ``aimaas.encoder`` names.

``aimaas.outputs`` maps ``label`` / ``probabilities`` / ``prediction`` / ``distances`` to graph output names;
a classifier without a ``label`` output gets ``classes[argmax(probabilities)]``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aimaas.training.base import TaskKind
from aimaas.training.onnx_export import METADATA_PREFIX
from aimaas.training.preprocessing import FeaturePlan, coerce_frame

if TYPE_CHECKING:
    from aimaas.training.base import Trainer

__all__ = ["FEEDS", "FeedBuilder", "OnnxOutput", "model_metadata", "onnx_feed", "onnx_inputs", "parity", "run_onnx"]

FeedBuilder = Callable[[pd.DataFrame, dict[str, Any]], dict[str, np.ndarray]]
"""``(raw rows, the model's aimaas.* metadata) -> {input name: array}``."""

#: Feed builders by ``aimaas.input_kind``, as ``"module:function"`` (imported on first use: torch stays unloaded).
FEEDS: dict[str, str] = {
    "columns": "aimaas.training.onnx_check:column_feed",
    "image": "aimaas.training.torch_cnn:image_feed",
    "text_tokens": "aimaas.training.torch_text:token_feed",
    "text_embedding": "aimaas.training.embedding_trainer:embedding_feed",
}


@dataclass(frozen=True, slots=True)
class OnnxOutput:
    """What the graph computed: ``labels`` (classes or cluster ids), ``probabilities``, ``values`` (regression)
    and ``distances`` (clustering); absent ones are None."""

    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    values: np.ndarray | None = None
    distances: np.ndarray | None = None


def model_metadata(onnx_bytes: bytes) -> dict[str, Any]:
    """The ``aimaas.*`` metadata props of a model, JSON values decoded (prefix removed)."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    out: dict[str, Any] = {}
    for prop in model.metadata_props:
        if prop.key.startswith(METADATA_PREFIX):
            key = prop.key[len(METADATA_PREFIX):]
            try:
                out[key] = json.loads(prop.value)
            except ValueError:
                out[key] = prop.value
    return out


def onnx_inputs(X: pd.DataFrame, plan: FeaturePlan) -> dict[str, np.ndarray]:
    """The input feed for raw rows ``X``: ``{input name: [N, 1] array}`` typed as the plan says."""
    frame = coerce_frame(X, plan)
    return {c.input: frame[c.input].to_numpy().reshape(-1, 1) for c in plan.columns}


def column_feed(X: pd.DataFrame, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """The ``columns`` feed: :func:`onnx_inputs` with the plan stored in the model."""
    return onnx_inputs(X, FeaturePlan.from_json(json.dumps(meta["inputs"])))


def onnx_feed(X: pd.DataFrame, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """The input feed for raw rows ``X`` of a model with metadata ``meta`` (see the module docstring)."""
    kind = str(meta.get("input_kind", "columns"))
    try:
        target = FEEDS[kind]
    except KeyError:
        raise ValueError(f"unknown aimaas.input_kind {kind!r}; known: {', '.join(sorted(FEEDS))}") from None
    module, _, attr = target.partition(":")
    builder: FeedBuilder = getattr(importlib.import_module(module), attr)
    return builder(X, meta)


def _session(onnx_bytes: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def run_onnx(onnx_bytes: bytes, X: pd.DataFrame) -> OnnxOutput:
    """Predict raw rows ``X`` with ONNX Runtime (CPU), reading inputs and outputs from the model's metadata."""
    meta = model_metadata(onnx_bytes)
    outputs: dict[str, str] = meta["outputs"]
    session = _session(onnx_bytes)
    names = list(outputs.values())
    results = dict(zip(outputs, session.run(names, onnx_feed(X, meta)), strict=True))
    task = TaskKind(meta["task"])
    if task is TaskKind.REGRESSION:
        return OnnxOutput(values=np.asarray(results["prediction"], dtype=np.float64).ravel())
    if task is TaskKind.CLASSIFICATION:
        proba = np.asarray(results["probabilities"], dtype=np.float64)
        if "label" in results:
            labels = np.asarray(results["label"]).ravel()
        else:
            labels = np.asarray(meta["classes"], dtype=object)[proba.argmax(axis=1)]
        return OnnxOutput(labels=labels, probabilities=proba)
    return OnnxOutput(labels=np.asarray(results["label"]).ravel(),
                      distances=np.asarray(results["distances"], dtype=np.float64))


def parity(trainer: Trainer, onnx_bytes: bytes, X_test: pd.DataFrame) -> dict[str, Any]:
    """How closely the ONNX model reproduces ``trainer`` on ``X_test`` (JSON-safe).

    Classification: ``label_agreement`` (fraction of equal labels) and ``max_abs_diff_proba``. Regression:
    ``max_abs_diff`` and ``max_rel_diff`` (relative to ``max(1, |prediction|)``). Clustering:
    ``label_agreement`` and ``max_abs_diff_distance``. Always ``rows``.
    """
    onnx_out = run_onnx(onnx_bytes, X_test)
    out: dict[str, Any] = {"rows": len(X_test)}
    if trainer.task is TaskKind.REGRESSION:
        expected = trainer.predict(X_test)
        assert onnx_out.values is not None
        diff = np.abs(onnx_out.values - expected)
        out["max_abs_diff"] = float(diff.max(initial=0.0))
        out["max_rel_diff"] = float((diff / np.maximum(1.0, np.abs(expected))).max(initial=0.0))
        return out
    expected_labels = trainer.predict(X_test)
    assert onnx_out.labels is not None
    same = [_same(a, b) for a, b in zip(onnx_out.labels, expected_labels, strict=True)]
    out["label_agreement"] = float(np.mean(same)) if same else 1.0
    if trainer.task is TaskKind.CLASSIFICATION:
        assert onnx_out.probabilities is not None
        proba_diff = np.abs(onnx_out.probabilities - trainer.predict_proba(X_test))
        out["max_abs_diff_proba"] = float(proba_diff.max(initial=0.0))
    elif onnx_out.distances is not None and hasattr(trainer, "cluster_distances"):
        dist_diff = np.abs(onnx_out.distances - trainer.cluster_distances(X_test))
        out["max_abs_diff_distance"] = float(dist_diff.max(initial=0.0))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bytes):
        a = a.decode()
    if isinstance(a, np.generic):
        a = a.item()
    if isinstance(b, np.generic):
        b = b.item()
    return bool(a == b)
