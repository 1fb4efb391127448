"""The trainer contract, the fit result and the registry of trainers by name.

A :class:`Trainer` is scikit-learn style: hyperparameters are keyword arguments of ``__init__`` (checked
against the class's ``hyperparameters`` defaults, so a JSON dict from the API can be passed straight in),
``fit`` learns from a pandas DataFrame of raw columns and returns a :class:`FitResult`, and the fitted
model is exported as ONNX bytes for serving (never pickled). Trainers run inside worker processes; this
module imports nothing heavy.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from aimaas.errors import InvalidInput

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import pandas as pd

__all__ = [
    "MODALITIES",
    "FitResult",
    "Report",
    "TaskKind",
    "Trainer",
    "TrialLike",
    "get_trainer",
    "register_trainer",
    "trainer_names",
    "trainers_for",
]

Report = Callable[[dict[str, Any]], None]
"""Progress callback: receives small JSON-safe dicts with at least an ``"event"`` key. An exception raised by
the callback propagates out of ``fit`` (that is how a runner cancels a job)."""


class TaskKind(enum.StrEnum):
    """What a model predicts."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    CLUSTERING = "clustering"


#: What a trainer's rows hold. ``tabular``: raw columns. ``text``: one str column named ``text``. ``image``: one
#: bytes column named ``image`` (an encoded PNG/JPEG/GIF/BMP file per row, as in an image-folder dataset).
MODALITIES = ("tabular", "text", "image")


class TrialLike(Protocol):
    """The subset of ``optuna.trial.Trial`` that :meth:`Trainer.search_space` may use (optuna is not imported)."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class FitResult:
    """What one ``fit`` learnt, in JSON-safe values (``to_dict`` gives a plain dict).

    ``features`` are the raw columns the model uses (the ONNX inputs, in order); ``dropped`` lists the other
    columns with the reason; ``valid_score`` is accuracy (classification) or R² (regression) on the
    validation rows when they were given; ``extra`` holds trainer-specific facts (iterations, inertia, ...).
    """

    trainer: str
    task: TaskKind
    params: dict[str, Any]
    n_rows: int
    features: list[str]
    dropped: list[dict[str, str]]
    notes: list[str]
    classes: list[Any] | None
    fit_seconds: float
    valid_score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["task"] = self.task.value
        return out


class Trainer(ABC):
    """Base of every trainer. Subclasses set ``tasks`` and ``hyperparameters`` and are registered by name.

    Contract:

    * ``__init__(*, task=None, random_state=0, **hyperparameters)`` never touches data. ``task`` may be left
      out when the trainer supports one task only. An unknown hyperparameter or task raises
      :class:`InvalidInput` whose ``param`` names it. Values are checked by the underlying library at fit.
    * ``fit(X, y, *, X_valid, y_valid, report, schema, checkpoint_dir)`` refits from scratch and returns a
      :class:`FitResult`. Trainers with ``checkpoints = True`` write their state to ``checkpoint_dir`` after
      each epoch (safetensors + JSON, never pickle) and, finding a compatible state there, resume from it;
      others ignore it.
      ``X`` holds raw feature columns only (never the target); ``y`` is the target (a Series names the
      target column in errors; ignored for clustering); ``schema`` is the dataset's
      ``[{"name", "type", "missing"}]`` (inferred from dtypes when omitted). Bad data raises
      :class:`InvalidInput` with ``param`` naming the column. Same data, same ``random_state``: same model.
    * ``predict(X)`` returns a 1-D array: class labels, values or cluster ids. ``predict_proba(X)`` returns
      ``(n_rows, n_classes)`` probabilities ordered like ``classes`` (classification only).
    * ``export_onnx(sample)`` returns ONNX bytes whose graph has one input per used raw column (float,
      int64 or string, shape ``[None, 1]``) with the preprocessing inside; ``sample`` is a few raw rows
      used to check the columns. Metadata props ``aimaas.*`` describe inputs, outputs and classes.
    * ``search_space(trial)`` returns hyperparameter kwargs drawn with ``trial.suggest_*``; they are valid for
      every task the trainer supports and are merged over the defaults.
    """

    name: ClassVar[str] = ""
    tasks: ClassVar[frozenset[TaskKind]] = frozenset()
    #: One of :data:`MODALITIES`: what ``X`` holds (raw columns, a ``text`` column, an ``image`` column).
    modality: ClassVar[str] = "tabular"
    #: True when ``fit`` honours ``checkpoint_dir`` (saves each epoch and resumes from what it finds there).
    checkpoints: ClassVar[bool] = False
    hyperparameters: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, *, task: TaskKind | str | None = None, random_state: int = 0, **params: Any) -> None:
        self.task = self._resolve_task(task)
        self.random_state = int(random_state)
        unknown = sorted(set(params) - set(self.hyperparameters))
        if unknown:
            known = ", ".join(sorted(self.hyperparameters)) or "none"
            raise InvalidInput(
                f"Trainer {self.name!r} has no hyperparameter {unknown[0]!r}. Known hyperparameters: {known}.",
                param=unknown[0],
            )
        self.params: dict[str, Any] = {**self.hyperparameters, **params}

    @classmethod
    def _resolve_task(cls, task: TaskKind | str | None) -> TaskKind:
        allowed = ", ".join(sorted(t.value for t in cls.tasks))
        if task is None:
            if len(cls.tasks) == 1:
                return next(iter(cls.tasks))
            raise InvalidInput(f"Trainer {cls.name!r} needs a task: one of {allowed}.", param="task")
        try:
            kind = TaskKind(task)
        except ValueError:
            raise InvalidInput(f"Unknown task {task!r}; use one of {allowed}.", param="task") from None
        if kind not in cls.tasks:
            raise InvalidInput(f"Trainer {cls.name!r} does not do {kind.value}; it does {allowed}.", param="task")
        return kind

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters in effect (defaults merged with what was given)."""
        return dict(self.params)

    @property
    @abstractmethod
    def classes(self) -> list[Any] | None:
        """Class labels in probability-column order once fitted (classification), else None."""

    @abstractmethod
    def fit(self, X: pd.DataFrame, y: Any = None, *, X_valid: pd.DataFrame | None = None, y_valid: Any = None,
            report: Report | None = None, schema: list[dict[str, Any]] | None = None,
            checkpoint_dir: Path | None = None) -> FitResult: ...

    @abstractmethod
    def predict(self, X: pd.DataFrame) -> np.ndarray: ...

    @abstractmethod
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...

    @abstractmethod
    def export_onnx(self, sample: pd.DataFrame) -> bytes: ...

    @classmethod
    @abstractmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]: ...

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}(task={self.task.value!r}, random_state={self.random_state}, {args})"


