"""ONNX export of the torch networks: :func:`export_module` traces a module, :func:`add_label_output` appends
the class-label output, :func:`finish_onnx` stamps the ``aimaas.*`` metadata and checks the graph.

It also owns the two small helpers it shares with :mod:`aimaas.training.torch_common` (which re-exports them):
:func:`import_torch`, the lazy torch import, and :func:`class_array`, the class labels as scikit-learn returns
them. It imports nothing from torch_common, so there is no import cycle.

torch and onnx are imported inside the functions that use them: importing this module is cheap.
"""

from __future__ import annotations

import io
import json
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from aimaas.errors import AimaasError
from aimaas.training.base import TaskKind
from aimaas.training.onnx_export import FORMAT_VERSION, METADATA_PREFIX

if TYPE_CHECKING:
    import onnx
    import torch

__all__ = ["ONNX_OPSET", "add_label_output", "class_array", "export_module", "finish_onnx", "import_torch"]

ONNX_OPSET = 18  # the opset of onnx_export.TARGET_OPSET, so torch graphs merge with skl2onnx ones


def import_torch() -> Any:
    """The ``torch`` module, or :class:`AimaasError` (``missing_dependency``) saying how to install it."""
    try:
        import torch
    except ImportError:
        raise AimaasError("The neural trainers need PyTorch: pip install 'aimaas[torch]'.",
                          code="missing_dependency") from None
    return torch


def class_array(classes: list[Any]) -> np.ndarray:
    """Class labels as scikit-learn returns them: int64 for whole-number classes, else an object array."""
    numeric = all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes)
    return np.asarray(classes, dtype=np.int64) if numeric else np.asarray(classes, dtype=object)


def export_module(module: Any, example: torch.Tensor, *, input_name: str, output_name: str) -> onnx.ModelProto:
    """The eval-mode ``module`` as an ONNX model (opset 18) with one input and one output, batch axis dynamic.

    Uses torch's TorchScript exporter (``dynamo=False``): it needs no package beyond torch, supports the layers
    our trainers use and writes the same bytes for the same weights. The dynamo exporter would need onnxscript.
    A failure raises :class:`AimaasError` (``onnx_export_failed``): a platform bug, not a user error.
    """
    import onnx

    torch = import_torch()
    module.eval()
    buffer = io.BytesIO()
    kwargs: dict[str, Any] = {
        "input_names": [input_name], "output_names": [output_name], "opset_version": ONNX_OPSET,
        "dynamic_axes": {input_name: {0: "N"}, output_name: {0: "N"}}, "do_constant_folding": True,
    }
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated in favour of dynamo
            try:
                torch.onnx.export(module, (example,), buffer, dynamo=False, **kwargs)
            except TypeError:  # torch < 2.5 has no dynamo argument and uses the TorchScript exporter anyway
                buffer = io.BytesIO()
                torch.onnx.export(module, (example,), buffer, **kwargs)
    except Exception as exc:  # the exporter raises anything from RuntimeError to internal errors
        raise AimaasError(f"Could not export the network to ONNX: {exc}", code="onnx_export_failed") from exc
    return onnx.load_from_string(buffer.getvalue())


def add_label_output(model: onnx.ModelProto, probabilities: str, classes: list[Any], name: str = "label") -> None:
    """Add output ``name`` = ``classes[argmax(probabilities, axis=1)]`` (int64 or string, shape ``[N]``)."""
    from onnx import TensorProto, helper, numpy_helper

    values = class_array(classes)
    numeric = values.dtype == np.int64
    if not numeric:
        values = np.asarray([str(c) for c in classes], dtype=object)
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(values, "aimaas_classes"))
    graph.node.append(helper.make_node("ArgMax", [probabilities], ["aimaas_argmax"], axis=1, keepdims=0))
    graph.node.append(helper.make_node("Gather", ["aimaas_classes", "aimaas_argmax"], [name], axis=0))
    graph.output.append(helper.make_tensor_value_info(name, TensorProto.INT64 if numeric else TensorProto.STRING,
                                                      ["N"]))


def finish_onnx(model: onnx.ModelProto, *, trainer: str, task: TaskKind, outputs: dict[str, str],
                classes: list[Any] | None, params: dict[str, Any], input_kind: str, doc: str,
                **extra: Any) -> bytes:
    """Serialized ``model`` with the ``aimaas.*`` metadata props of :mod:`onnx_export` plus ``input_kind`` and
    ``extra`` (each value JSON-encoded unless already a string), after ``onnx.checker`` accepts it."""
    import onnx

    meta: dict[str, Any] = {"format_version": FORMAT_VERSION, "trainer": trainer, "task": task.value,
                            "outputs": outputs, "classes": classes, "params": params, "input_kind": input_kind,
                            **extra}
    del model.metadata_props[:]
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key = METADATA_PREFIX + key
        prop.value = value if isinstance(value, str) else json.dumps(value, default=str)  # as onnx_export does
    model.producer_name = "aimaas"
    model.producer_version = FORMAT_VERSION
    model.doc_string = doc
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise AimaasError(f"The exported {trainer} model is not valid ONNX: {exc}",
                          code="onnx_export_failed") from exc
    return bytes(model.SerializeToString())
