"""The set of services a front end (API, UI, CLI in-process) works with; built in ``aimaas.apps``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aimaas.services.datasets.service import DatasetService
from aimaas.services.endpoints import EndpointService
from aimaas.services.inference import InferenceService
from aimaas.services.jobs import JobService
from aimaas.services.registry import RegistryService
from aimaas.services.tenants import TenantService
from aimaas.services.training.service import TrainingService

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    tenants: TenantService
    datasets: DatasetService
    jobs: JobService
    registry: RegistryService
    training: TrainingService
    endpoints: EndpointService
    inference: InferenceService
    ping: Callable[[], None]  # raises StorageError unless the database answers
