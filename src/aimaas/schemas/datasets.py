"""Datasets on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

__all__ = ["ColumnSchema", "DatasetPublic", "DatasetVersionPublic", "PreviewPage", "SplitCreate", "SplitPublic"]

DATASET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class ColumnSchema(BaseModel):
    name: str
    type: str  # integer | float | boolean | string | text | datetime | image | label | other
    missing: int = 0


class DatasetVersionPublic(BaseModel):
    id: str
    dataset: str
    version: int
    format: str
    sha256: str
    size_bytes: int
    filename: str
    num_rows: int
    columns: list[ColumnSchema]
    target_suggestion: str | None = None
    created_at: datetime
    created: bool = Field(default=True, description="False when an identical upload already existed")


class DatasetPublic(BaseModel):
    id: str
    name: str
    latest_version: int
    created_at: datetime


class PreviewPage(BaseModel):
    dataset: str
    version: int
    columns: list[str]
    rows: list[dict[str, Any]]
    offset: int
    limit: int
    total_rows: int


class SplitCreate(BaseModel):
    version: int | None = Field(default=None, description="defaults to the latest version")
    train: float = Field(default=0.7, gt=0, lt=1)
    validation: float = Field(default=0.15, ge=0, lt=1)
    test: float = Field(default=0.15, ge=0, lt=1)
    seed: int = 0
    stratify_by: str | None = None

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitCreate:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must equal 1 (got {total:g})")
        return self


class SplitPublic(BaseModel):
    id: str
    dataset: str
    version: int
    seed: int
    fractions: dict[str, float]
    stratify_by: str | None
    counts: dict[str, int]
    created_at: datetime


class DatasetDetail(DatasetPublic):
    versions: list[DatasetVersionPublic]


class DatasetStats(BaseModel):
    """Column statistics of one version.

    Each column entry has ``name``, ``type``, ``count``, ``missing``, and by kind: numbers ``mean``,
    ``std``, ``min``, ``max``, ``quantiles`` (``{"0.05": .., "0.25": .., "0.5": .., "0.75": .., "0.95": ..}``) and
    ``histogram`` (``{"edges": [...], "counts": [...]}``); categories ``unique`` and ``top``
    (``[{"value", "count"}]``); text ``length`` (``{"min", "mean", "max"}``); image datasets ``label_counts``.
    ``exact`` is False when quantiles and histograms were estimated from a uniform sample of the rows.
    """

    dataset: str
    version: int
    num_rows: int
    exact: bool = True
    columns: list[dict[str, Any]]
