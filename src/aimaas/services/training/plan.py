"""Checking a training request against the dataset version before any job starts, and resolving ``auto``.

Everything here reads only the version's schema and stats (computed at upload), so a bad request answers
422 at once, naming the problem: a missing or constant target, text as a regression target, a class too rare
to stratify, a budget of 0 (the wire model refuses it), an unknown trainer or hyperparameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aimaas.domain import DatasetVersion
from aimaas.errors import InvalidInput
from aimaas.training.base import TaskKind, get_trainer, trainers_for
from aimaas.training.runner import DEFAULT_TRAINERS
from aimaas.training.validation import MIN_ROWS_PER_CLASS

__all__ = ["DEFAULT_BUDGET_S", "ResolvedPlan", "resolve_plan"]

#: The search budget when a request gives neither ``budget_s`` nor ``max_trials``.
DEFAULT_BUDGET_S = 60.0
_CATEGORY_TYPES = frozenset({"string", "boolean", "label"})
_LONG_TEXT = "text"
_MAX_INTEGER_CLASSES = 20


@dataclass(frozen=True)
class ResolvedPlan:
    """The request with ``auto`` decided: what :class:`aimaas.training.runner.TrainingPlan` receives."""

    task: TaskKind
    modality: str
    target: str | None
    text_column: str | None
    metric: str
    budget_s: float | None
    max_trials: int | None
    trainer: str | None
    trainers: list[str] | None
    params: dict[str, Any]

    def to_params(self) -> dict[str, Any]:
        return {"task": self.task.value, "modality": self.modality, "target": self.target,
                "text_column": self.text_column, "metric": self.metric, "budget_s": self.budget_s,
                "max_trials": self.max_trials, "trainer": self.trainer, "trainers": self.trainers,
                "params": self.params}


def _columns(version: DatasetVersion) -> dict[str, dict[str, Any]]:
    return {str(c["name"]): c for c in version.schema}


def _stats(version: DatasetVersion, name: str) -> dict[str, Any]:
    for entry in version.stats.get("columns", []):
        if entry.get("name") == name:
            return dict(entry)
    return {}


def resolve_plan(request: dict[str, Any], version: DatasetVersion, dataset: str) -> ResolvedPlan:
    """Decide task and modality, check target, metric, trainer and parameters; raise InvalidInput otherwise."""
    columns = _columns(version)
    choice = str(request.get("task") or "auto")
    if version.format in ("text", "text_zip"):
        raise InvalidInput(f"Dataset {dataset!r} holds unlabelled documents ({version.format}); to train a text "
                           "classifier upload a CSV or JSON Lines file with a text column and a label column.",
                           param="dataset")
    if choice == "image" and version.format != "image_zip":
        raise InvalidInput(f"Task image needs an image-folder dataset (a zip with one folder per label); "
                           f"{dataset!r} is {version.format}.", param="task")
    modality = "image" if version.format == "image_zip" else "tabular"
    target = request.get("target")
    if modality == "image":
        target = target or "label"
    elif target is None and choice != "clustering":
        hint = f" (suggested: {version.target_suggestion!r})" if version.target_suggestion else ""
        raise InvalidInput(f"Give the target column to predict{hint}; columns are {', '.join(columns)}.",
                           param="target")
    task = _task(choice, target, columns, version, modality)
    text_column = None
    if choice == "text" or (choice == "auto" and modality == "tabular" and task is TaskKind.CLASSIFICATION
                            and _text_column(columns, target, request.get("text_column")) is not None
                            and request.get("trainer") is None and _only_text(columns, target)):
        text_column = _text_column(columns, target, request.get("text_column"))
        if text_column is None:
            raise InvalidInput("Task text needs a column of text; give it with text_column.", param="text_column")
        modality, task = "text", TaskKind.CLASSIFICATION
    elif request.get("text_column") is not None:
        raise InvalidInput("text_column applies to task text only.", param="text_column")
    if target is not None and task is not TaskKind.CLUSTERING:
        _check_target(version, target, task, modality)
    metric = _metric(request.get("metric"), task)
    trainer, trainers, params = _trainers(request, task, modality)
    budget, trials = request.get("budget_s"), request.get("max_trials")
    if budget is None and trials is None and modality == "tabular" and trainer is None:
        budget = DEFAULT_BUDGET_S
    return ResolvedPlan(task=task, modality=modality, target=None if task is TaskKind.CLUSTERING else target,
                        text_column=text_column, metric=metric, budget_s=budget, max_trials=trials, trainer=trainer,
                        trainers=trainers, params=params)


def _task(choice: str, target: str | None, columns: dict[str, dict[str, Any]], version: DatasetVersion,
          modality: str) -> TaskKind:
    if choice == "clustering":
        if modality != "tabular":
            raise InvalidInput("Clustering works on tabular datasets only.", param="task")
        return TaskKind.CLUSTERING
    if target not in columns and modality != "image":
        raise InvalidInput(f"The dataset has no column {target!r}; columns are {', '.join(columns)}.",
                           param="target")
    if choice in ("classification", "text", "image") or modality == "image":
        return TaskKind.CLASSIFICATION
    if choice == "regression":
        return TaskKind.REGRESSION
    kind = str(columns[str(target)].get("type"))
    if kind in ("float",):
        return TaskKind.REGRESSION
    if kind == "integer":
        stats = _stats(version, str(target))
        low, high = stats.get("min"), stats.get("max")
        if isinstance(low, int | float) and isinstance(high, int | float) and high - low + 1 <= _MAX_INTEGER_CLASSES:
            return TaskKind.CLASSIFICATION
        return TaskKind.REGRESSION
    return TaskKind.CLASSIFICATION


def _text_column(columns: dict[str, dict[str, Any]], target: str | None, given: str | None) -> str | None:
    if given is not None:
        if given not in columns:
            raise InvalidInput(f"The dataset has no column {given!r}; columns are {', '.join(columns)}.",
                               param="text_column")
        if given == target:
            raise InvalidInput("text_column must not be the target column.", param="text_column")
        return given
    return next((name for name, c in columns.items() if c.get("type") == _LONG_TEXT and name != target), None)


def _only_text(columns: dict[str, dict[str, Any]], target: str | None) -> bool:
    """``auto`` picks the text task when the features are text: a long-text column and no numeric column."""
    return not any(c.get("type") in ("integer", "float") for name, c in columns.items() if name != target)


def _check_target(version: DatasetVersion, target: str, task: TaskKind, modality: str) -> None:
    column = _columns(version).get(target)
    stats = _stats(version, target)
    kind = str(column.get("type")) if column else "label"
    rows = int(stats.get("count") or version.num_rows) - int(stats.get("missing") or 0)
    if task is TaskKind.REGRESSION:
        if kind not in ("integer", "float"):
            raise InvalidInput(f"Target {target!r} is {kind}; regression needs a numeric target (use task "
                               "classification for categories).", param="target")
        if stats.get("min") is not None and stats.get("min") == stats.get("max"):
            raise InvalidInput(f"Target {target!r} has the same value in every row; there is nothing to learn.",
                               param="target")
        return
    counts = stats.get("label_counts") or {}
    if not counts and isinstance(stats.get("top"), list) and not stats.get("estimated"):
        unique = stats.get("unique")
        if isinstance(unique, int) and unique == len(stats["top"]):
            counts = {str(t["value"]): int(t["count"]) for t in stats["top"]}
    if kind in ("integer", "float") and stats.get("min") is not None and stats.get("min") == stats.get("max"):
        counts = {"only": rows}
    if counts:
        if len(counts) < 2:
            raise InvalidInput(f"Target {target!r} has a single class; classification needs at least two.",
                               param="target")
        rare = sorted((c, str(v)) for v, c in counts.items())[0]
        if rare[0] < MIN_ROWS_PER_CLASS * 2:
            raise InvalidInput(f"Class {rare[1]!r} of {target!r} has only {rare[0]} row(s); each class needs at "
                               f"least {MIN_ROWS_PER_CLASS * 2} to be split into training and test rows. Add rows or "
                               "merge rare classes.", param="target")
    elif kind in _CATEGORY_TYPES and isinstance(stats.get("unique"), int) and stats["unique"] > 0.5 * max(rows, 1):
        raise InvalidInput(f"Target {target!r} has {stats['unique']} distinct values in {rows} rows: it looks like "
                           "an identifier or free text, not a class label.", param="target")


def _metric(metric: str | None, task: TaskKind) -> str:
    if task is TaskKind.CLUSTERING:
        if metric not in (None, "silhouette"):
            raise InvalidInput("Clustering is scored by silhouette; leave metric out.", param="metric")
        return "silhouette"
    from aimaas.training.tuning_data import resolve_metric

    return resolve_metric(metric, task)


def _trainers(request: dict[str, Any], task: TaskKind,
              modality: str) -> tuple[str | None, list[str] | None, dict[str, Any]]:
    name, names, params = request.get("trainer"), request.get("trainers"), dict(request.get("params") or {})
    if name is not None and names:
        raise InvalidInput("Give trainer (one) or trainers (a search), not both.", param="trainers")
    if params and name is None:
        raise InvalidInput("params set hyperparameters of one trainer; name it with trainer.", param="params")
    usable = trainers_for(task, modality)
    for candidate in [name] if name is not None else names or []:
        get_trainer(candidate)
        if candidate not in usable:
            raise InvalidInput(f"Trainer {candidate!r} does not do {task.value} on {modality} data; use one of "
                               f"{', '.join(usable) or 'none installed'}.", param="trainer" if name else "trainers")
    if name is not None:
        get_trainer(name)(task=task, **params)  # unknown hyperparameters fail here, before any job
    elif modality != "tabular":
        name = DEFAULT_TRAINERS[modality]
        if name not in usable:
            raise InvalidInput(f"The {modality} trainer {name!r} is not installed; install 'aimaas[torch]'.",
                               param="task")
    return name, list(names) if names else None, params
