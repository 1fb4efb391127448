"""Composition root: builds the concrete stores and services from Settings."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from aimaas.config import Settings
from aimaas.executors import Executor, create_executor
from aimaas.services.container import Services
from aimaas.services.datasets.ingest import IngestLimits
from aimaas.services.datasets.service import DatasetService
from aimaas.services.endpoints import EndpointService
from aimaas.services.inference import InferenceService
from aimaas.services.jobs import JobService
from aimaas.services.registry import RegistryService
from aimaas.services.tenants import TenantService
from aimaas.services.training.service import TrainingService
from aimaas.serving.controller import ServingController
from aimaas.serving.materialize import Materializer
from aimaas.storage import open_artifact_store, open_metadata_store
from aimaas.storage.artifacts.base import ArtifactStore
from aimaas.storage.base import MetadataStore

__all__ = ["Container", "build_container", "build_executor", "server_owner"]


@dataclass
class Container:
    settings: Settings
    store: MetadataStore
    artifacts: ArtifactStore
    services: Services

    def close(self) -> None:
        """Stop the executor (running jobs end ``failed``; a second call does nothing), then the store."""
        try:
            self.services.jobs.close()
        finally:
            self.store.close()


def server_owner() -> str:
    """A job owner id unique to this process start: ``host-pid-random``."""
    return f"{socket.gethostname()[:60]}-{os.getpid()}-{secrets.token_hex(4)}"


def build_executor(settings: Settings) -> Executor:
    """The executor named by ``AIMAAS_EXECUTOR``, writing checkpoints under ``$AIMAAS_HOME/checkpoints``."""
    settings.checkpoint_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "checkpoint_root": settings.checkpoint_dir,
        "allowed_modules": tuple(settings.job_entrypoints),
    }
    if settings.executor == "local":
        options["workers"] = settings.workers
        options["preload"] = tuple(settings.worker_preload)
        options["warm"] = True
    return create_executor(settings.executor, **options)


def build_container(settings: Settings) -> Container:
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = open_metadata_store(settings)  # applies migrations; refuses a newer schema
    artifacts = open_artifact_store(settings)
    limits = IngestLimits(
        max_archive_entries=settings.max_archive_entries,
        max_archive_bytes=settings.max_archive_bytes,
        max_archive_ratio=settings.max_archive_ratio,
    )
    jobs = JobService(
        store,
        build_executor(settings),
        owner=server_owner(),
        limit_per_tenant=settings.jobs_per_tenant,
        heartbeat_stale_s=settings.heartbeat_stale_s,
        allowed_modules=settings.job_entrypoints,
    )
    datasets = DatasetService(
        store,
        artifacts,
        staging_dir=settings.staging_dir,
        max_upload_bytes=settings.max_upload_bytes,
        limits=limits,
    )
    registry = RegistryService(
        store, artifacts, staging_dir=settings.staging_dir, max_upload_bytes=settings.max_upload_bytes,
        archive_limits={"max_entries": settings.max_archive_entries, "max_ratio": settings.max_archive_ratio},
    )
    controller = ServingController(
        store, Materializer(artifacts, settings.home / "model-cache"),
        cold_start_timeout_s=settings.cold_start_timeout_s, memory_budget_bytes=settings.serving_memory_bytes,
    )
    services = Services(
        tenants=TenantService(store, auth_cache_s=settings.auth_cache_s),
        datasets=datasets,
        jobs=jobs,
        registry=registry,
        training=TrainingService(datasets, jobs, registry, artifacts),
        endpoints=EndpointService(store, controller),
        inference=InferenceService(controller),
        ping=store.ping,
    )
    return Container(settings=settings, store=store, artifacts=artifacts, services=services)
