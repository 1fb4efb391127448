"""Tables for ``aimaas models …``: the versions of a model, one version in detail, versions side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aimaas.cli._common import cell, human_bytes, table
from aimaas.schemas import ModelComparison, ModelDetail, ModelVersionPublic

__all__ = ["comparison_table", "higher_is_better", "model_view", "version_view"]

_MAX_METRIC_COLUMNS = 3  # a versions table stays readable in 120 columns
# Shown first when present: the usual headline metric of each task.
_HEADLINE = ("f1_macro", "accuracy", "roc_auc", "r2", "rmse", "mae", "silhouette")
_NOT_METRICS = frozenset({"rows"})  # counts the server reports beside the metrics
# Metrics where less is better; every other metric (accuracy, f1, r2, auc, silhouette…) is better higher.
_LOWER_IS_BETTER = frozenset(
    {"rmse", "mse", "mae", "mape", "log_loss", "logloss", "brier", "brier_score", "loss", "max_error", "davies_bouldin"}
)
_LOWER_SUFFIXES = ("_error", "_loss", "_time_s", "_seconds", "_ms", "_bytes")


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (a name-based rule: errors, losses, times are not)."""
    name = metric.lower()
    return not (name in _LOWER_IS_BETTER or name.endswith(_LOWER_SUFFIXES))


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | str | bool) or v is None}


def _metric_columns(versions: Sequence[ModelVersionPublic]) -> list[str]:
    names: dict[str, None] = {}
    for version in sorted(versions, key=lambda v: -v.version):  # the newest version's metrics first
        for name, value in _scalars(version.metrics).items():
            if isinstance(value, int | float) and not isinstance(value, bool) and name not in _NOT_METRICS:
                names.setdefault(name, None)
    ranked = sorted(names, key=lambda n: _HEADLINE.index(n) if n in _HEADLINE else len(_HEADLINE))
    return ranked[:_MAX_METRIC_COLUMNS]


def _short(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


def model_view(detail: ModelDetail) -> RenderableType:
    """The model's header, its aliases and one row per version with its main test metrics."""
    head = Text.assemble((detail.name, "bold"), f"  latest version {detail.latest_version}")
    if detail.description:
        head.append(f"  — {detail.description}")
    parts: list[RenderableType] = [head]
    if detail.aliases:
        aliases = ", ".join(f"{alias} → {version}" for alias, version in sorted(detail.aliases.items()))
        parts.append(Text(f"aliases: {aliases}"))
    metrics = _metric_columns(detail.versions)
    columns = ["version", "status", "aliases", "task", "format", *metrics, "size", "created"]
    rows = [
        [
            v.version,
            v.status,
            v.aliases or None,
            v.task,
            v.format,
            *(_short(v.metrics.get(m)) for m in metrics),
            human_bytes(v.size_bytes),
            v.created_at,
        ]
        for v in sorted(detail.versions, key=lambda v: v.version)
    ]
    parts.append(table("Versions", columns, rows))
    return Group(*parts)


def version_view(v: ModelVersionPublic) -> RenderableType:
    """One version: what it is, where it came from, its test metrics and hyperparameters."""
    lineage = v.lineage
    facts: list[tuple[str, object]] = [
        ("ref", v.ref),
        ("status", v.status),
        ("aliases", v.aliases or None),
        ("task", v.task),
        ("format", v.format),
        ("size", human_bytes(v.size_bytes)),
        ("sha256", v.sha256),
        ("trainer", lineage.get("trainer")),
        ("dataset", lineage.get("dataset")),
        ("dataset version", lineage.get("dataset_version")),
        ("job", lineage.get("job_id")),
        ("files", v.files or None),
        ("plots", v.plots or None),
        ("created", v.created_at),
    ]
    parts: list[RenderableType] = [table(f"Model version {v.ref}", ["field", "value"], [f for f in facts if f[1]])]
    if v.metrics:
        parts.append(table("Test metrics", ["metric", "value"], sorted(_scalars(v.metrics).items())))
    if v.params:
        parts.append(table("Hyperparameters", ["parameter", "value"], sorted(v.params.items())))
    return Group(*parts)


def _best(values: Sequence[float | None], higher: bool) -> float | None:
    numbers = [x for x in values if x is not None]
    if len(numbers) < 2 or len(set(numbers)) < 2:
        return None  # nothing to single out
    return max(numbers) if higher else min(numbers)


def comparison_table(comparison: ModelComparison) -> RenderableType:
    """Metrics as rows and versions as columns; the best value of each row is bold green."""
    result = Table(header_style="bold", title="Comparison", title_justify="left")
    result.add_column("metric")
    for v in comparison.versions:
        result.add_column(v.ref, justify="right")
    for name, values in comparison.metrics.items():
        best = _best(values, higher_is_better(name))
        row = [cell(name)]
        for value in values:
            text = cell(value)
            if best is not None and value == best:
                text.stylize("bold green")
            row.append(text)
        result.add_row(*row)
    parts: list[RenderableType] = [result]
    if not comparison.same_test_split:
        parts.append(
            Text(
                "note: these versions were not scored on the same test rows; their metrics are not directly comparable",
                style="yellow",
            )
        )
    parts.extend(Text(f"note: {note}", style="yellow") for note in comparison.notes)
    return Group(*parts)
