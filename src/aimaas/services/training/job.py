"""The ``train`` job: runs in a worker process (``aimaas.services.training.job:run``).

It reads the dataset version and its split from the artifact store, runs
:func:`aimaas.training.runner.run_training`, writes the outcome next to each other under
``<output_prefix><job id>/`` (``model.onnx``, ``report.json``, ``plots/*.png``, extra weight files), each
atomically, and returns a JSON result naming them. It writes no metadata rows: the API process registers the
model version when the job succeeds (:meth:`aimaas.services.training.service.TrainingService.finish`), so a
failed or cancelled job registers nothing.

Events: ``log`` with ``fields.phase``; ``metric`` ``trial_score`` / ``best_score`` per trial, ``loss`` /
``valid_score`` per epoch; ``progress`` 0–100.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import numpy as np

from aimaas.config import Settings
from aimaas.domain.jobs import JobContext
from aimaas.services.datasets.frames import read_frame
from aimaas.storage import open_artifact_store
from aimaas.storage.artifacts.base import ArtifactStore
from aimaas.training.base import TaskKind
from aimaas.training.runner import RunHooks, TrainingOutcome, TrainingPlan, run_training

__all__ = ["ENTRYPOINT", "JobReporter", "run"]

ENTRYPOINT = "aimaas.services.training.job:run"
_SEARCH_SPAN = (5.0, 80.0)  # the share of the progress bar the search or the epochs fill


class JobReporter:
    """Turns runner events into job events (logs, metrics, progress)."""

    def __init__(self, ctx: JobContext, plan: TrainingPlan) -> None:
        self._ctx, self._plan = ctx, plan
        self._started = time.monotonic()
        self._best: float | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "phase":
            self._ctx.log(str(event.get("message", "")), phase=event.get("phase"))
            self._ctx.progress(float(event.get("progress", 0.0)))
        elif kind == "trial":
            self._trial(event)
        elif kind == "epoch":
            self._epoch(event)
        elif kind == "resumed":
            self._ctx.log(f"resumed from the checkpoint after epoch {event.get('epoch')}", phase="training")

    def _span(self, fraction: float) -> None:
        low, high = _SEARCH_SPAN
        self._ctx.progress(low + (high - low) * min(1.0, max(0.0, fraction)))

    def _trial(self, event: dict[str, Any]) -> None:
        number = int(event.get("number") or 0)
        score = event.get("score")
        if isinstance(score, int | float):
            self._ctx.metric("trial_score", float(score), step=number, trainer=event.get("trainer"),
                             state=event.get("state"))
        best = event.get("best_score")
        if isinstance(best, int | float) and best != self._best:
            self._best = float(best)
            self._ctx.metric("best_score", float(best), step=number, metric=self._plan.metric)
        self._ctx.log(f"trial {number} {event.get('trainer')}: {event.get('state')} score={score}", phase="searching",
                      trial=number, params=event.get("params"), duration_s=event.get("duration_s"))
        fractions = []
        if self._plan.budget_s:
            fractions.append((time.monotonic() - self._started) / self._plan.budget_s)
        if self._plan.max_trials:
            fractions.append(float(event.get("finished") or number + 1) / self._plan.max_trials)
        if fractions:
            self._span(max(fractions))

    def _epoch(self, event: dict[str, Any]) -> None:
        epoch = int(event.get("epoch") or 0)
        for name in ("loss", "valid_score"):
            value = event.get(name)
            if isinstance(value, int | float):
                self._ctx.metric(name, float(value), step=epoch, epoch=epoch)
        total = event.get("epochs")
        self._ctx.log(f"epoch {epoch}/{total} loss={event.get('loss')} valid={event.get('valid_score')}",
                      phase="training", epoch=epoch)
        fractions = [epoch / total] if isinstance(total, int) and total > 0 else []
        if self._plan.budget_s and isinstance(event.get("elapsed_s"), int | float):
            fractions.append(float(event["elapsed_s"]) / self._plan.budget_s)
        if fractions:
            self._span(max(fractions))


def plan_from_params(params: dict[str, Any]) -> TrainingPlan:
    plan = dict(params["plan"])
    return TrainingPlan(task=TaskKind(plan.pop("task")), **plan)


def run(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """The job function: see the module docstring. ``params`` is built by ``TrainingService.submit``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trials are reported as job events instead
    settings = Settings()
    artifacts = open_artifact_store(settings)
    plan = plan_from_params(params)
    ctx.log("loading the dataset", phase="loading")
    ctx.progress(0)
    frame = _frame(artifacts, params["dataset"], settings)
    with artifacts.open(params["split"]["artifact_key"]) as fh:
        assignment = np.load(io.BytesIO(fh.read()), allow_pickle=False)
    hooks = RunHooks(report=JobReporter(ctx, plan), should_stop=ctx.cancelled, check=ctx.raise_if_cancelled)
    outcome = run_training(frame, assignment, plan, hooks=hooks, checkpoint_dir=ctx.checkpoint_dir)
    ctx.raise_if_cancelled()
    ctx.log("writing the model and its report", phase="registering")
    return write_outcome(artifacts, f"{params['output_prefix']}{ctx.job_id}/", outcome)


def _frame(artifacts: ArtifactStore, dataset: dict[str, Any], settings: Settings) -> Any:
    key, fmt = dataset["artifact_key"], dataset["format"]
    local = artifacts.local_path(key)
    if local is not None:
        return read_frame(local, fmt)
    import shutil
    import tempfile

    settings.staging_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=settings.staging_dir, prefix="train-") as tmp:
        with artifacts.open(key) as src:
            shutil.copyfileobj(src, tmp, 1024 * 1024)
        tmp.flush()
        from pathlib import Path

        return read_frame(Path(tmp.name), fmt)


def write_outcome(artifacts: ArtifactStore, prefix: str, outcome: TrainingOutcome) -> dict[str, Any]:
    """Store the outcome's files under ``prefix``; return the JSON result the registration reads."""
    stored = artifacts.put_bytes(prefix + "model.onnx", outcome.onnx)
    files: dict[str, str] = {}
    for name, data in sorted(outcome.files.items()):
        files[name] = artifacts.put_bytes(prefix + name, data).key
    plots: dict[str, str] = {}
    for name, data in sorted(outcome.plots.items()):
        plots[name] = artifacts.put_bytes(f"{prefix}plots/{name}.png", data).key
    report = artifacts.put_bytes(prefix + "report.json", json.dumps(outcome.report, default=str).encode())
    tuning = outcome.tuning or {}
    return {
        "artifact": {"key": stored.key, "sha256": stored.sha256, "size_bytes": stored.size_bytes},
        "report_key": report.key,
        "files": files,
        "plots": plots,
        "task": outcome.task.value,
        "modality": outcome.modality,
        "trainer": outcome.trainer,
        "params": outcome.params,
        "metric": outcome.metric,
        "score": outcome.score,
        "metrics": outcome.metrics,
        "signature": outcome.signature,
        "parity": outcome.parity,
        "fit": outcome.fit,
        "split_counts": outcome.counts,
        "trials": len(tuning.get("trials") or []),
        "search": {k: tuning.get(k) for k in ("best_score", "best_trial", "stop_reason", "search_seconds",
                                               "refit_seconds", "cv", "counts", "study_name")} if tuning else None,
        "notes": outcome.notes,
    }
