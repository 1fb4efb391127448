"""Training on the wire: what a client sends to train a model on a dataset (the answer is the queued job)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TASK_CHOICES", "TrainCreate"]

TaskChoice = Literal["auto", "classification", "regression", "text", "image", "clustering"]
TASK_CHOICES: tuple[str, ...] = ("auto", "classification", "regression", "text", "image", "clustering")


class TrainCreate(BaseModel):
    """Train (and by default tune) a model on a dataset version and register the result.

    ``task``: ``auto`` decides from the data (an image-folder dataset is ``image``; a target with text in it
    and a long-text column is ``text``; a numeric target with many values is ``regression``; otherwise
    ``classification``); ``clustering`` needs no target. ``budget_s`` bounds the search (and a neural
    trainer's training time); ``max_trials`` bounds the number of trials. ``trainer`` with ``params`` trains
    one configuration instead of searching. See docs/training.md.
    """

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=128, description="dataset name")
    dataset_version: int | None = Field(default=None, ge=1, description="default: the latest version")
    target: str | None = Field(default=None, min_length=1, max_length=256, description="column to predict")
    task: TaskChoice = "auto"
    metric: str | None = Field(default=None, max_length=64, description="tuning metric, e.g. f1_macro, r2")
    budget_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600, description="search time budget (s)")
    max_trials: int | None = Field(default=None, ge=1, le=100_000, description="trial budget")
    trainer: str | None = Field(default=None, max_length=64, description="train this trainer only")
    trainers: list[str] | None = Field(default=None, max_length=32, description="search only these trainers")
    params: dict[str, Any] = Field(default_factory=dict, description="hyperparameters for `trainer`")
    model: str | None = Field(default=None, max_length=128, description="registered model name")
    split_id: str | None = Field(default=None, max_length=64, description="an existing split of the version")
    fractions: tuple[float, float, float] = Field(default=(0.7, 0.15, 0.15), description="train/validation/test")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    cv_folds: int = Field(default=5, ge=2, le=20)
    text_column: str | None = Field(default=None, max_length=256, description="the text column (task text)")
    parallel_trials: int = Field(default=1, ge=1, le=16, description="worker processes running trials")
    priority: int = Field(default=0, ge=-1000, le=1000)
    resume_from: str | None = Field(default=None, max_length=128, description="an earlier job's checkpoint")
