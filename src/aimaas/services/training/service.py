"""TrainingService: turn a training request into a queued ``train`` job, and a succeeded one into a model version.

``submit`` checks everything it can before queueing (:func:`~aimaas.services.training.plan.resolve_plan`),
makes or finds the split, and records a dataset reference held by the job, so the dataset cannot be deleted
under a queued or running job. ``finish`` is called by the job loop when a ``train`` job succeeds: it renders
the model card and registers the version; if that fails the job is failed and its files are removed.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from aimaas._version import __version__
from aimaas.domain import Job, ModelVersion, Principal, new_id, utcnow
from aimaas.domain.registry import check_model_name
from aimaas.errors import AimaasError, InvalidInput, NotFound
from aimaas.services.datasets.service import DatasetService
from aimaas.services.jobs import JobService
from aimaas.services.registry import RegistryService
from aimaas.services.training.job import ENTRYPOINT
from aimaas.services.training.plan import resolve_plan
from aimaas.storage.artifacts.base import ArtifactStore

__all__ = ["JOB_KIND", "TrainingService"]

JOB_KIND = "train"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class TrainingService:
    """Queues training jobs for a tenant and registers what they produce."""

    def __init__(self, datasets: DatasetService, jobs: JobService, registry: RegistryService,
                 artifacts: ArtifactStore) -> None:
        self._datasets, self._jobs, self._registry, self._artifacts = datasets, jobs, registry, artifacts
        jobs.add_finisher(JOB_KIND, self.finish)

    def submit(self, principal: Principal, request: dict[str, Any],
               idempotency_key: str | None = None) -> tuple[Job, bool]:
        """Validate ``request`` (a :class:`aimaas.schemas.TrainCreate` dump), queue the job; ``(job, created)``."""
        name = request["dataset"]
        version = self._datasets.version(principal, name, request.get("dataset_version"))
        plan = resolve_plan(request, version, name)
        model = request.get("model") or _default_model_name(name, plan.task.value if plan.modality == "tabular"
                                                            else plan.modality)
        check_model_name(model, param="model")
        split = self._split(principal, request, version.version, plan.target if plan.task.value == "classification"
                            else None)
        params = {
            "dataset": {"name": name, "id": version.dataset_id, "version": version.version,
                        "version_id": version.id, "format": version.format, "artifact_key": version.artifact_key,
                        "sha256": version.sha256, "num_rows": version.num_rows},
            "split": {"id": split.id, "artifact_key": split.artifact_key, "counts": split.counts,
                      "seed": split.seed, "fractions": list(split.fractions), "stratify_by": split.stratify_by},
            "plan": {**plan.to_params(), "seed": request.get("seed", 0), "cv_folds": request.get("cv_folds", 5),
                     "parallel_trials": request.get("parallel_trials", 1), "schema": version.schema},
            "model": model,
            "output_prefix": f"tenants/{principal.tenant_id}/models/{model}/jobs/",
        }
        job, created = self._jobs.create(
            principal,
            {"kind": JOB_KIND, "entrypoint": ENTRYPOINT, "params": params, "priority": request.get("priority", 0),
             "resume_from": request.get("resume_from")},
            idempotency_key=idempotency_key,
        )
        if created:
            self._datasets.add_reference(principal, name, "job", job.id)
        return job, created

    def retry(self, principal: Principal, job_id: str) -> Job:
        """Run a ``train`` job again from its checkpoint (see :meth:`JobService.retry`), holding the dataset."""
        old = self._jobs.get(principal, job_id)
        if old.spec.kind != JOB_KIND:
            raise InvalidInput(f"job {job_id} is a {old.spec.kind} job, not a training job", param="job_id")
        dataset = old.spec.params["dataset"]
        self._datasets.version(principal, dataset["name"], dataset["version"])  # 404 once the data is gone
        job = self._jobs.retry(principal, job_id)
        self._datasets.add_reference(principal, dataset["name"], "job", job.id)
        return job

    def _split(self, principal: Principal, request: dict[str, Any], version: int, stratify_by: str | None) -> Any:
        split_id = request.get("split_id")
        name = request["dataset"]
        if split_id is not None:
            _, splits = self._datasets.splits(principal, name, version)
            for split in splits:
                if split.id == split_id:
                    return split
            raise NotFound(f"split {split_id!r} not found for {name} v{version}", param="split_id")
        fractions = tuple(float(f) for f in request.get("fractions", (0.7, 0.15, 0.15)))
        _, split, _ = self._datasets.split(principal, name, version, fractions=fractions,  # type: ignore[arg-type]
                                           seed=int(request.get("seed", 0)), stratify_by=stratify_by)
        return split

    # -- the job loop's hook -----------------------------------------------------------------
    def finish(self, job: Job, result: dict[str, Any]) -> dict[str, Any]:
        """Register the version a succeeded job produced; return the job's result with ``model``, ``version``
        and ``ref`` added. Raises (and removes the job's files) when registration fails."""
        params = job.spec.params
        try:
            version = self._register(job, params, result)
        except BaseException:
            self._delete_outputs(result)
            raise
        finally:
            self._release_dataset(job)
        return {**result, "model": params["model"], "version": version.version,
                "ref": f"{params['model']}/{version.version}"}

    def _register(self, job: Job, params: dict[str, Any], result: dict[str, Any]) -> ModelVersion:
        from aimaas.training.model_card import library_versions, render_model_card

        dataset, split, plan = params["dataset"], params["split"], params["plan"]
        artifact = result["artifact"]
        lineage = {
            "source": "training", "job_id": job.id, "dataset_id": dataset["id"], "dataset": dataset["name"],
            "dataset_version": dataset["version"], "dataset_version_id": dataset["version_id"],
            "dataset_sha256": dataset["sha256"], "split_id": split["id"], "split_counts": result.get("split_counts"),
            "target": plan.get("target"), "text_column": plan.get("text_column"), "trainer": result["trainer"],
            "modality": result.get("modality"), "seed": plan.get("seed"), "libraries": library_versions(),
            "code_version": __version__, "search": result.get("search"),
            "outputs": {"report": result.get("report_key"), "files": result.get("files") or {},
                        "plots": result.get("plots") or {}},
        }
        # The store numbers versions when it adds them; the card is written first with the next number, which
        # only a concurrent registration of the same model name (another server, an import) could take.
        report = self._registry.read_json(result.get("report_key"))
        evaluation = {k: v for k, v in report.items()
                      if k not in ("tuning", "epochs", "parity", "importance", "split_counts", "modality",
                                   "plot_captions")}
        counts = result.get("split_counts") or {}
        facts = {
            "name": params["model"], "version": self._registry.latest_number(job.tenant_id, params["model"]) + 1,
            "task": result["task"], "modality": result.get("modality"), "trainer": result["trainer"],
            "params": result.get("params") or {}, "fit": result.get("fit") or {},
            "dataset": {"name": dataset["name"], "version": dataset["version"], "rows": dataset["num_rows"],
                        "sha256": dataset["sha256"], "target": plan.get("target"),
                        "split": {"id": split["id"], "seed": split.get("seed"), "train": counts.get("train"),
                                  "valid": counts.get("validation"), "test": counts.get("test")}},
            "tuning": report.get("tuning"), "budget": {"n_trials": plan.get("max_trials"),
                                                       "timeout_s": plan.get("budget_s")},
            "metrics": evaluation, "importance": report.get("importance"), "parity": result.get("parity") or {},
            "signature": result.get("signature") or {}, "library_versions": lineage["libraries"],
            "code_version": __version__, "created_at": utcnow(), "seed": plan.get("seed"),
            "plots": {name: (report.get("plot_captions") or {}).get(name, name)
                      for name in sorted(result.get("plots") or {})},
            "notes": result.get("notes") or [],
        }
        draft = ModelVersion(
            id=new_id("mv"), model_id="", tenant_id=job.tenant_id, version=0, status="ready", task=result["task"],
            format="onnx", artifact_key=artifact["key"], sha256=artifact["sha256"],
            size_bytes=int(artifact["size_bytes"]), signature=result.get("signature") or {},
            metrics=result.get("metrics") or {}, params=result.get("params") or {}, lineage=lineage,
            card_markdown=render_model_card(facts),
        )
        return self._registry.register(job.tenant_id, params["model"], draft)

    def _release_dataset(self, job: Job) -> None:
        self._datasets.release(job.tenant_id, job.spec.params["dataset"]["id"], "job", job.id)

    def _delete_outputs(self, result: dict[str, Any]) -> None:
        keys = [result.get("artifact", {}).get("key"), result.get("report_key"),
                *dict(result.get("files") or {}).values(), *dict(result.get("plots") or {}).values()]
        for key in keys:
            if isinstance(key, str):
                with contextlib.suppress(AimaasError):
                    self._artifacts.delete(key)


def _default_model_name(dataset: str, kind: str) -> str:
    return _UNSAFE.sub("-", f"{dataset}-{kind}")[:128].strip("-.") or "model"

