"""Jobs on the wire: what a client sends to queue one, and what it reads back (the job and its events)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["JobCreate", "JobEventList", "JobEventPublic", "JobPublic"]

JobStateName = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobCreate(BaseModel):
    """Queue a job: ``entrypoint`` is ``"package.module:function"`` inside an allowed package."""

    kind: str = Field(min_length=1, max_length=64, description="what the job is for: train, tune, evaluate…")
    entrypoint: str = Field(min_length=3, max_length=300, description="'package.module:function'")
    params: dict[str, Any] = Field(default_factory=dict, description="JSON object given to the function")
    priority: int = Field(default=0, ge=-1000, le=1000, description="higher starts first")
    resume_from: str | None = Field(default=None, max_length=128, description="an earlier job to resume")


class JobPublic(BaseModel):
    id: str
    kind: str
    entrypoint: str
    params: dict[str, Any]
    state: JobStateName
    priority: int
    progress: float = Field(description="0-100")
    error: str | None = Field(default=None, description="why the job failed or was cancelled")
    result: dict[str, Any] | None = None
    resume_from: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested_at: datetime | None = None


class JobEventPublic(BaseModel):
    """One event a job reported: ``log``, ``metric``, ``progress`` or ``state`` (see docs/executors.md)."""

    job_id: str
    seq: int = Field(description="1, 2, 3… per job; pass the last one back as after_seq")
    time: datetime
    type: Literal["log", "metric", "progress", "state"]
    payload: dict[str, Any]


class JobEventList(BaseModel):
    items: list[JobEventPublic]
    next_after_seq: int | None = Field(default=None, description="pass as after_seq for more; None: none yet")
