"""Convert a fitted scikit-learn pipeline (preprocessing included) to ONNX bytes.

skl2onnx and onnx are imported on first use. LightGBM estimators use onnxmltools' converter, registered
into skl2onnx as its documentation shows. Classifiers are exported with ``zipmap=False`` so probabilities
are a plain ``[N, n_classes]`` float tensor. The model carries ``aimaas.*`` metadata props (JSON values):
``inputs`` (the :class:`FeaturePlan`), ``outputs`` (role → output name), ``task``, ``trainer``, ``classes``
and ``params``, enough for a server to build input tensors from JSON rows without any Python object.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from aimaas.errors import AimaasError
from aimaas.training.base import TaskKind
from aimaas.training.preprocessing import FeaturePlan

__all__ = ["METADATA_PREFIX", "TARGET_OPSET", "export_pipeline"]

TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
"""Opsets we write: ONNX 18 is served by every onnxruntime since 1.14; ai.onnx.ml 3 keeps the classic tree
ensemble operators (onnxmltools would otherwise emit ai.onnx.ml 5, which skl2onnx refuses to mix)."""
METADATA_PREFIX = "aimaas."
FORMAT_VERSION = "1"

_lock = threading.RLock()  # conversions patch converter modules: one at a time
_registered = False


_TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
_ROUND_DOWN = ("BRANCH_LEQ", "BRANCH_GT")
_ROUND_UP = ("BRANCH_LT", "BRANCH_GTE")


def _float32_thresholds(values: list[float], modes: list[Any]) -> list[float]:
    """Float32 thresholds that split float32 inputs exactly as the float64 ones do.

    The libraries compare ``float64(x) <= t`` with double thresholds ``t``; the ONNX tree operators compare
    in float32. Rounding ``t`` to nearest can land on a data value and flip a split, so ``<=``/``>``
    thresholds round down and ``<``/``>=`` ones round up (``x <= t`` ⇔ ``x <= floor32(t)`` for float32 x).
    """
    v64 = np.asarray(values, dtype=np.float64)
    v32 = v64.astype(np.float32)
    down = np.where(v32.astype(np.float64) > v64, np.nextafter(v32, np.float32(-np.inf)), v32)
    up = np.where(v32.astype(np.float64) < v64, np.nextafter(v32, np.float32(np.inf)), v32)
    names = [m.decode() if isinstance(m, bytes) else str(m) for m in modes]
    chosen = [down[i] if m in _ROUND_DOWN else up[i] if m in _ROUND_UP else v32[i] for i, m in enumerate(names)]
    return [float(v) for v in chosen]


def _exact_trees(convert: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a converter so tree-ensemble nodes get int flags and float32-exact thresholds.

    * skl2onnx 1.20 passes HistGradientBoosting's ``missing_go_to_left`` as Python bools for
      ``nodes_missing_value_tracks_true`` and onnx >= 1.19 rejects bools in an INTS attribute.
    * thresholds still given as float64 lists (onnxmltools' LightGBM converter) are rounded as
      :func:`_float32_thresholds` says; HistGradientBoosting gets the same through skl2onnx's own
      ``adjust_threshold_for_sklearn`` (it already rounds to float32 before adding the node).
    """

    def converter(scope: Any, operator: Any, container: Any) -> Any:
        from skl2onnx.operator_converters import random_forest

        original = container.add_node
        original_hgb = random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting

        def add_node(op_type: str, *args: Any, **attrs: Any) -> Any:
            flags = attrs.get("nodes_missing_value_tracks_true")
            if flags is not None:
                attrs["nodes_missing_value_tracks_true"] = [int(v) for v in flags]
            if op_type in _TREE_OPS and isinstance(attrs.get("nodes_values"), list) and "nodes_modes" in attrs:
                attrs["nodes_values"] = _float32_thresholds(attrs["nodes_values"], attrs["nodes_modes"])
            return original(op_type, *args, **attrs)

        def hgb_tree(*args: Any, **kwargs: Any) -> Any:
            kwargs["adjust_threshold_for_sklearn"] = True
            kwargs["dtype"] = np.float32
            return original_hgb(*args[:7], **kwargs)

        container.add_node = add_node
        random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting = hgb_tree
        try:
            return convert(scope, operator, container)
        finally:
            del container.add_node
            random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting = original_hgb

    converter.__aimaas_wrapped__ = True  # type: ignore[attr-defined]
    return converter


def _register_converters() -> None:
    global _registered
    with _lock:
        if _registered:
            return
        from skl2onnx import update_registered_converter
        from skl2onnx._supported_operators import sklearn_operator_name_map
        from skl2onnx.common._registration import get_converter, register_converter
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        for cls in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
            alias = sklearn_operator_name_map[cls]
            current = get_converter(alias)
            if not getattr(current._fct, "__aimaas_wrapped__", False):
                register_converter(alias, _exact_trees(current._fct), overwrite=True,
                                   options=current.get_allowed_options())
        try:
            from lightgbm import LGBMClassifier, LGBMRegressor
            from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
        except ImportError:  # LightGBM is optional; its trainer says so when used
            _registered = True
            return
        convert_lightgbm = _exact_trees(convert_lightgbm)
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )

        update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier",
                                    calculate_linear_classifier_output_shapes, convert_lightgbm,
                                    options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
        update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor",
                                    calculate_linear_regressor_output_shapes, convert_lightgbm,
                                    options={"split": None})
        _registered = True


def _initial_types(plan: FeaturePlan) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    kinds = {"float32": FloatTensorType, "int64": Int64TensorType, "string": StringTensorType}
    return [(c.input, kinds[c.dtype]([None, 1])) for c in plan.columns]


_OUTPUTS = {
    TaskKind.CLASSIFICATION: ("label", "probabilities"),
    TaskKind.REGRESSION: ("prediction",),
    TaskKind.CLUSTERING: ("label", "distances"),
}


def export_pipeline(pipeline: Any, plan: FeaturePlan, *, task: TaskKind, trainer: str,
                    classes: list[Any] | None = None, params: dict[str, Any] | None = None) -> bytes:
    """ONNX bytes of a fitted ``Pipeline([("pre", ...), ("est", ...)])`` taking :func:`coerce_frame` inputs.

    The graph is checked with ``onnx.checker``; a converter failure raises :class:`AimaasError`
    (code ``onnx_export_failed``), which is a platform bug rather than a user error.
    """
    import onnx

    _register_converters()
    from skl2onnx import convert_sklearn

    estimator = pipeline.steps[-1][1]
    options = {id(estimator): {"zipmap": False}} if task is TaskKind.CLASSIFICATION else None
    try:
        with _lock:
            model = convert_sklearn(pipeline, name=f"aimaas_{trainer}", initial_types=_initial_types(plan),
                                    options=options, target_opset=TARGET_OPSET)
    except Exception as exc:  # converters raise anything from RuntimeError to AssertionError
        raise AimaasError(f"Could not export the {trainer} model to ONNX: {exc}",
                          code="onnx_export_failed") from exc
    outputs = dict(zip(_OUTPUTS[task], (o.name for o in model.graph.output), strict=False))
    meta = {
        "format_version": FORMAT_VERSION,
        "trainer": trainer,
        "task": task.value,
        "inputs": plan.to_json(),
        "outputs": json.dumps(outputs),
        "classes": json.dumps(classes),
        "params": json.dumps(params or {}, default=str),
    }
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = METADATA_PREFIX + key, value
    model.producer_name = "aimaas"
    model.doc_string = f"aimaas {trainer} {task.value} model; inputs: one [N, 1] tensor per raw column."
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
