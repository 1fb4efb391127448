"""``mlp``: a PyTorch multi-layer perceptron for tabular classification and regression.

Columns are prepared like the other tabular trainers (:func:`plan_features`, :func:`coerce_frame`, a scaled
:func:`build_preprocessor`), so the exported ONNX graph takes the same inputs as theirs: the fitted
ColumnTransformer converted by skl2onnx, merged in front of the exported network. Regression targets are
standardised for training and the network's output is mapped back inside the model.
"""

from __future__ import annotations

import functools
import time
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from aimaas.errors import Conflict, InvalidInput
from aimaas.training.base import FitResult, Report, TaskKind, Trainer, TrialLike, register_trainer
from aimaas.training.preprocessing import MAX_CATEGORIES, FeaturePlan, build_preprocessor, coerce_frame, plan_features
from aimaas.training.torch_common import (
    LOOP_HYPERPARAMETERS,
    STOPPING_PARAMS,
    LoopConfig,
    accuracy,
    add_label_output,
    check_fraction,
    check_number,
    class_array,
    data_digest,
    export_module,
    finish_onnx,
    import_torch,
    predict_batches,
    r_squared,
    seed_everything,
    torch_threads,
    train_epochs,
    validation_split,
)
from aimaas.training.validation import prepare_target, target_name

if TYPE_CHECKING:
    from pathlib import Path

    import onnx

__all__ = ["MLPTrainer"]

CLASSIFICATION, REGRESSION = TaskKind.CLASSIFICATION, TaskKind.REGRESSION


