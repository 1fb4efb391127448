"""The model registry on the wire: registered models, versions, aliases, comparisons."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["AliasSet", "ModelComparison", "ModelDetail", "ModelPublic", "ModelVersionPublic", "VersionStatusSet"]


class ModelVersionPublic(BaseModel):
    """One immutable model version. ``ref`` is how to name it elsewhere (``name/3``)."""

    model: str
    version: int
    ref: str
    status: Literal["ready", "archived"]
    task: str
    format: Literal["onnx", "safetensors", "gguf"]
    sha256: str
    size_bytes: int
    aliases: list[str] = Field(default_factory=list)
    signature: dict[str, Any] = Field(default_factory=dict, description="inputs and outputs")
    metrics: dict[str, Any] = Field(default_factory=dict, description="test metrics (scalars)")
    params: dict[str, Any] = Field(default_factory=dict, description="hyperparameters in effect")
    lineage: dict[str, Any] = Field(default_factory=dict, description="dataset, split, job, trainer, versions")
    files: list[str] = Field(default_factory=list, description="files to download beside the model")
    plots: list[str] = Field(default_factory=list, description="plot names (GET .../plots/NAME.png)")
    created_at: datetime


class ModelPublic(BaseModel):
    name: str
    description: str | None = None
    latest_version: int
    aliases: dict[str, int] = Field(default_factory=dict, description="alias → version")
    created_at: datetime


class ModelDetail(ModelPublic):
    versions: list[ModelVersionPublic] = Field(default_factory=list)


class AliasSet(BaseModel):
    version: int = Field(ge=1)


class VersionStatusSet(BaseModel):
    status: Literal["ready", "archived"]


class ModelComparison(BaseModel):
    """Versions side by side. ``metrics`` maps a metric name to one value per version (None: not measured).
    ``same_test_split`` is True when every version was scored on the same dataset version's same test rows."""

    versions: list[ModelVersionPublic]
    metrics: dict[str, list[float | None]]
    same_test_split: bool
    notes: list[str] = Field(default_factory=list)
