"""Rows ↔ frozen domain objects. Nothing outside ``aimaas.storage.sql`` ever sees a row."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import RowMapping

from aimaas.domain import (
    ApiKey,
    Dataset,
    DatasetReference,
    DatasetSplit,
    DatasetVersion,
    Endpoint,
    Job,
    JobEvent,
    JobSpec,
    JobState,
    ModelAlias,
    ModelReference,
    ModelVersion,
    RegisteredModel,
    Tenant,
)

__all__ = [
    "dumps",
    "endpoint_settings_values",
    "endpoint_values",
    "fractions_key",
    "job_event_values",
    "job_values",
    "model_version_values",
    "stratify_key",
    "to_api_key",
    "to_dataset",
    "to_endpoint",
    "to_job",
    "to_job_event",
    "to_model_alias",
    "to_model_reference",
    "to_model_version",
    "to_registered_model",
    "to_reference",
    "to_split",
    "to_tenant",
    "to_version",
    "version_values",
]


def dumps(value: Any) -> str:
    """Canonical JSON text (sorted keys, no spaces) so equal values compare equal in SQL."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def fractions_key(fractions: tuple[float, float, float]) -> str:
    return dumps([float(f) for f in fractions])


def stratify_key(stratify_by: str | None) -> str:
    return dumps(stratify_by)


def to_tenant(row: RowMapping) -> Tenant:
    return Tenant(id=row["id"], name=row["name"], created_at=row["created_at"])


