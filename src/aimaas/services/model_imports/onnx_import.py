"""Inspect an uploaded ONNX model: parse, refuse external data and custom operators, check, load in ONNX Runtime.

The file is read once into memory and the same bytes go to ``onnx`` and to ONNX Runtime, so what is checked
is what is loaded, and ONNX Runtime has no model directory from which to resolve external files. Models we
exported ourselves carry ``aimaas.*`` metadata (task, inputs, outputs, classes); an imported one that has it
is described from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._common import UNKNOWN_TASK, ImportedModel, check_task, file_error, is_task, quote

__all__ = ["ORT_DOMAINS", "inspect_onnx"]

#: Operator domains the standard ONNX Runtime CPU build implements (the ONNX ones and Microsoft's contrib ops).
ORT_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc",
                         "ai.onnx.preview.training", "ai.onnx.training"})
_METADATA_PREFIX = "aimaas."  # = aimaas.training.onnx_export.METADATA_PREFIX (not imported: it pulls numpy)
_MAX_TEXT = 2000  # doc strings and metadata values kept in ``info``


def _invalid(problem: str) -> Exception:
    text = problem if len(problem) <= 400 else problem[:399] + "…"
    return file_error(f"not a valid ONNX model: {text}. Export it again (for example with torch.onnx.export or "
                      "skl2onnx) as a single .onnx file.", "invalid_onnx")


def _graphs(model: Any) -> Iterator[Any]:
    """The main graph and every subgraph (If/Loop/Scan bodies), depth first."""
    stack = [model.graph]
    stack += [g for f in model.functions for n in f.node for g in _node_graphs(n)]
    while stack:
        graph = stack.pop()
        yield graph
        stack += [g for n in graph.node for g in _node_graphs(n)]


def _node_graphs(node: Any) -> list[Any]:
    return [g for a in node.attribute for g in ([a.g] if a.HasField("g") else []) + list(a.graphs)]


def _nodes(model: Any) -> Iterator[Any]:
    for graph in _graphs(model):
        yield from graph.node
    for function in model.functions:
        yield from function.node


def _tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto in the model: initializers, sparse initializers and constant attributes."""
    for graph in _graphs(model):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
    for node in _nodes(model):
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors


def _check_self_contained(model: Any) -> None:
    import onnx

    for tensor in _tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            where = next((e.value for e in tensor.external_data if e.key == "location"), "?")
            raise file_error(f"The model keeps tensor {quote(tensor.name)} in the external file {quote(where)}; "
                             "external data is refused. Save the model as one file (onnx.save(model, path, "
                             "save_as_external_data=False)); models over 2 GB cannot be imported as ONNX.",
                             "onnx_external_data")


def _check_domains(model: Any) -> None:
    local = {(f.domain, f.name) for f in model.functions}  # model-local functions are defined in the file
    custom = sorted({(n.domain, n.op_type) for n in _nodes(model)
                     if n.domain not in ORT_DOMAINS and (n.domain, n.op_type) not in local})
    if custom:
        ops = ", ".join(f"{d}:{op}" for d, op in custom[:5])
        raise file_error(f"The model uses custom operators ({ops}) that ONNX Runtime cannot run without a "
                         "custom-op library, which the server never loads. Export it with standard ONNX operators.",
                         "onnx_custom_ops")


def _session(data: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    # Loading is the check; optimising the graph would only slow it down.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented/RuntimeException
        raise _invalid(f"ONNX Runtime {ort.__version__} cannot load it ({exc})") from None


def _args(args: Any) -> list[dict[str, Any]]:
    return [{"name": a.name, "type": a.type, "shape": [d if isinstance(d, int | str) else None for d in a.shape]}
            for a in args]


def _metadata(model: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """``(aimaas.* props with JSON values decoded, the other props)``; values shortened."""
    ours: dict[str, Any] = {}
    other: dict[str, str] = {}
    for prop in model.metadata_props:
        if prop.key.startswith(_METADATA_PREFIX):
            try:
                ours[prop.key[len(_METADATA_PREFIX):]] = json.loads(prop.value)
            except ValueError:
                ours[prop.key[len(_METADATA_PREFIX):]] = prop.value
        else:
            other[prop.key[:200]] = prop.value[:_MAX_TEXT]
    return ours, other


def inspect_onnx(path: str | Path, *, task: str | None = None) -> ImportedModel:
    """Validate an ONNX file and describe it (``format="onnx"``).

    Checks, in order: it parses as an ONNX ModelProto; no tensor lives in an external file; every operator is in
    a domain ONNX Runtime implements (or a function the model defines); ``onnx.checker`` accepts it; ONNX
    Runtime (CPU) creates a session. ``signature`` lists the session's inputs and outputs (name, type such as
    ``tensor(float)``, shape with symbolic dimensions as strings and unknown ones as None). ``info`` holds
    ``ir_version``, ``opsets`` (domain → version; ``""`` is the default domain), ``producer``,
    ``producer_version``, ``graph_name``, ``doc_string``, ``nodes``, ``parameters`` (initializer elements),
    ``metadata`` (other metadata props) and ``aimaas`` (our metadata, decoded) when present.
    The task comes from ``aimaas.task`` when present, else from ``task``, else ``unknown``.
    Raises InvalidInput (codes ``invalid_onnx``, ``onnx_external_data``, ``onnx_custom_ops``).
    """
    import onnx
    from google.protobuf.message import DecodeError

    task = check_task(task)
    data = Path(path).read_bytes()
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise _invalid(f"the file does not parse as an ONNX protobuf ({exc})") from None
    if not model.HasField("graph") or not model.opset_import:
        raise _invalid("the file has no graph or no opset_import")
    _check_self_contained(model)
    _check_domains(model)
    try:
        onnx.checker.check_model(data)  # the bytes we hold: no re-serialisation of the parsed model
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
        raise _invalid(f"onnx.checker refuses it ({exc})") from None
    session = _session(data)
    ours, other = _metadata(model)
    notes: list[str] = []
    meta_task = ours.get("task")
    if is_task(meta_task):  # our own export: the runtime relies on this task, so it wins
        if task is not None and task != meta_task:
            notes.append(f"task {task!r} ignored: the model's aimaas metadata says {meta_task!r}")
        task = str(meta_task)
    elif task is None:
        notes.append("task 'unknown': the model does not say; pass a task to set it")
    parameters = 0
    for tensor in model.graph.initializer:
        count = 1
        for d in tensor.dims:
            count *= d
        parameters += count
    info: dict[str, Any] = {
        "ir_version": int(model.ir_version),
        "opsets": {op.domain: int(op.version) for op in model.opset_import},
        "producer": model.producer_name or None,
        "producer_version": model.producer_version or None,
        "graph_name": model.graph.name or None,
        "doc_string": model.doc_string[:_MAX_TEXT] or None,
        "nodes": sum(1 for _ in _nodes(model)),
        "parameters": parameters,
        "metadata": other,
    }
    if ours:
        info["aimaas"] = ours
    signature = {"inputs": _args(session.get_inputs()), "outputs": _args(session.get_outputs())}
    return ImportedModel("onnx", task or UNKNOWN_TASK, signature, info, notes)
