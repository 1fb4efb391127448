"""The runner's test-time steps: score a fitted trainer once on the test rows, and describe an exported model's
signature (what a client sends and gets back)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aimaas.training.base import TaskKind, Trainer

__all__ = ["evaluate_trainer", "signature_of"]

_IMPORTANCE_METRICS = frozenset({"accuracy", "balanced_accuracy", "f1_macro", "log_loss", "r2", "mae", "rmse"})


def evaluate_trainer(trainer: Trainer, metric: str | None, X_test: pd.DataFrame, y_test: pd.Series | None, *,
                     tabular: bool, seed: int = 0) -> tuple[str, dict[str, Any]]:
    """``(metric, evaluation)``: the full ``evaluate_*`` dict for the trainer's task on the test rows, plus
    ``"importance"`` (permutation importance) for tabular classification and regression models. ``metric``
    None gives the task default (f1_macro, r2, silhouette)."""
    from aimaas.training.evaluation import (
        evaluate_classification,
        evaluate_clustering,
        evaluate_regression,
        permutation_importance_table,
    )
    from aimaas.training.tuning_data import resolve_metric
    from aimaas.training.validation import prepare_target, target_name

    if trainer.task is TaskKind.CLUSTERING:
        preprocess = getattr(trainer, "preprocess", None)
        features = preprocess(X_test) if callable(preprocess) else X_test.to_numpy()
        return "silhouette", evaluate_clustering(features, trainer.predict(X_test), seed=seed)
    metric = resolve_metric(metric, trainer.task)
    truth = prepare_target(y_test, trainer.task, n_rows=len(X_test), name=target_name(y_test), check_classes=False)
    if trainer.task is TaskKind.CLASSIFICATION:
        out = evaluate_classification(truth, trainer.predict(X_test), trainer.predict_proba(X_test),
                                      trainer.classes or [])
    else:
        out = evaluate_regression(truth, trainer.predict(X_test), seed=seed)
    if tabular:
        chosen = metric if metric in _IMPORTANCE_METRICS else None
        out["importance"] = permutation_importance_table(trainer, X_test, y_test, chosen, seed=seed)
    return metric, out


def signature_of(meta: dict[str, Any], onnx_bytes: bytes) -> dict[str, Any]:
    """``{"input_kind", "inputs": [...], "outputs": [...], "classes"}`` of an exported model.

    For ``columns`` models each input is a raw column ``{"name", "type", "role"}`` (what a client sends);
    otherwise the graph's own inputs ``{"name", "dtype", "shape"}``. Outputs are ``{"role", "name"}``.
    """
    kind = str(meta.get("input_kind", "columns"))
    if kind == "columns" and isinstance(meta.get("inputs"), dict):
        inputs = [{"name": c["name"], "type": c["type"], "role": c["role"], "dtype": c["dtype"]}
                  for c in meta["inputs"].get("columns", [])]
    else:
        inputs = _graph_inputs(onnx_bytes)
    outputs = [{"role": role, "name": name} for role, name in dict(meta.get("outputs") or {}).items()]
    signature: dict[str, Any] = {"input_kind": kind, "inputs": inputs, "outputs": outputs}
    if meta.get("classes") is not None:
        signature["classes"] = meta["classes"]
    for key in ("image", "encoder", "max_length"):
        if key in meta:
            signature[key] = meta[key]
    return signature


def _graph_inputs(onnx_bytes: bytes) -> list[dict[str, Any]]:
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    out = []
    for value in model.graph.input:
        tensor = value.type.tensor_type
        shape = [d.dim_param or (d.dim_value if d.HasField("dim_value") else None) for d in tensor.shape.dim]
        out.append({"name": value.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
                    "shape": shape})
    return out