def to_api_key(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        prefix=row["prefix"],
        key_hash=row["key_hash"],
        scopes=frozenset(json.loads(row["scopes"])),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def to_dataset(row: RowMapping) -> Dataset:
    return Dataset(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        created_at=row["created_at"],
        latest_version=row["latest_version"],
    )


def version_values(v: DatasetVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "dataset_id": v.dataset_id,
        "tenant_id": v.tenant_id,
        "version": v.version,
        "format": v.format,
        "sha256": v.sha256,
        "size_bytes": v.size_bytes,
        "artifact_key": v.artifact_key,
        "filename": v.filename,
        "num_rows": v.num_rows,
        "schema_json": dumps(v.schema),
        "stats_json": dumps(v.stats),
        "target_suggestion": v.target_suggestion,
        "created_at": v.created_at,
    }


def to_version(row: RowMapping) -> DatasetVersion:
    return DatasetVersion(
        id=row["id"],
        dataset_id=row["dataset_id"],
        tenant_id=row["tenant_id"],
        version=row["version"],
        format=row["format"],
        sha256=row["sha256"],
        size_bytes=row["size_bytes"],
        artifact_key=row["artifact_key"],
        filename=row["filename"],
        num_rows=row["num_rows"],
        schema=json.loads(row["schema_json"]),
        stats=json.loads(row["stats_json"]),
        created_at=row["created_at"],
        target_suggestion=row["target_suggestion"],
    )


def to_split(row: RowMapping) -> DatasetSplit:
    f0, f1, f2 = json.loads(row["fractions"])
    return DatasetSplit(
        id=row["id"],
        version_id=row["version_id"],
        tenant_id=row["tenant_id"],
        seed=row["seed"],
        fractions=(f0, f1, f2),
        stratify_by=json.loads(row["stratify_by"]),
        counts=json.loads(row["counts_json"]),
        artifact_key=row["artifact_key"],
        created_at=row["created_at"],
    )


def to_reference(row: RowMapping) -> DatasetReference:
    return DatasetReference(
        dataset_id=row["dataset_id"],
        tenant_id=row["tenant_id"],
        holder_kind=row["holder_kind"],
        holder_id=row["holder_id"],
        created_at=row["created_at"],
    )


def to_registered_model(row: RowMapping) -> RegisteredModel:
    return RegisteredModel(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        description=row["description"],
        created_at=row["created_at"],
        latest_version=row["latest_version"],
    )


def model_version_values(v: ModelVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "model_id": v.model_id,
        "tenant_id": v.tenant_id,
        "version": v.version,
        "status": v.status,
        "task": v.task,
        "format": v.format,
        "artifact_key": v.artifact_key,
        "sha256": v.sha256,
        "size_bytes": v.size_bytes,
        "signature_json": dumps(v.signature),
        "metrics_json": dumps(v.metrics),
        "params_json": dumps(v.params),
        "lineage_json": dumps(v.lineage),
        "card_markdown": v.card_markdown,
        "created_at": v.created_at,
    }


def to_model_version(row: RowMapping) -> ModelVersion:
    return ModelVersion(
        id=row["id"],
        model_id=row["model_id"],
        tenant_id=row["tenant_id"],
        version=row["version"],
        status=row["status"],
        task=row["task"],
        format=row["format"],
        artifact_key=row["artifact_key"],
        sha256=row["sha256"],
        size_bytes=row["size_bytes"],
        signature=json.loads(row["signature_json"]),
        metrics=json.loads(row["metrics_json"]),
        params=json.loads(row["params_json"]),
        lineage=json.loads(row["lineage_json"]),
        card_markdown=row["card_markdown"],
        created_at=row["created_at"],
    )


def to_model_alias(row: RowMapping) -> ModelAlias:
    return ModelAlias(
        model_id=row["model_id"],
        tenant_id=row["tenant_id"],
        alias=row["alias"],
        version=row["version"],
        updated_at=row["updated_at"],
    )


def to_model_reference(row: RowMapping) -> ModelReference:
    return ModelReference(
        model_id=row["model_id"],
        tenant_id=row["tenant_id"],
        holder_kind=row["holder_kind"],
        holder_id=row["holder_id"],
        created_at=row["created_at"],
    )


def job_values(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "kind": job.spec.kind,
        "entrypoint": job.spec.entrypoint,
        "params_json": dumps(job.spec.params),
        "resume_from": job.spec.resume_from,
        "priority": job.priority,
        "state": job.state.value,
        "progress": float(job.progress),
        "error": job.error,
        "result_json": None if job.result is None else dumps(job.result),
        "idempotency_key": job.idempotency_key,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "cancel_requested_at": job.cancel_requested_at,
        "owner": job.owner,
        "heartbeat_at": job.heartbeat_at,
    }


def to_job(row: RowMapping) -> Job:
    spec = JobSpec(
        kind=row["kind"],
        entrypoint=row["entrypoint"],
        params=json.loads(row["params_json"]),
        tenant_id=row["tenant_id"],
        priority=row["priority"],
        resume_from=row["resume_from"],
    )
    return Job(
        id=row["id"],
        tenant_id=row["tenant_id"],
        spec=spec,
        state=JobState(row["state"]),
        created_at=row["created_at"],
        priority=row["priority"],
        progress=float(row["progress"]),
        error=row["error"],
        result=None if row["result_json"] is None else json.loads(row["result_json"]),
        idempotency_key=row["idempotency_key"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        cancel_requested_at=row["cancel_requested_at"],
        owner=row["owner"],
        heartbeat_at=row["heartbeat_at"],
    )


def job_event_values(event: JobEvent) -> dict[str, Any]:
    return {
        "job_id": event.job_id,
        "seq": event.seq,
        "time": event.time,
        "type": event.type,
        "payload_json": dumps(event.payload),
    }


def to_job_event(row: RowMapping) -> JobEvent:
    return JobEvent(
        job_id=row["job_id"],
        seq=row["seq"],
        time=row["time"],
        type=row["type"],
        payload=json.loads(row["payload_json"]),
    )


def endpoint_settings_values(e: Endpoint) -> dict[str, Any]:
    """The columns an update may change (everything but id, tenant, name, model and created_at)."""
    return {
        "selector": e.selector,
        "canary_selector": e.canary_selector,
        "canary_weight": float(e.canary_weight),
        "min_replicas": e.min_replicas,
        "max_replicas": e.max_replicas,
        "max_batch_size": e.max_batch_size,
        "max_wait_ms": float(e.max_wait_ms),
        "idle_timeout_s": float(e.idle_timeout_s),
        "target_ongoing_requests": e.target_ongoing_requests,
        "description": e.description,
        "updated_at": e.updated_at,
    }


def endpoint_values(e: Endpoint, model_id: str) -> dict[str, Any]:
    return {
        "id": e.id,
        "tenant_id": e.tenant_id,
        "name": e.name,
        "model_id": model_id,
        "model_name": e.model_name,
        "created_at": e.created_at,
    } | endpoint_settings_values(e)


def to_endpoint(row: RowMapping) -> Endpoint:
    return Endpoint(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        model_name=row["model_name"],
        selector=row["selector"],
        canary_selector=row["canary_selector"],
        canary_weight=float(row["canary_weight"]),
        min_replicas=row["min_replicas"],
        max_replicas=row["max_replicas"],
        max_batch_size=row["max_batch_size"],
        max_wait_ms=float(row["max_wait_ms"]),
        idle_timeout_s=float(row["idle_timeout_s"]),
        target_ongoing_requests=row["target_ongoing_requests"],
        description=row["description"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
