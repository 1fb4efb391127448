"""``onnx``: every model our training exports, and imported ONNX graphs, run with ONNX Runtime.

Models we exported carry ``aimaas.*`` metadata (:mod:`aimaas.training.onnx_check` is the reference for how raw
rows become tensors); the runtime builds the same feed and decodes the outputs into :class:`Prediction` s:

* ``columns`` models: one ``[N, 1]`` tensor per column of the feature plan. Numeric columns are built straight
  from the row dicts with numpy (this is the hot path of tabular serving: no DataFrame): one pass over the rows
  and one conversion of the whole table when every value is a JSON number or boolean, else column by column
  with pandas' number parsing (null, ``""`` and numeric text). String columns go through
  :func:`~aimaas.training.preprocessing.coerce_frame`, so categories are spelt exactly as in training. The
  feed equals :func:`~aimaas.training.onnx_check.onnx_inputs` value for value.
* ``image``, ``text_tokens``, ``text_embedding`` models: the rows' ``image`` / ``text`` column through the
  feed builder the model names (:data:`~aimaas.training.onnx_check.FEEDS`).

A graph without our metadata (an import) is run on its own tensors: each row maps input names to one example
(nested lists, without the batch axis) and each prediction is a :class:`~aimaas.serving.runtime.Prediction`
whose ``outputs`` hold that row's slice of every output.

The session uses the CUDA provider when onnxruntime has it, and one intra-op thread by default: replicas
scale out in processes, and one thread per replica avoids oversubscribing the cores.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aimaas.errors import AimaasError, InvalidInput
from aimaas.serving.runtime import ModelRuntime, ModelSource, Prediction

__all__ = ["OnnxModelRuntime"]

_PREFIX = "aimaas."
_COLUMN_OF_KIND = {"image": "image", "text_tokens": "text", "text_embedding": "text"}
_TENSOR_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16, "tensor(int8)": np.int8,
    "tensor(uint64)": np.uint64, "tensor(uint32)": np.uint32, "tensor(uint16)": np.uint16,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_, "tensor(string)": np.object_,
}


def _metadata(props: Mapping[str, str]) -> dict[str, Any]:
    """``aimaas.*`` props, JSON decoded as :func:`~aimaas.training.onnx_check.model_metadata` does; the tokenizer
    stays text (its feed wants text, and re-encoding it on every batch would cost milliseconds)."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if not key.startswith(_PREFIX):
            continue
        name = key[len(_PREFIX):]
        try:
            out[name] = value if name == "tokenizer" else json.loads(value)
        except ValueError:
            out[name] = value
    return out


def _check_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(rows, Mapping | str | bytes):
        raise InvalidInput("rows must be a list of objects (column name → value).", param="rows")
    items = list(rows)
    for i, row in enumerate(items):
        if not isinstance(row, Mapping):
            raise InvalidInput(f"Row {i} is a {type(row).__name__}; each row must be an object mapping column "
                               "names to values.", param="rows")
    return items


def _values(rows: list[Mapping[str, Any]], name: str) -> list[Any]:
    """``row[name]`` for every row; a row without it raises InvalidInput naming the row and the column."""
    try:
        return [row[name] for row in rows]
    except KeyError:
        i = next(i for i, row in enumerate(rows) if name not in row)
        raise InvalidInput(f"Row {i} has no column {name!r}; the model needs it.", param=name) from None