def _build_network(n_in: int, n_out: int, layers: int, units: int, dropout: float) -> Any:
    torch = import_torch()
    nn = torch.nn
    modules: list[Any] = []
    width = n_in
    for _ in range(layers):
        modules += [nn.Linear(width, units), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
        width = units
    modules.append(nn.Linear(width, n_out))
    return nn.Sequential(*modules)


def _serving_module(net: Any, task: TaskKind, y_mean: float, y_std: float) -> Any:
    """``net`` followed by what turns its outputs into answers: softmax, or undoing the target scaling."""
    torch = import_torch()

    class Head(torch.nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            out = self.net(x)
            if task is CLASSIFICATION:
                return torch.softmax(out, dim=1)
            return out * y_std + y_mean

    return Head().eval()


@register_trainer("mlp")
class MLPTrainer(Trainer):
    """Fully connected network (``hidden_layers`` x ``hidden_units``, ReLU, dropout) trained with AdamW on
    cross-entropy or mean squared error, with early stopping on the validation rows (or on a
    ``validation_fraction`` held out of the training rows) and per-epoch checkpoints. See :class:`Trainer`."""

    tasks = frozenset({CLASSIFICATION, REGRESSION})
    modality = "tabular"
    checkpoints = True
    hyperparameters: ClassVar[dict[str, Any]] = {
        "hidden_layers": 2, "hidden_units": 128, "dropout": 0.1,
        **LOOP_HYPERPARAMETERS, "max_epochs": 200, "patience": 20, "max_seconds": 300.0,
        "max_categories": MAX_CATEGORIES,
    }

    def __init__(self, *, task: TaskKind | str | None = None, random_state: int = 0, **params: Any) -> None:
        super().__init__(task=task, random_state=random_state, **params)
        self._net: Any = None
        self._serving: Any = None
        self._plan: FeaturePlan | None = None
        self._pre: Any = None
        self._classes: list[Any] | None = None

    @property
    def classes(self) -> list[Any] | None:
        return self._classes

    def fit(self, X: pd.DataFrame, y: Any = None, *, X_valid: pd.DataFrame | None = None, y_valid: Any = None,
            report: Report | None = None, schema: list[dict[str, Any]] | None = None,
            checkpoint_dir: Path | None = None) -> FitResult:
        started = time.perf_counter()
        if not isinstance(X, pd.DataFrame):
            raise InvalidInput("Features must be a table of named columns.", param="features")
        if len(X) < 2:
            raise InvalidInput(f"Training needs at least 2 rows; got {len(X)}.", param="features")
        torch = import_torch()
        p = self.params
        layers = check_number(p, "hidden_layers", int, low=0)
        units = check_number(p, "hidden_units", int, low=1)
        dropout = check_fraction(p, "dropout")
        fraction = check_fraction(p)
        config = LoopConfig.from_params(p, self.random_state)
        name = target_name(y)
        target = prepare_target(y, self.task, n_rows=len(X), schema=schema, name=name)
        plan = plan_features(X, schema, max_categories=int(p["max_categories"]))
        if report is not None:
            report({"event": "fit_started", "trainer": self.name, "task": self.task.value, "rows": len(X),
                    "features": [c.name for c in plan.columns]})
        pre = build_preprocessor(plan, scale=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # unknown categories encode as zeros, by design
            features = np.asarray(pre.fit_transform(coerce_frame(X, plan)), dtype=np.float32)
        classes: list[Any] | None = None
        y_mean, y_std = 0.0, 1.0
        if self.task is CLASSIFICATION:
            classes = sorted(np.unique(target).tolist())
        else:
            y_mean, y_std = float(target.mean()), float(target.std()) or 1.0
        encode = functools.partial(_encode, classes=classes, y_mean=y_mean, y_std=y_std)
        codes = encode(target)
        valid_rows: np.ndarray | None = None
        valid_codes: np.ndarray | None = None
        if X_valid is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                valid_rows = np.asarray(pre.transform(coerce_frame(X_valid, plan)), dtype=np.float32)
            valid_codes = encode(prepare_target(y_valid, self.task, n_rows=len(X_valid), name=name,
                                                check_classes=False))
            train_rows, train_codes = features, codes
        else:
            tr, va = validation_split(len(features), fraction, self.random_state,
                                      codes if classes is not None else None)
            train_rows, train_codes = features[tr], codes[tr]
            if len(va):
                valid_rows, valid_codes = features[va], codes[va]
        with torch_threads(config.threads):
            seed_everything(self.random_state)
            net = _build_network(features.shape[1], len(classes) if classes else 1, layers, units, dropout)
            as_target = torch.as_tensor if classes else (lambda a: torch.as_tensor(a).reshape(-1, 1))
            outcome = train_epochs(
                net, _loss(self.task), torch.as_tensor(train_rows), as_target(train_codes), config,
                X_valid=None if valid_rows is None else torch.as_tensor(valid_rows),
                y_valid=None if valid_codes is None else as_target(valid_codes),
                score_fn=accuracy if classes else r_squared, report=report, checkpoint_dir=checkpoint_dir,
                fingerprint={"trainer": self.name, "task": self.task.value, "random_state": self.random_state,
                             "params": {k: v for k, v in p.items() if k not in STOPPING_PARAMS},
                             "data": data_digest(train_rows, train_codes, valid_rows, valid_codes)})
        self._net, self._pre, self._plan, self._classes = net, pre, plan, classes
        self._serving = _serving_module(net, self.task, y_mean, y_std)
        given = X_valid is not None
        seconds = time.perf_counter() - started
        if report is not None:
            report({"event": "fit_finished", "seconds": round(seconds, 4),
                    "valid_score": outcome.valid_score if given else None})
        return FitResult(
            trainer=self.name, task=self.task, params=self.get_params(), n_rows=len(X),
            features=[c.name for c in plan.columns], dropped=[dict(d) for d in plan.dropped],
            notes=list(plan.notes) + outcome.notes, classes=classes, fit_seconds=seconds,
            valid_score=outcome.valid_score if given else None,
            extra={"epochs": outcome.epochs, "best_epoch": outcome.best_epoch, "stop_reason": outcome.stop_reason,
                   "resumed_from": outcome.resumed_from, "n_inputs": int(features.shape[1]),
                   "holdout_score": None if given else outcome.valid_score, "history": outcome.history},
        )

    def _outputs(self, X: pd.DataFrame) -> np.ndarray:
        if self._serving is None or self._plan is None:
            raise Conflict(f"The {self.name} trainer is not fitted yet; call fit first.", code="not_fitted")
        torch = import_torch()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            rows = np.asarray(self._pre.transform(coerce_frame(X, self._plan)), dtype=np.float32)
        with torch_threads(LoopConfig.from_params(self.params, self.random_state).threads):
            return predict_batches(self._serving, torch.as_tensor(rows)).astype(np.float64)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class labels (classification) or float64 values (regression) for raw rows ``X``."""
        out = self._outputs(X)
        if self._classes is None:
            return out.ravel()
        return class_array(self._classes)[out.argmax(axis=1)]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.task is not CLASSIFICATION:
            raise InvalidInput(f"A {self.task.value} model has no class probabilities.", param="task")
        proba = self._outputs(X)
        return proba / proba.sum(axis=1, keepdims=True)

    def export_onnx(self, sample: pd.DataFrame) -> bytes:
        """The preprocessing (skl2onnx) and the network (torch) in one graph taking one ``[N, 1]`` tensor per
        used raw column; outputs ``label`` + ``probabilities`` or ``prediction``."""
        if self._serving is None or self._plan is None:
            raise Conflict(f"The {self.name} trainer is not fitted yet; call fit first.", code="not_fitted")
        coerce_frame(sample, self._plan)  # the sample must carry every input column
        torch = import_torch()
        pre = _preprocessor_onnx(self._pre, self._plan)
        n_in = int(self._net[0].in_features)
        out_name = "probabilities" if self._classes is not None else "prediction"
        net = export_module(self._serving, torch.zeros(2, n_in), input_name="features", output_name=out_name)
        model = _merge(pre, net, out_name)
        outputs = {"probabilities": out_name} if self._classes is not None else {"prediction": out_name}
        if self._classes is not None:
            add_label_output(model, out_name, self._classes)
            outputs = {"label": "label", **outputs}
        return finish_onnx(model, trainer=self.name, task=self.task, outputs=outputs, classes=self._classes,
                           params=self.get_params(), input_kind="columns", inputs=self._plan.to_json(),
                           doc=f"aimaas {self.name} {self.task.value} model; inputs: one [N, 1] tensor per raw "
                               "column.")

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {
            "hidden_layers": trial.suggest_int("hidden_layers", 1, 3),
            "hidden_units": trial.suggest_categorical("hidden_units", [32, 64, 128, 256]),
            "dropout": trial.suggest_float("dropout", 0.0, 0.4),
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
        }


def _encode(labels: np.ndarray, *, classes: list[Any] | None, y_mean: float, y_std: float) -> np.ndarray:
    """Targets as the network learns them: class indices, or standardised values (float32).

    Validation labels the training rows never had map to -100: ignored by the loss, wrong for accuracy.
    """
    if classes is None:
        return ((labels - y_mean) / y_std).astype(np.float32)
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index.get(v.item() if isinstance(v, np.generic) else v, -100) for v in labels],
                      dtype=np.int64)


def _loss(task: TaskKind) -> Any:
    torch = import_torch()
    return torch.nn.CrossEntropyLoss(ignore_index=-100) if task is CLASSIFICATION else torch.nn.MSELoss()


def _preprocessor_onnx(pre: Any, plan: FeaturePlan) -> onnx.ModelProto:
    from onnx import version_converter
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    from aimaas.training.onnx_export import TARGET_OPSET
    from aimaas.training.torch_common import ONNX_OPSET

    kinds = {"float32": FloatTensorType, "int64": Int64TensorType, "string": StringTensorType}
    inputs = [(c.input, kinds[c.dtype]([None, 1])) for c in plan.columns]
    model = convert_sklearn(pre, name="aimaas_preprocessing", initial_types=inputs, target_opset=TARGET_OPSET)
    # skl2onnx writes the lowest opset its operators need; both halves must share one to be merged.
    if next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) < ONNX_OPSET:
        model = version_converter.convert_version(model, ONNX_OPSET)
    return model


def _merge(pre: onnx.ModelProto, net: onnx.ModelProto, output: str) -> onnx.ModelProto:
    """``net`` fed by ``pre``'s output; the graph output keeps the name ``output``."""
    from onnx import compose, helper

    net = compose.add_prefix(net, "net_")  # no name of the network may collide with the preprocessing's
    net.ir_version = pre.ir_version = max(net.ir_version, pre.ir_version)
    merged = compose.merge_models(pre, net, io_map=[(pre.graph.output[0].name, "net_features")],
                                  outputs=[f"net_{output}"], producer_name="aimaas")
    merged.graph.node.append(helper.make_node("Identity", [f"net_{output}"], [output]))
    value = merged.graph.output[0]
    value.name = output
    return merged
