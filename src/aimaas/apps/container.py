"""Composition root: builds the concrete stores and services from Settings."""

from __future__ import annotations

from dataclasses import dataclass

from aimaas.config import Settings
from aimaas.services.container import Services
from aimaas.services.datasets.ingest import IngestLimits
from aimaas.services.datasets.service import DatasetService
from aimaas.services.tenants import TenantService
from aimaas.storage import open_artifact_store, open_metadata_store
from aimaas.storage.artifacts.base import ArtifactStore
from aimaas.storage.base import MetadataStore

__all__ = ["Container", "build_container"]


@dataclass
class Container:
    settings: Settings
    store: MetadataStore
    artifacts: ArtifactStore
    services: Services

    def close(self) -> None:
        self.store.close()


def build_container(settings: Settings) -> Container:
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = open_metadata_store(settings)  # applies migrations; refuses a newer schema
    artifacts = open_artifact_store(settings)
    limits = IngestLimits(
        max_archive_entries=settings.max_archive_entries,
        max_archive_bytes=settings.max_archive_bytes,
        max_archive_ratio=settings.max_archive_ratio,
    )
    services = Services(
        tenants=TenantService(store),
        datasets=DatasetService(
            store,
            artifacts,
            staging_dir=settings.staging_dir,
            max_upload_bytes=settings.max_upload_bytes,
            limits=limits,
        ),
        ping=store.ping,
    )
    return Container(settings=settings, store=store, artifacts=artifacts, services=services)