def _numbers_slow(values: list[Any], name: str) -> np.ndarray:
    """Values to float64 as :func:`coerce_frame` reads them (numeric text accepted, ``""`` = missing)."""
    import pandas as pd

    try:
        return pd.to_numeric(pd.Series(values), errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        pass
    for i, value in enumerate(values):
        try:
            pd.to_numeric(pd.Series([value]), errors="raise")
        except (ValueError, TypeError):
            raise InvalidInput(f"Row {i}: column {name!r} must hold a number; got {str(value)[:40]!r}.",
                               param=name) from None
    raise InvalidInput(f"Column {name!r} must hold numbers.", param=name)  # pragma: no cover - mixed shapes


def _numbers(values: list[Any], name: str) -> np.ndarray:
    """Float64 array of one numeric column; None is NaN. JSON numbers and booleans take numpy's C loop."""
    try:
        arr = np.array(values)
        if arr.ndim == 1 and arr.dtype.kind in "biuf":
            return arr.astype(np.float64, copy=False)
        if arr.ndim == 1 and arr.dtype.kind == "O" and not any(isinstance(v, str | bytes) for v in values):
            out = np.array(values, dtype=np.float64)  # None (a missing value) becomes NaN
            if out.ndim == 1:
                return out
    except (ValueError, TypeError):
        pass
    return _numbers_slow(values, name)


def _whole(numbers: np.ndarray, name: str) -> np.ndarray:
    missing = np.isnan(numbers)
    if missing.any():
        raise InvalidInput(f"Row {int(missing.argmax())}: column {name!r} has no value; the model was trained on "
                           "complete integers and needs one.", param=name)
    fractional = np.mod(numbers, 1) != 0
    if fractional.any():
        raise InvalidInput(f"Row {int(fractional.argmax())}: column {name!r} must hold a whole number; got "
                           f"{float(numbers[fractional.argmax()])!r}.", param=name)
    return numbers.astype(np.int64)


class OnnxModelRuntime(ModelRuntime):
    """An ONNX model: ``predict(rows)`` for models we trained (by their ``aimaas.input_kind``) and for imported
    graphs (by their tensor inputs). See the module docstring for the row formats.

    Options: ``intra_op_threads`` (ONNX Runtime threads per call, default 1) and ``providers`` (default CUDA
    when available, then CPU). Bad rows raise InvalidInput naming the column and the row index; columns the
    model does not use are ignored.
    """

    kind = "onnx"
    capabilities = frozenset({"predict"})

    def __init__(self, source: ModelSource, *, intra_op_threads: int = 1,
                 providers: Sequence[str] | None = None) -> None:
        super().__init__(source)
        if intra_op_threads < 1:
            raise ValueError("intra_op_threads must be at least 1")
        self.intra_op_threads = intra_op_threads
        self._providers = list(providers) if providers else None
        self._session: Any = None
        self.metadata: dict[str, Any] = {}  # the aimaas.* metadata, decoded; empty for a foreign graph
        self._plan: Any = None
        self._outputs: list[str] = []
        self._roles: list[str] = []
        self._class_keys: list[str] = []
        self._inputs: list[_TensorInput] = []  # a foreign graph's inputs
        self._numeric: list[Any] = []  # the plan's numeric and string columns (ColumnPlan)
        self._strings: list[Any] = []
        self._getter: Any = None

    @property
    def input_kind(self) -> str:
        """``columns``, ``image``, ``text_tokens``, ``text_embedding`` or ``tensors`` (a foreign graph)."""
        return str(self.metadata.get("input_kind", "columns")) if self.metadata else "tensors"

    def load(self) -> None:
        import onnxruntime as ort

        data = Path(self.source.path).read_bytes()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        available = ort.get_available_providers()
        providers = self._providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            session = ort.InferenceSession(data, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented exceptions
            raise AimaasError(f"ONNX Runtime cannot load the model {self.source.model!r}: {exc}",
                              code="model_load_failed") from exc
        meta = _metadata(session.get_modelmeta().custom_metadata_map)
        self.memory_bytes = len(data)
        if "task" in meta and "outputs" in meta:
            self._load_ours(meta)
        else:
            self.metadata = {}
            self._inputs = [_TensorInput(i.name, _TENSOR_TYPES.get(i.type), list(i.shape))
                            for i in session.get_inputs()]
            self._outputs = [o.name for o in session.get_outputs()]
        self._session = session

    def _load_ours(self, meta: dict[str, Any]) -> None:
        from aimaas.training.onnx_check import FEEDS
        from aimaas.training.preprocessing import FeaturePlan

        kind = str(meta.get("input_kind", "columns"))
        if kind not in FEEDS:
            raise AimaasError(f"The model's input kind {kind!r} is not served here; known: {', '.join(FEEDS)}.",
                              code="model_load_failed")
        outputs: dict[str, str] = meta["outputs"]
        self._roles, self._outputs = list(outputs), list(outputs.values())
        self._class_keys = [str(c) for c in meta.get("classes") or []]
        if kind == "columns":
            plan = FeaturePlan.from_json(json.dumps(meta["inputs"]))
            self._plan = plan
            self._numeric = [c for c in plan.columns if c.dtype != "string"]
            self._strings = [c for c in plan.columns if c.dtype == "string"]
            self._getter = operator.itemgetter(*(c.name for c in self._numeric)) if self._numeric else None
        if kind == "text_embedding":
            from aimaas.training import text_encoder

            wanted = str(meta.get("encoder", text_encoder.encoder_name()))
            if wanted != text_encoder.encoder_name():
                raise AimaasError(f"The model needs the sentence encoder {wanted!r}; this server has "
                                  f"{text_encoder.encoder_name()!r}.", code="encoder_mismatch")
            text_encoder.embed([""])  # load the shared encoder now rather than on the first request
        self.metadata = meta

    def close(self) -> None:
        self._session = None

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        if self._session is None:
            raise AimaasError(f"The model {self.source.model!r} is not loaded yet.", code="model_not_loaded")
        items = _check_rows(rows)
        if not items:
            return []
        if not self.metadata:
            return list(self._predict_tensors(items))
        results = self._session.run(self._outputs, self._feed(items))
        return self._decode(dict(zip(self._roles, results, strict=True)))

    # -- our models ---------------------------------------------------------------------------------------------
    def _feed(self, rows: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        kind = self.input_kind
        if kind == "columns":
            return self._column_feed(rows)
        import pandas as pd

        from aimaas.training.onnx_check import onnx_feed

        column = _COLUMN_OF_KIND.get(kind)
        frame = pd.DataFrame({column: _values(rows, column)}) if column else pd.DataFrame(rows)
        return onnx_feed(frame, self.metadata)

    def _column_feed(self, rows: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """The ``columns`` feed: numeric columns with numpy, string columns through ``coerce_frame``."""
        feed = self._numeric_feed(rows) if self._numeric else {}
        if self._strings:
            feed.update(self._string_feed([(c, _values(rows, c.name)) for c in self._strings]))
        return feed

    def _numeric_feed(self, rows: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        columns = self._numeric
        try:  # itemgetter reads the row's values in C: the hot loop of tabular serving
            table = [self._getter(row) for row in rows] if len(columns) > 1 else [(row[columns[0].name],)
                                                                                 for row in rows]
        except KeyError:
            i, name = next((i, c.name) for i, row in enumerate(rows) for c in columns if c.name not in row)
            raise InvalidInput(f"Row {i} has no column {name!r}; the model needs it.", param=name) from None
        try:  # JSON numbers and booleans only (the usual request): the whole table in one C pass
            block = np.array(table)
        except (ValueError, TypeError):
            block = None
        if block is not None and block.ndim == 2 and block.dtype.kind in "biuf":
            by_column = block.T.astype(np.float64, copy=False)
        else:  # null, numeric text or a wrong value somewhere: column by column, as coerce_frame reads them
            by_column = np.stack([_numbers([r[j] for r in table], c.name) for j, c in enumerate(columns)])
        feed: dict[str, np.ndarray] = {}
        floats = np.asarray(by_column, dtype=np.float32, order="C")  # rows of a C array: contiguous [N, 1] views
        for j, column in enumerate(columns):
            if column.dtype == "int64":
                feed[column.input] = _whole(by_column[j], column.name).reshape(-1, 1)
            else:
                feed[column.input] = floats[j].reshape(-1, 1)
        return feed

    @staticmethod
    def _string_feed(strings: list[tuple[Any, list[Any]]]) -> dict[str, np.ndarray]:
        import pandas as pd

        from aimaas.training.preprocessing import FeaturePlan, coerce_frame

        for column, values in strings:
            bad = next((i for i, v in enumerate(values) if isinstance(v, list | dict | tuple)), None)
            if bad is not None:
                raise InvalidInput(f"Row {bad}: column {column.name!r} must hold a single value, not a "
                                   f"{type(values[bad]).__name__}.", param=column.name)
        frame = coerce_frame(pd.DataFrame({c.name: v for c, v in strings}), FeaturePlan(tuple(c for c, _ in strings)))
        return {c.input: frame[c.input].to_numpy().reshape(-1, 1) for c, _ in strings}

    def _decode(self, results: dict[str, Any]) -> list[Prediction]:
        task = self.metadata["task"]
        if task == "regression":
            return [Prediction(value=v) for v in np.asarray(results["prediction"], dtype=np.float64).ravel().tolist()]
        if task == "classification":
            proba = np.asarray(results["probabilities"], dtype=np.float64)
            if "label" in results:
                raw = np.asarray(results["label"]).ravel().tolist()
                labels = [v.decode() if isinstance(v, bytes) else v for v in raw]
            else:
                classes = self.metadata["classes"]
                labels = [classes[i] for i in proba.argmax(axis=1).tolist()]
            keys = self._class_keys
            return [Prediction(label=label, probabilities=dict(zip(keys, p, strict=True)))
                    for label, p in zip(labels, proba.tolist(), strict=True)]
        return [Prediction(cluster=int(c)) for c in np.asarray(results["label"]).ravel().tolist()]

    # -- foreign graphs -----------------------------------------------------------------------------------------
    def _predict_tensors(self, rows: list[Mapping[str, Any]]) -> list[Prediction]:
        examples = [[_example(row, i, spec) for i, row in enumerate(rows)] for spec in self._inputs]
        # One run for the batch when every input has a free batch axis and the rows agree on the other axes.
        if len(rows) > 1 and all(spec.batched and not isinstance(spec.shape[0], int)
                                 and len({e.shape for e in values}) == 1
                                 for spec, values in zip(self._inputs, examples, strict=True)):
            feed = {spec.name: np.stack(values) for spec, values in zip(self._inputs, examples, strict=True)}
            outputs = self._session.run(self._outputs, feed)
            return [Prediction(outputs={name: _row_of(out, i, len(rows))
                                              for name, out in zip(self._outputs, outputs, strict=True)})
                    for i in range(len(rows))]
        added = any(spec.batched for spec in self._inputs)
        predictions = []
        for i in range(len(rows)):
            feed = {spec.name: values[i][None] if spec.batched else values[i]
                    for spec, values in zip(self._inputs, examples, strict=True)}
            outputs = self._session.run(self._outputs, feed)
            predictions.append(Prediction(outputs={name: _row_of(out, 0, 1) if added else _plain(out)
                                                         for name, out in zip(self._outputs, outputs, strict=True)}))
        return predictions


@dataclass(frozen=True)
class _TensorInput:
    """A graph input: ``batched`` when its first axis is the batch (free, or fixed to 1), so a row gives one
    example without that axis."""

    name: str
    dtype: Any  # numpy dtype; None for a non-tensor input (sequences, maps)
    shape: list[Any]

    @property
    def batched(self) -> bool:
        return len(self.shape) >= 1 and (not isinstance(self.shape[0], int) or self.shape[0] == 1)


def _example(row: Mapping[str, Any], i: int, spec: _TensorInput) -> np.ndarray:
    """Row ``i``'s value for ``spec`` as an array of the input's type and per-example shape."""
    if spec.dtype is None:
        raise InvalidInput(f"Input {spec.name!r} is not a tensor; this server feeds tensor inputs only.",
                           param=spec.name)
    if spec.name not in row:
        raise InvalidInput(f"Row {i} has no input {spec.name!r}; the model needs it.", param=spec.name)
    try:
        value = np.asarray(row[spec.name], dtype=spec.dtype)
    except (ValueError, TypeError):
        raise InvalidInput(f"Row {i}: input {spec.name!r} must be a (nested) list of {np.dtype(spec.dtype).name} "
                           "values.", param=spec.name) from None
    expected = spec.shape[1:] if spec.batched else spec.shape
    if value.ndim != len(expected) or any(isinstance(d, int) and d != s
                                          for d, s in zip(expected, value.shape, strict=True)):
        wanted = "[" + ", ".join(str(d) if isinstance(d, int) else "any" for d in expected) + "]"
        raise InvalidInput(f"Row {i}: input {spec.name!r} has shape {list(value.shape)}; the model wants {wanted} "
                           "for each row.", param=spec.name)
    return value


def _plain(output: Any) -> Any:
    return output.tolist() if isinstance(output, np.ndarray) else output


def _row_of(output: Any, i: int, n: int) -> Any:
    """Row ``i`` of an output computed for ``n`` rows (the whole output when it has no batch axis)."""
    if isinstance(output, np.ndarray):
        if output.ndim >= 1 and output.shape[0] == n:
            return output[i].tolist()
        return output.tolist()
    if isinstance(output, list) and len(output) == n:
        return output[i]
    return output
