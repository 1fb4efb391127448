"""``text_transformer``: a text classifier owned end to end, from its tokenizer to its weights.

``fit`` trains a lower-casing BPE tokenizer on the training texts (:mod:`aimaas.training.text_tokenizer`), then
a small Transformer encoder (:mod:`aimaas.training.torch_text_net`) with the shared epoch loop of
:mod:`aimaas.training.torch_common`: AdamW on cross-entropy, early stopping on validation rows (given, or held
out from ``X``), ``max_epochs``, ``max_seconds``, one ``epoch`` event per epoch, and checkpoints in
``checkpoint_dir`` (safetensors + JSON, the tokenizer beside them) that a later fit with the same settings and
data resumes from.

The ONNX graph takes ``input_ids`` and ``attention_mask`` (int64 ``[N, L]``, both axes dynamic) and gives
``probabilities`` and ``label``; its metadata carries the tokenizer (``aimaas.tokenizer``: the tokenizer's JSON,
truncating at ``aimaas.max_length`` and padding), so :func:`token_feed` needs only the ``tokenizers`` library.
:meth:`TextTransformerTrainer.export_weights` gives the same model as ``weights.safetensors`` + ``config.json`` +
``tokenizer.json``; :meth:`TextTransformerTrainer.from_weights` reads them back. torch is imported by the
methods that use it.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from aimaas.errors import AimaasError, Conflict, InvalidInput
from aimaas.training import text_encoder
from aimaas.training.base import FitResult, Report, TaskKind, Trainer, TrialLike, register_trainer
from aimaas.training.onnx_export import FORMAT_VERSION
from aimaas.training.text_tokenizer import checkpointed_tokenizer, encode_texts, token_feed, vocab_size
from aimaas.training.torch_common import LOOP_HYPERPARAMETERS, STOPPING_PARAMS, import_torch
from aimaas.training.validation import prepare_target, target_name

__all__ = ["TextTransformerTrainer", "token_feed"]

_LIMITS = {"vocab_size": (100, 100_000), "max_length": (4, 1024), "d_model": (8, 1024), "n_heads": (1, 64),
           "n_layers": (1, 24), "ff_dim": (8, 8192), "min_frequency": (1, 1_000_000)}
_INPUTS = ("input_ids", "attention_mask")


def _emit(report: Report | None, event: dict[str, Any]) -> None:
    if report is not None:
        report(event)


# -- the trainer -------------------------------------------------------------------------------------------------
@register_trainer("text_transformer")
class TextTransformerTrainer(Trainer):
    """A BPE tokenizer and a Transformer encoder classifier trained from scratch on the ``text`` column.

    Model hyperparameters: ``vocab_size`` (the tokenizer's upper bound), ``min_frequency`` (of a merged pair),
    ``lowercase``, ``max_length`` (ids per text, ``[CLS]``/``[SEP]`` included), ``d_model``, ``n_heads`` (must
    divide ``d_model``), ``n_layers``, ``ff_dim``, ``dropout``, ``class_weight`` (None or ``"balanced"``); the
    loop's are ``lr``, ``weight_decay``, ``batch_size``, ``max_epochs``, ``patience``, ``max_seconds`` and
    ``validation_fraction`` (rows of ``X`` held out for early stopping when no ``X_valid`` is given).
    """

    tasks = frozenset({TaskKind.CLASSIFICATION})
    modality = "text"
    checkpoints = True
    hyperparameters: ClassVar[dict[str, Any]] = {
        **LOOP_HYPERPARAMETERS, "lr": 2e-3, "max_epochs": 40, "patience": 5,
        "vocab_size": 8000, "min_frequency": 2, "lowercase": True, "max_length": 128, "d_model": 64,
        "n_heads": 4, "n_layers": 2, "ff_dim": 128, "dropout": 0.1, "class_weight": None,
    }

    def __init__(self, *, task: TaskKind | str | None = None, random_state: int = 0, **params: Any) -> None:
        super().__init__(task=task, random_state=random_state, **params)
        self._net: Any = None
        self._tokenizer: str | None = None
        self._classes: list[Any] | None = None

    @property
    def classes(self) -> list[Any] | None:
        return self._classes

    @property
    def tokenizer_json(self) -> str:
        """The fitted tokenizer as ``tokenizers`` JSON."""
        self._require_fitted()
        assert self._tokenizer is not None
        return self._tokenizer

    def _require_fitted(self) -> None:
        if self._net is None:
            raise Conflict(f"The {self.name} trainer is not fitted yet; call fit first.", code="not_fitted")

    def _set_fitted(self, net: Any, tokenizer: str, classes: list[Any]) -> None:
        self._net, self._tokenizer, self._classes = net, tokenizer, classes

    def _checked(self) -> dict[str, Any]:
        p = self.params
        out: dict[str, Any] = {}
        for name, (low, high) in _LIMITS.items():
            value = p[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) \
                    or value != int(value) or not low <= value <= high:
                raise InvalidInput(f"Hyperparameter {name!r} must be a whole number from {low} to {high}; got "
                                   f"{value!r}.", param=name)
            out[name] = int(value)
        if out["d_model"] % out["n_heads"]:
            raise InvalidInput(f"n_heads={out['n_heads']} must divide d_model={out['d_model']}.", param="n_heads")
        dropout = p["dropout"]
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:  # NaN fails
            raise InvalidInput(f"Hyperparameter 'dropout' must be in [0, 1); got {dropout!r}.", param="dropout")
        if p["class_weight"] not in (None, "balanced"):
            raise InvalidInput("Hyperparameter 'class_weight' must be null or 'balanced'.", param="class_weight")
        return {**out, "dropout": float(dropout), "lowercase": bool(p["lowercase"])}

    def fit(self, X: pd.DataFrame, y: Any = None, *, X_valid: pd.DataFrame | None = None, y_valid: Any = None,
            report: Report | None = None, schema: list[dict[str, Any]] | None = None,
            checkpoint_dir: Path | None = None) -> FitResult:
        """Train the tokenizer and the network (see :class:`aimaas.training.base.Trainer`).

        ``valid_score`` is the accuracy of the kept (best) epoch on the validation rows: ``X_valid`` when given,
        else the ``validation_fraction`` held out of ``X``. Validation rows whose class is absent from training
        are left out of early stopping (with a note).
        """
        from aimaas.training.torch_common import (
            LoopConfig,
            check_fraction,
            data_digest,
            seed_everything,
            torch_threads,
            train_epochs,
            validation_split,
        )
        from aimaas.training.torch_text_net import NetConfig, TextClassifier

        started = time.perf_counter()
        texts = text_encoder.text_column(X)
        if len(texts) < 2:
            raise InvalidInput(f"Training needs at least 2 rows; got {len(texts)}.", param="text")
        name = target_name(y)
        labels = prepare_target(y, self.task, n_rows=len(texts), schema=schema, name=name)
        shape = self._checked()
        loop = LoopConfig.from_params(self.params, self.random_state)
        fraction = check_fraction(self.params)
        empty = sum(1 for t in texts if not t.strip())
        if empty == len(texts):
            raise InvalidInput("Every text is empty; there is nothing to learn from.", param="text")
        notes = [f"{empty} text(s) are empty; they were kept as they are."] if empty else []
        classes = np.unique(labels)
        targets = np.searchsorted(classes, labels).astype(np.int64)
        if X_valid is not None:
            train_rows = np.arange(len(texts))
            v_all = text_encoder.text_column(X_valid, param="X_valid")
            v_labels = prepare_target(y_valid, self.task, n_rows=len(v_all), name=name, check_classes=False)
            known = np.isin(v_labels, classes)
            if not known.all():
                notes.append(f"{int((~known).sum())} validation row(s) have a class absent from the training rows; "
                             "early stopping ignores them.")
            v_texts = [t for t, k in zip(v_all, known, strict=True) if k]
            v_targets = np.searchsorted(classes, v_labels[known]).astype(np.int64)
        else:
            train_rows, valid_rows = validation_split(len(texts), fraction, self.random_state, labels)
            v_texts = [texts[i] for i in valid_rows]
            v_targets = targets[valid_rows]
        t_texts, t_targets = [texts[i] for i in train_rows], targets[train_rows]
        settings = {k: shape[k] for k in ("vocab_size", "max_length", "min_frequency", "lowercase")}
        tokenizer = checkpointed_tokenizer(checkpoint_dir, t_texts, settings)
        t_ids, _ = encode_texts(tokenizer, t_texts)
        v_ids, _ = encode_texts(tokenizer, v_texts)
        config = NetConfig(vocab_size=vocab_size(tokenizer), max_length=shape["max_length"], d_model=shape["d_model"],
                           n_heads=shape["n_heads"], n_layers=shape["n_layers"], ff_dim=shape["ff_dim"],
                           dropout=shape["dropout"], n_classes=len(classes))
        _emit(report, {"event": "fit_started", "trainer": self.name, "task": self.task.value, "rows": len(texts),
                       "features": ["text"], "train_rows": len(t_texts), "valid_rows": len(v_texts),
                       "vocab_size": config.vocab_size})
        torch = import_torch()
        with torch_threads():
            seed_everything(self.random_state)
            net = TextClassifier(config)
            weight = None
            if self.params["class_weight"] == "balanced":
                counts = np.bincount(t_targets, minlength=len(classes)).astype(np.float64)
                weight = torch.tensor(len(t_targets) / (len(classes) * np.maximum(counts, 1.0)), dtype=torch.float32)
            loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
            fingerprint = {"trainer": self.name, "classes": [str(c) for c in classes],
                           "params": {k: v for k, v in self.params.items() if k not in STOPPING_PARAMS},
                           "data": data_digest(t_ids, t_targets, v_ids, v_targets),
                           "tokenizer": hashlib.sha256(tokenizer.encode()).hexdigest()}
            outcome = train_epochs(
                net, loss_fn, torch.from_numpy(t_ids), torch.from_numpy(t_targets), loop,
                X_valid=torch.from_numpy(v_ids) if len(v_texts) else None,
                y_valid=torch.from_numpy(v_targets) if len(v_texts) else None,
                score_fn=_accuracy, report=report, checkpoint_dir=checkpoint_dir, fingerprint=fingerprint)
        self._set_fitted(net, tokenizer, [c.item() if isinstance(c, np.generic) else c for c in classes])
        seconds = time.perf_counter() - started
        _emit(report, {"event": "fit_finished", "seconds": round(seconds, 4), "valid_score": outcome.valid_score})
        return FitResult(
            trainer=self.name, task=self.task, params=self.get_params(), n_rows=len(texts), features=["text"],
            dropped=[{"name": str(c), "reason": "text models read the 'text' column only"}
                     for c in X.columns if c != "text"],
            notes=notes + outcome.notes, classes=self._classes, fit_seconds=seconds, valid_score=outcome.valid_score,
            extra={"epochs": outcome.epochs, "best_epoch": outcome.best_epoch, "stop_reason": outcome.stop_reason,
                   "resumed_from": outcome.resumed_from, "best_valid_loss": outcome.best_valid_loss,
                   "vocab_size": config.vocab_size, "train_rows": len(t_texts), "valid_rows": len(v_texts)},
        )

    def predict_proba(self, X: pd.DataFrame, *, batch_size: int = 256) -> np.ndarray:
        """``(n_rows, n_classes)`` probabilities ordered like :attr:`classes` for the rows' ``text``."""
        self._require_fitted()
        torch = import_torch()
        texts = text_encoder.text_column(X)
        parts = [np.zeros((0, len(self._classes or [])))]
        self._net.eval()
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                ids, mask = encode_texts(self.tokenizer_json, texts[start:start + batch_size])
                logits = self._net(torch.from_numpy(ids), torch.from_numpy(mask))
                parts.append(torch.softmax(logits.double(), dim=-1).numpy())
        return np.concatenate(parts)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class labels for the rows' ``text``."""
        proba = self.predict_proba(X)
        classes = list(self._classes or [])
        # Labels typed as the target was: int64 for whole-number classes, else Python strings (object).
        numeric = all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
        return np.asarray(classes, dtype=np.int64 if numeric else object)[proba.argmax(axis=1)]

    def export_onnx(self, sample: pd.DataFrame) -> bytes:
        """ONNX bytes: inputs ``input_ids`` and ``attention_mask`` (int64 ``[N, L]``, ``L`` at most ``max_length``),
        outputs ``probabilities`` (float32 ``[N, n_classes]``) and ``label``. ``sample`` must have ``text``.

        Uses torch's TorchScript exporter (``dynamo=False``), which needs no package beyond torch; a failure raises
        :class:`AimaasError` (``onnx_export_failed``), a platform bug rather than a user error.
        """
        import onnx

        from aimaas.training.torch_common import ONNX_OPSET, add_label_output, finish_onnx
        from aimaas.training.torch_text_net import ProbabilityModel

        self._require_fitted()
        torch = import_torch()
        texts = text_encoder.text_column(sample)[:8]
        ids, mask = encode_texts(self.tokenizer_json, (texts + ["a short example", "another"])[:max(2, len(texts))])
        buffer = io.BytesIO()
        dynamic = {"input_ids": {0: "N", 1: "L"}, "attention_mask": {0: "N", 1: "L"}, "probabilities": {0: "N"}}
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated in favour of dynamo
                torch.onnx.export(ProbabilityModel(self._net).eval(), (torch.from_numpy(ids), torch.from_numpy(mask)),
                                  buffer, dynamo=False, input_names=list(_INPUTS), output_names=["probabilities"],
                                  dynamic_axes=dynamic, opset_version=ONNX_OPSET, do_constant_folding=True)
        except Exception as exc:  # the exporter raises anything from RuntimeError to internal errors
            raise AimaasError(f"Could not export the {self.name} network to ONNX: {exc}",
                              code="onnx_export_failed") from exc
        model = onnx.load_from_string(buffer.getvalue())
        add_label_output(model, "probabilities", list(self._classes or []))
        return finish_onnx(model, trainer=self.name, task=self.task,
                           outputs={"label": "label", "probabilities": "probabilities"}, classes=self._classes,
                           params=self.get_params(), input_kind="text_tokens",
                           doc=f"aimaas {self.name} text classifier; inputs: token ids and attention mask [N, L].",
                           tokenizer=json.loads(self.tokenizer_json), max_length=self._net.config.max_length)

    def export_weights(self) -> dict[str, bytes]:
        """The model as files the registry keeps beside the ONNX graph: ``weights.safetensors`` (the network's
        state dict), ``config.json`` (shapes, classes, hyperparameters) and ``tokenizer.json``."""
        self._require_fitted()
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in self._net.state_dict().items()}
        config = {"format_version": FORMAT_VERSION, "trainer": self.name, "task": self.task.value,
                  "input_kind": "text_tokens", "net": self._net.config.to_dict(), "classes": self._classes,
                  "params": self.get_params(), "random_state": self.random_state}
        return {"weights.safetensors": bytes(save(state)),
                "config.json": json.dumps(config, indent=1, default=str).encode(),
                "tokenizer.json": self.tokenizer_json.encode()}

    @classmethod
    def from_weights(cls, files: Mapping[str, bytes]) -> TextTransformerTrainer:
        """A fitted trainer from the files of :meth:`export_weights` (safetensors and JSON only: nothing is
        unpickled). Missing or inconsistent files raise :class:`InvalidInput`."""
        from safetensors.torch import load

        from aimaas.training.torch_text_net import NetConfig, TextClassifier

        try:
            config = json.loads(files["config.json"])
            if config.get("trainer") != cls.name:
                raise ValueError(f"config.json names the trainer {config.get('trainer')!r}")
            tokenizer = files["tokenizer.json"].decode("utf-8")
            vocab_size(tokenizer)  # parses it
            trainer = cls(random_state=int(config.get("random_state", 0)), **config["params"])
            net = TextClassifier(NetConfig(**config["net"]))
            net.load_state_dict(load(files["weights.safetensors"]))
        except Exception as exc:  # json, safetensors, tokenizers and torch each raise their own error types
            raise InvalidInput(f"These are not the files of a {cls.name} model: {type(exc).__name__}: "
                               f"{str(exc)[:200]}", param="files") from exc
        net.eval()
        trainer._set_fitted(net, tokenizer, list(config["classes"]))
        return trainer

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {
            "lr": trial.suggest_float("lr", 3e-4, 5e-3, log=True),
            "d_model": trial.suggest_categorical("d_model", [64, 128]),
            "n_layers": trial.suggest_int("n_layers", 1, 3),
            "dropout": trial.suggest_float("dropout", 0.0, 0.3),
            "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64]),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        }


def _accuracy(outputs: Any, targets: Any) -> float:
    return float((outputs.argmax(dim=1) == targets).double().mean())
