"""What the PyTorch trainers share: lazy import, seeding, threads, the epoch loop with checkpoints, ONNX export.

The epoch loop (:func:`train_epochs`) trains with AdamW on in-memory tensors, stops early on a validation
split (``patience`` epochs without a lower validation loss, then the best weights are restored), and honours
``max_epochs`` and ``max_seconds``. After every epoch it reports ``{"event": "epoch", ...}`` and, given a
``checkpoint_dir``, writes the model, the optimizer and the best weights as safetensors plus ``state.json``
(never pickle). A later fit with the same settings and data resumes after the saved epoch; because every epoch
reseeds from ``(seed, epoch)``, a resumed run computes exactly what an uninterrupted one would.

The checkpoint files live in :mod:`aimaas.training.torch_checkpoint`; the ONNX export helpers
(:func:`export_module`, :func:`add_label_output`, :func:`finish_onnx`, :data:`ONNX_OPSET`) and
:func:`import_torch` / :func:`class_array` live in :mod:`aimaas.training.torch_onnx` and are re-exported here.

torch, safetensors and onnx are imported inside the functions that use them: importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aimaas.errors import InvalidInput
from aimaas.training.base import Report
from aimaas.training.torch_checkpoint import Checkpoints, checkpoint_fingerprint
from aimaas.training.torch_onnx import (
    ONNX_OPSET,
    add_label_output,
    class_array,
    export_module,
    finish_onnx,
    import_torch,
)

__all__ = [
    "LOOP_HYPERPARAMETERS",
    "ONNX_OPSET",
    "STOPPING_PARAMS",
    "LoopConfig",
    "LoopOutcome",
    "accuracy",
    "add_label_output",
    "check_fraction",
    "class_array",
    "check_number",
    "data_digest",
    "export_module",
    "finish_onnx",
    "import_torch",
    "predict_batches",
    "r_squared",
    "seed_everything",
    "torch_threads",
    "train_epochs",
    "validation_split",
]

#: Hyperparameters of the epoch loop, shared by the torch trainers (merged into their own defaults).
#: ``threads`` defaults to 1: small networks gain little from more, and on a busy machine (several jobs per
#: host) extra intra-op threads spin against each other; measured 16x slower per step with 2 threads on 2
#: shared cores. None uses every CPU available (at most 8).
LOOP_HYPERPARAMETERS: dict[str, Any] = {
    "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 64, "max_epochs": 100, "patience": 10,
    "max_seconds": 600.0, "validation_fraction": 0.1, "threads": 1,
}
#: Hyperparameters that say when to stop or how many threads run: a checkpoint stays valid when they change.
STOPPING_PARAMS = frozenset({"max_epochs", "patience", "max_seconds", "threads"})


@contextlib.contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (None: the CPUs this process may use, at most 8)."""
    torch = import_torch()
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, min(n or 8, available)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _epoch_seed(seed: int, epoch: int) -> int:
    # Every epoch draws its shuffling, dropout and augmentation from its own seed: resuming needs no RNG state.
    return (seed * 1_000_003 + epoch * 7919) % (2**63 - 1)


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (weight initialisation, dropout) for a reproducible fit."""
    import_torch().manual_seed(seed)


def data_digest(*arrays: Any) -> str:
    """A sha256 over the arrays' shapes, dtypes and bytes (torch tensors or numpy), for checkpoint fingerprints."""
    h = hashlib.sha256()
    for a in arrays:
        arr = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        if arr.dtype == object:
            arr = np.asarray([str(v) for v in arr.ravel()], dtype=np.str_)
        h.update(f"{arr.shape}{arr.dtype}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def validation_split(n_rows: int, fraction: float, seed: int, labels: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, valid)`` holding out ``fraction`` of the rows (stratified when ``labels`` are given
    and every class has at least two rows). ``valid`` is empty when fraction is 0 or too few rows remain."""
    rng = np.random.default_rng(seed)
    n_valid = int(round(n_rows * fraction))
    if n_valid < 1 or n_rows - n_valid < 2:
        return np.arange(n_rows), np.arange(0)
    if labels is not None:
        classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        if counts.min() >= 2 and n_valid >= classes.size:
            valid = []
            for k in range(classes.size):
                rows = rng.permutation(np.flatnonzero(inverse == k))
                valid.extend(rows[: max(1, int(round(len(rows) * fraction)))].tolist())
            held = np.zeros(n_rows, dtype=bool)
            held[valid] = True
            return np.flatnonzero(~held), np.flatnonzero(held)
    order = rng.permutation(n_rows)
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """Settings of :func:`train_epochs`; :meth:`from_params` checks user-given values."""

    max_epochs: int
    patience: int | None  # None or 0: no early stopping
    max_seconds: float | None
    lr: float
    weight_decay: float
    batch_size: int
    seed: int
    threads: int | None = 1

    @classmethod
    def from_params(cls, params: dict[str, Any], seed: int) -> LoopConfig:
        """Read and check the :data:`LOOP_HYPERPARAMETERS` in ``params``; bad values raise :class:`InvalidInput`."""
        return cls(
            max_epochs=check_number(params, "max_epochs", int, low=1),
            patience=None if params.get("patience") is None else check_number(params, "patience", int, low=0),
            max_seconds=(None if params.get("max_seconds") is None
                         else check_number(params, "max_seconds", float, low=0)),
            lr=check_number(params, "lr", float, low=0, strict=True),
            weight_decay=check_number(params, "weight_decay", float, low=0),
            batch_size=check_number(params, "batch_size", int, low=1),
            seed=int(seed),
            threads=None if params.get("threads") is None else check_number(params, "threads", int, low=1),
        )


def check_number(params: dict[str, Any], name: str, kind: type, *, low: float, strict: bool = False) -> Any:
    """``params[name]`` as ``kind`` (int or float) if it is at least ``low`` (above it when ``strict``), else
    :class:`InvalidInput` naming the hyperparameter and saying what it must be."""
    value: Any = params.get(name)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
    if ok and kind is int and float(value) != int(value):
        ok = False
    if not ok or (value <= low if strict else value < low):
        bound = f"greater than {low:g}" if strict else f"at least {low:g}"
        what = "a whole number" if kind is int else "a number"
        raise InvalidInput(f"Hyperparameter {name!r} must be {what} {bound}; got {value!r}.", param=name)
    return kind(value)


def check_fraction(params: dict[str, Any], name: str = "validation_fraction") -> float:
    """A fraction in [0, 0.5], or :class:`InvalidInput` naming the hyperparameter."""
    value = check_number(params, name, float, low=0)
    if value > 0.5:
        raise InvalidInput(f"Hyperparameter {name!r} must be between 0 and 0.5; got {value!r}.", param=name)
    return float(value)


@dataclass(slots=True)
class LoopOutcome:
    """What :func:`train_epochs` did. ``epochs`` counts completed epochs (a resumed fit includes the saved ones);
    ``stop_reason`` is ``max_epochs``, ``early_stopping`` or ``max_seconds``; ``history`` holds the epoch events."""

    epochs: int
    best_epoch: int
    best_valid_loss: float | None
    valid_score: float | None
    stop_reason: str
    resumed_from: int | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _evaluate(model: Any, loss_fn: Callable[..., Any], score_fn: Callable[[Any, Any], float] | None,
              X: Any, y: Any, batch_size: int) -> tuple[float, float | None]:
    torch = import_torch()
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
        loss = float(loss_fn(out, y))
    return loss, (float(score_fn(out, y)) if score_fn is not None else None)


def train_epochs(model: Any, loss_fn: Callable[[Any, Any], Any], X: Any, y: Any, config: LoopConfig, *,
                 X_valid: Any = None, y_valid: Any = None, score_fn: Callable[[Any, Any], float] | None = None,
                 augment: Callable[[Any, Any], Any] | None = None, report: Report | None = None,
                 checkpoint_dir: Path | str | None = None, fingerprint: dict[str, Any] | None = None
                 ) -> LoopOutcome:
    """Train ``model`` in place and leave it in eval mode with its best weights.

    ``loss_fn(outputs, y)`` is minimised with AdamW over shuffled mini-batches; ``augment(batch, generator)``
    may transform training batches. With validation tensors, the validation loss picks the best epoch and stops
    after ``patience`` epochs without improvement; ``score_fn(outputs, y)`` (accuracy, R²) is reported beside it.
    Without them the last epoch is kept. Each epoch emits ``{"event": "epoch", "epoch", "epochs", "loss",
    "valid_loss", "valid_score", "elapsed_s"}`` after its checkpoint is written; an exception from ``report``
    propagates (the checkpoint stays). A compatible checkpoint (same ``fingerprint``, model shapes and seed) is
    resumed with ``{"event": "resumed", "epoch": N, "next_epoch": N + 1}`` where N is the last saved epoch;
    an incompatible or damaged one is ignored with a note. Runs with ``config.threads`` intra-op threads.
    """
    with torch_threads(config.threads):
        return _train_epochs(model, loss_fn, X, y, config, X_valid=X_valid, y_valid=y_valid, score_fn=score_fn,
                             augment=augment, report=report, checkpoint_dir=checkpoint_dir, fingerprint=fingerprint)


def _train_epochs(model: Any, loss_fn: Callable[[Any, Any], Any], X: Any, y: Any, config: LoopConfig, *,
                  X_valid: Any, y_valid: Any, score_fn: Callable[[Any, Any], float] | None,
                  augment: Callable[[Any, Any], Any] | None, report: Report | None,
                  checkpoint_dir: Path | str | None, fingerprint: dict[str, Any] | None) -> LoopOutcome:
    torch = import_torch()
    started = time.perf_counter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    has_valid = X_valid is not None and y_valid is not None and len(X_valid) > 0
    loop = {"lr": config.lr, "weight_decay": config.weight_decay, "batch_size": config.batch_size, "seed": config.seed}
    digest = checkpoint_fingerprint(model, loop, fingerprint or {})
    store = Checkpoints(Path(checkpoint_dir), digest) if checkpoint_dir is not None else None
    notes: list[str] = []
    state = store.load(model, optimizer, notes) if store is not None else None
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    epoch, best_epoch, bad, best_loss, best_score = 0, 0, 0, None, None
    history: list[dict[str, Any]] = []
    resumed_from = None
    if state is not None:
        epoch, best_epoch, bad = state["epoch"], state["best_epoch"], state["bad_epochs"]
        best_loss, best_score, history = state["best_loss"], state["best_score"], state["history"]
        best_state = state["best_weights"]
        resumed_from = epoch
        if report is not None:
            report({"event": "resumed", "epoch": epoch, "next_epoch": epoch + 1})
    stop_reason = _stop_reason(epoch, bad, config, 0.0) if epoch else None
    n = len(X)
    while stop_reason is None:
        epoch += 1
        seed = _epoch_seed(config.seed, epoch)
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model.train()
        total = 0.0
        for idx in torch.randperm(n, generator=generator).split(config.batch_size):
            xb = X[idx] if augment is None else augment(X[idx], generator)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), y[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        if not np.isfinite(total):
            raise InvalidInput(f"Training diverged in epoch {epoch} (the loss became {total}); lower 'lr' or "
                               "scale the target.", param="lr")
        valid_loss, valid_score = (_evaluate(model, loss_fn, score_fn, X_valid, y_valid, 1024)
                                   if has_valid else (None, None))
        if valid_loss is None or best_loss is None or valid_loss < best_loss:
            best_epoch, best_loss, best_score, bad = epoch, valid_loss, valid_score, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        elapsed = time.perf_counter() - started
        stop_reason = _stop_reason(epoch, bad, config, elapsed)
        event = {"event": "epoch", "epoch": epoch, "epochs": config.max_epochs, "loss": round(total / n, 6),
                 "valid_loss": None if valid_loss is None else round(valid_loss, 6),
                 "valid_score": None if valid_score is None else round(valid_score, 6),
                 "elapsed_s": round(elapsed, 3)}
        history.append(event)
        if store is not None:
            store.save(model, optimizer, best_state, {
                "epoch": epoch, "best_epoch": best_epoch, "bad_epochs": bad, "best_loss": best_loss,
                "best_score": best_score, "stop_reason": stop_reason, "history": history})
        if report is not None:
            report(dict(event))
    model.load_state_dict(best_state)
    model.eval()
    return LoopOutcome(epochs=epoch, best_epoch=best_epoch, best_valid_loss=best_loss, valid_score=best_score,
                       stop_reason=stop_reason, resumed_from=resumed_from, seconds=time.perf_counter() - started,
                       notes=notes, history=list(history))


def _stop_reason(epoch: int, bad: int, config: LoopConfig, elapsed: float) -> str | None:
    if config.patience and bad >= config.patience:
        return "early_stopping"
    if epoch >= config.max_epochs:
        return "max_epochs"
    if config.max_seconds is not None and elapsed >= config.max_seconds:
        return "max_seconds"
    return None


def accuracy(outputs: Any, codes: Any) -> float:
    """Fraction of rows whose highest output is the class index in ``codes`` (a score function)."""
    return float((outputs.argmax(dim=1) == codes).float().mean())


def r_squared(outputs: Any, targets: Any) -> float:
    """Coefficient of determination of ``outputs`` for ``targets`` (a score function; 0 for a constant target)."""
    total = float(((targets - targets.mean()) ** 2).sum())
    return 1.0 - float(((targets - outputs) ** 2).sum()) / total if total > 0 else 0.0



def predict_batches(model: Any, X: Any, batch_size: int = 1024) -> np.ndarray:
    """``model(X)`` in eval mode without gradients, by batches, as a float32 numpy array."""
    torch = import_torch()
    model.eval()
    with torch.no_grad():
        parts = [model(X[i:i + batch_size]).cpu().numpy() for i in range(0, len(X), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)