_REGISTRY: dict[str, type[Trainer]] = {}
# Modules whose import registers the built-in trainers. Each must import cheaply: torch, sentence-transformers
# and friends are imported inside the methods that need them.
_BUILTINS = (
    "aimaas.training.sklearn_trainers",
    "aimaas.training.lightgbm_trainer",
    "aimaas.training.torch_mlp",
    "aimaas.training.torch_cnn",
    "aimaas.training.torch_text",
    "aimaas.training.embedding_trainer",
)
T = TypeVar("T", bound=type[Trainer])


def register_trainer(name: str) -> Callable[[T], T]:
    """Class decorator registering a :class:`Trainer` under ``name`` (and setting its ``name``)."""

    def decorate(cls: T) -> T:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"trainer name {name!r} is already registered by {existing.__qualname__}")
        if not cls.tasks:
            raise ValueError(f"trainer {cls.__qualname__} declares no tasks")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_builtins() -> None:
    import importlib

    for module in _BUILTINS:
        importlib.import_module(module)


def trainer_names() -> list[str]:
    """Every registered trainer name, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_trainer(name: str) -> type[Trainer]:
    """The trainer class registered as ``name``; :class:`InvalidInput` (``param="trainer"``) lists the known ones."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise InvalidInput(f"Unknown trainer {name!r}. Known trainers: {known}.", param="trainer") from None


def trainers_for(task: TaskKind | str, modality: str = "tabular") -> list[str]:
    """Names of the trainers that support ``task`` on rows of ``modality``, sorted."""
    try:
        kind = TaskKind(task)
    except ValueError:
        raise InvalidInput(f"Unknown task {task!r}; use one of {', '.join(TaskKind)}.", param="task") from None
    if modality not in MODALITIES:
        raise InvalidInput(f"Unknown modality {modality!r}; use one of {', '.join(MODALITIES)}.", param="modality")
    _load_builtins()
    return sorted(n for n, cls in _REGISTRY.items() if kind in cls.tasks and cls.modality == modality)
