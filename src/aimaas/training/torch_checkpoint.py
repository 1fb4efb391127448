"""Checkpoints of the torch epoch loop: one directory of safetensors files plus ``state.json``, written atomically.

:func:`aimaas.training.torch_common.train_epochs` saves the model, the optimizer and the best weights after
every epoch through :class:`Checkpoints` (safetensors only, never pickle; every file carries its sha256) and
resumes from them when :func:`checkpoint_fingerprint` (model shapes, loop settings, caller's extras) still
matches. :func:`write_file` writes a file durably, optionally by an atomic rename.

safetensors (and with it torch) is imported inside the methods that use it: importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["CHECKPOINT_FORMAT", "Checkpoints", "checkpoint_fingerprint", "write_file"]

CHECKPOINT_FORMAT = 1
_STATE_FILE = "state.json"


def checkpoint_fingerprint(model: Any, loop: Mapping[str, Any], extra: Mapping[str, Any]) -> str:
    """A sha256 naming what a checkpoint is valid for: the model's parameter shapes, the ``loop`` settings that
    change what an epoch computes, and the caller's ``extra`` facts (data digest, hyperparameters)."""
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    text = json.dumps({"format": CHECKPOINT_FORMAT, "loop": dict(loop), "shapes": shapes, "extra": dict(extra)},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Checkpoints:
    """One checkpoint directory: ``state.json`` names an ``epoch-NNNN-<id>/`` folder of safetensors files.

    The folder is written completely first, then ``state.json`` is replaced atomically: a crash at any point
    leaves either the previous checkpoint or the new one, never a mix. Files carry their sha256.
    """

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.root = root
        self.fingerprint = fingerprint

    def load(self, model: Any, optimizer: Any, notes: list[str]) -> dict[str, Any] | None:
        path = self.root / _STATE_FILE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if state.get("fingerprint") != self.fingerprint:
                notes.append(f"Ignored the checkpoint in {self.root.name!r}: it was made with other settings or "
                             "data; training started from scratch.")
                return None
            tensors = {name: self._read(state["files"][name]) for name in ("model", "optimizer", "best")}
            counters = {key: int(state[key]) for key in ("epoch", "best_epoch", "bad_epochs")}
            if not 1 <= counters["best_epoch"] <= counters["epoch"] or not isinstance(state["history"], list):
                raise ValueError("state.json holds inconsistent epoch counters")
            opt_state: dict[int, dict[str, Any]] = {}
            for key, value in [*tensors["optimizer"].items(), *state["optimizer_scalars"].items()]:
                index, _, name = key.partition(".")
                opt_state.setdefault(int(index), {})[name] = value
            initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if set(tensors["best"]) != set(initial):
                raise ValueError("the best weights do not fit the model")
            try:
                model.load_state_dict(tensors["model"])
                optimizer.load_state_dict({"state": opt_state,
                                           "param_groups": optimizer.state_dict()["param_groups"]})
            except Exception:
                model.load_state_dict(initial)  # start from scratch means from the fresh weights
                optimizer.state.clear()
                raise
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            notes.append(f"Ignored a damaged checkpoint in {self.root.name!r} ({type(exc).__name__}: "
                         f"{str(exc)[:200]}); training started from scratch.")
            return None
        state.update(counters)
        notes.append(f"Resumed from the checkpoint of epoch {state['epoch']}.")
        return {**state, "best_weights": tensors["best"]}

    def _read(self, entry: dict[str, str]) -> dict[str, Any]:
        from safetensors import SafetensorError
        from safetensors.torch import load

        folder = (self.root / entry["path"]).resolve()
        if self.root.resolve() not in folder.parents:  # state.json names files inside the checkpoint dir only
            raise ValueError(f"checkpoint file {entry['path']!r} is outside the checkpoint directory")
        data = folder.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ValueError(f"checkpoint file {entry['path']!r} does not match its sha256")
        try:
            return dict(load(data))
        except SafetensorError as exc:
            raise ValueError(f"checkpoint file {entry['path']!r} is not safetensors: {exc}") from None

    def save(self, model: Any, optimizer: Any, best: dict[str, Any], state: dict[str, Any]) -> None:
        from safetensors.torch import save

        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder = f"epoch-{state['epoch']:04d}-{uuid.uuid4().hex[:8]}"
        (self.root / folder).mkdir(mode=0o700)
        opt = optimizer.state_dict()["state"]
        opt_tensors = {f"{i}.{k}": v for i, s in opt.items() for k, v in s.items() if hasattr(v, "detach")}
        scalars = {f"{i}.{k}": v for i, s in opt.items() for k, v in s.items() if not hasattr(v, "detach")}
        files = {}
        for name, tensors in (("model", model.state_dict()), ("optimizer", opt_tensors), ("best", best)):
            data = save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()})
            relative = f"{folder}/{name}.safetensors"
            write_file(self.root / relative, data)
            files[name] = {"path": relative, "sha256": hashlib.sha256(data).hexdigest()}
        body = {"format": CHECKPOINT_FORMAT, "fingerprint": self.fingerprint, **state, "files": files,
                "optimizer_scalars": scalars}
        write_file(self.root / _STATE_FILE, json.dumps(body, indent=1).encode(), atomic=True)
        for old in self.root.glob("epoch-*"):  # earlier epochs: state.json no longer names them
            if old.name != folder and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)


def write_file(path: Path, data: bytes, *, atomic: bool = False) -> None:
    """Write ``data`` to the new file ``path`` (mode 0600, fsynced; an existing file is an error), or with
    ``atomic`` to a temporary file renamed over ``path``: readers see the old content or the new, never a part."""
    target = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp") if atomic else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if atomic:
        os.replace(target, path)
        with contextlib.suppress(OSError):  # make the rename durable where directories can be fsynced
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

