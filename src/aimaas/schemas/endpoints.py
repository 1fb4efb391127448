"""Endpoints and predictions on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CanarySpec",
    "EndpointCreate",
    "EndpointPublic",
    "EndpointStatus",
    "EndpointUpdate",
    "PredictRequest",
    "PredictResponse",
    "ReplicaStatus",
]


class CanarySpec(BaseModel):
    """Send ``weight`` (0–1) of the requests to ``model``: a ref of the same model (``name/4``, ``name@staging``)."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=200)
    weight: float = Field(ge=0, le=1)


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_replicas: int | None = Field(default=None, ge=0, le=64, description="0 allows scale to zero")
    max_replicas: int | None = Field(default=None, ge=1, le=64)
    max_batch_size: int | None = Field(default=None, ge=1, le=4096)
    max_wait_ms: float | None = Field(default=None, ge=0, le=1000)
    idle_timeout_s: float | None = Field(default=None, ge=1, le=7 * 24 * 3600, description="before scaling to 0")
    target_ongoing_requests: int | None = Field(default=None, ge=1, le=10_000, description="autoscaling set point")
    description: str | None = Field(default=None, max_length=500)


class EndpointCreate(_Settings):
    """Deploy ``model`` (``name``, ``name/3`` or ``name@alias``: an alias is followed when it moves)."""

    name: str = Field(min_length=1, max_length=63)
    model: str = Field(min_length=1, max_length=200)
    canary: CanarySpec | None = None


class EndpointUpdate(_Settings):
    """Change what an endpoint serves or how; ``canary: null`` with ``clear_canary`` removes the canary."""

    model: str | None = Field(default=None, min_length=1, max_length=200)
    canary: CanarySpec | None = None
    clear_canary: bool = False


class ReplicaStatus(BaseModel):
    id: str
    version: int
    state: Literal["loading", "ready", "draining", "failed"]
    ongoing: int = 0
    served: int = 0


class EndpointStatus(BaseModel):
    """What is running now: ``state`` is ``loading``, ``ready``, ``scaling``, ``idle`` (scaled to zero) or
    ``failed`` (``reason`` says why)."""

    state: Literal["loading", "ready", "scaling", "idle", "failed"]
    reason: str | None = None
    version: int | None = Field(default=None, description="the version the main selector resolves to")
    canary_version: int | None = None
    replicas: list[ReplicaStatus] = Field(default_factory=list)


class EndpointPublic(BaseModel):
    name: str
    model: str = Field(description="the model ref as deployed (name, name/3 or name@alias)")
    canary: CanarySpec | None = None
    task: str | None = None
    min_replicas: int
    max_replicas: int
    max_batch_size: int
    max_wait_ms: float
    idle_timeout_s: float
    target_ongoing_requests: int
    description: str | None = None
    status: EndpointStatus
    created_at: datetime
    updated_at: datetime


class PredictRequest(BaseModel):
    """``inputs``: a list of rows (``{"column": value}``; ``{"text": ...}`` for text models, ``{"image":
    base64}`` for image models) or a dict of columns (``{"column": [values]}``)."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[dict[str, Any]] | dict[str, list[Any]]


class PredictResponse(BaseModel):
    predictions: list[dict[str, Any]]
    model: str
    version: int
    endpoint: str
