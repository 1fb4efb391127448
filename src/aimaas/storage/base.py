"""MetadataStore: the one interface services use to persist platform metadata.

Contract (every backend passes ``aimaas.testing.store_contract``):

* Methods take and return frozen domain objects from :mod:`aimaas.domain`, never ORM rows.
* Every tenant-owned read takes the ``tenant_id`` of the authenticated principal; a row of another
  tenant behaves exactly like a missing row (:class:`~aimaas.errors.NotFound`).
* Each method is one transaction: it either happens whole or not at all.
* Driver errors never escape: they become :class:`~aimaas.errors.StorageError` (or a more precise
  :class:`~aimaas.errors.Conflict` for uniqueness violations).
* Listing methods return items in ascending ``id`` order (ids sort by creation time) after the
  optional ``after`` cursor (an id), at most ``limit`` items.

The model registry methods (``*model*``) follow the same rules and pass ``aimaas.testing.registry_contract``.
The endpoint methods (``*endpoint*``) follow them and pass ``aimaas.testing.endpoints_contract``.
The job methods (``*job*``) follow them too and pass ``aimaas.testing.jobs_contract``; the ones without a
``tenant_id`` (``claim_jobs``, ``update_job``, ``append_job_events``, ``fail_orphaned_jobs``) are for the jobs
service only and must never be reachable with a tenant's input.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aimaas.domain import (
    ApiKey,
    Dataset,
    DatasetReference,
    DatasetSplit,
    DatasetVersion,
    Endpoint,
    Job,
    JobEvent,
    JobState,
    ModelAlias,
    ModelRef,
    ModelReference,
    ModelVersion,
    RegisteredModel,
    Tenant,
)
from aimaas.errors import InvalidInput

__all__ = ["MetadataStore", "check_job_events", "check_job_progress", "check_new_job"]


def check_new_job(job: Job) -> None:
    """Shared ``create_job`` check: only a fresh, queued job may be inserted."""
    if not isinstance(job, Job):
        raise InvalidInput("job must be a Job", param="job")
    if job.state is not JobState.QUEUED:
        raise InvalidInput(f"a new job must be queued, not {job.state}", param="state")


def check_job_progress(progress: float) -> float:
    """Shared ``update_job`` check: progress is a number from 0 to 100."""
    if isinstance(progress, bool) or not isinstance(progress, int | float) or not 0 <= progress <= 100:
        raise InvalidInput(f"progress must be a number from 0 to 100; got {progress!r}", param="progress")
    return float(progress)


def check_job_events(job_id: str, events: Sequence[JobEvent]) -> None:
    """Shared ``append_job_events`` check: every event belongs to ``job_id`` and has a positive ``seq``."""
    for event in events:
        if not isinstance(event, JobEvent) or event.job_id != job_id:
            raise InvalidInput(f"every event must be a JobEvent of job {job_id!r}", param="events")
        if isinstance(event.seq, bool) or not isinstance(event.seq, int) or event.seq < 1:
            raise InvalidInput(f"event seq must be a positive integer; got {event.seq!r}", param="events")


class MetadataStore(abc.ABC):
    """Abstract metadata store. See the module docstring for the contract."""

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Safe to call twice."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StorageError unless the backing database answers (readiness probe)."""

    # -- tenants -----------------------------------------------------------------------------
    @abc.abstractmethod
    def create_tenant(self, tenant: Tenant) -> Tenant:
        """Insert ``tenant``. Conflict if the name is taken."""

    @abc.abstractmethod
    def get_tenant(self, tenant_id: str) -> Tenant:
        """NotFound if no such tenant."""

    @abc.abstractmethod
    def get_tenant_by_name(self, name: str) -> Tenant | None: ...

    @abc.abstractmethod
    def list_tenants(self, *, limit: int = 100, after: str | None = None) -> list[Tenant]: ...

    # -- API keys ----------------------------------------------------------------------------
    @abc.abstractmethod
    def create_api_key(self, key: ApiKey) -> ApiKey:
        """Insert ``key`` (its hash; the secret is never given to the store). NotFound if the tenant is missing."""

    @abc.abstractmethod
    def find_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, whatever its state (callers check expiry and revocation)."""

    @abc.abstractmethod
    def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey: ...

    @abc.abstractmethod
    def list_api_keys(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[ApiKey]: ...

    @abc.abstractmethod
    def revoke_api_key(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey:
        """Mark revoked (idempotent: a second call keeps the first time). NotFound if missing."""

    # -- datasets ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_dataset_version(
        self, tenant_id: str, dataset_name: str, version: DatasetVersion
    ) -> tuple[DatasetVersion, bool]:
        """Record a new version of dataset ``dataset_name``, creating the dataset if needed.

        The store assigns ``dataset_id`` and the next ``version`` number (1, 2, ...), ignoring those
        fields of the argument. If the dataset already has a version with the same ``sha256`` that
        version is returned with ``False`` and nothing is written; otherwise ``(new_version, True)``.
        Safe under concurrent calls for the same name.
        """

    @abc.abstractmethod
    def get_dataset(self, tenant_id: str, name: str) -> Dataset: ...

    @abc.abstractmethod
    def list_datasets(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[Dataset]: ...

    @abc.abstractmethod
    def list_dataset_versions(self, tenant_id: str, name: str) -> list[DatasetVersion]:
        """Versions of the dataset, oldest first. NotFound if the dataset is missing."""

    @abc.abstractmethod
    def get_dataset_version(self, tenant_id: str, name: str, version: int | None = None) -> DatasetVersion:
        """A version by number, or the latest when ``version`` is None."""

    @abc.abstractmethod
    def delete_dataset(self, tenant_id: str, name: str) -> list[str]:
        """Delete the dataset, its versions and splits; return the artifact keys they held.

        Conflict (and nothing deleted) while any DatasetReference points at the dataset.
        """

    @abc.abstractmethod
    def add_dataset_split(self, split: DatasetSplit) -> tuple[DatasetSplit, bool]:
        """Store a split; if one with the same version, seed, fractions and stratify_by exists, return it."""

    @abc.abstractmethod
    def list_dataset_splits(self, tenant_id: str, version_id: str) -> list[DatasetSplit]: ...

    @abc.abstractmethod
    def add_dataset_reference(self, ref: DatasetReference) -> None:
        """Record that ``ref.holder`` uses the dataset (idempotent)."""

    @abc.abstractmethod
    def remove_dataset_reference(self, tenant_id: str, dataset_id: str, holder_kind: str, holder_id: str) -> None: ...

    @abc.abstractmethod
    def list_dataset_references(self, tenant_id: str, dataset_id: str) -> list[DatasetReference]: ...

    # -- model registry ----------------------------------------------------------------------
    @abc.abstractmethod
    def add_model_version(
        self, tenant_id: str, model_name: str, version: ModelVersion, description: str | None = None
    ) -> ModelVersion:
        """Record a new version of model ``model_name``, creating the model on its first version.

        The store assigns ``model_id``, ``tenant_id`` and the next ``version`` number (1, 2, ...),
        ignoring those fields of the argument; ``version.id`` is kept (the caller chose it, typically to
        build ``artifact_key``). Safe under concurrent calls for the same name: numbers never repeat or
        skip. ``description`` is stored on the model (``None`` keeps the current one). When
        ``version.lineage["dataset_id"]`` is set, a :class:`DatasetReference` (holder ``model_version``,
        the version id) is recorded in the same transaction, so the dataset cannot be deleted while the
        model exists. NotFound for a missing tenant or (lineage) dataset; InvalidInput for a bad model
        name, status or format.
        """

    @abc.abstractmethod
    def get_model(self, tenant_id: str, name: str) -> RegisteredModel:
        """NotFound if the tenant has no model with this name."""

    @abc.abstractmethod
    def list_models(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[RegisteredModel]:
        """The tenant's models in id order (see the module docstring for paging)."""

    @abc.abstractmethod
    def list_model_versions(self, tenant_id: str, name: str) -> list[ModelVersion]:
        """Versions of the model, oldest first. NotFound if the model is missing."""

    @abc.abstractmethod
    def get_model_version(self, tenant_id: str, name: str, version: int | None = None) -> ModelVersion:
        """A version by number, or the latest (highest number, whatever its status) when ``version`` is None."""

    @abc.abstractmethod
    def resolve_model_ref(self, tenant_id: str, ref: ModelRef) -> ModelVersion:
        """The version ``ref`` names: by alias (which wins if both are set), by number, or the latest.

        NotFound for a missing model, version or alias.
        """

    @abc.abstractmethod
    def set_model_version_status(self, tenant_id: str, name: str, version: int, status: str) -> ModelVersion:
        """Set a version's status (``ready`` | ``archived``; InvalidInput otherwise) and return it."""

    @abc.abstractmethod
    def set_model_alias(
        self, tenant_id: str, name: str, alias: str, version: int, *, at: datetime | None = None
    ) -> ModelAlias:
        """Point ``alias`` at ``version``, creating it or moving it atomically (``updated_at`` = ``at`` or now).

        InvalidInput for a bad alias name (see :func:`aimaas.domain.check_alias_name`); NotFound for a
        missing model or version.
        """

    @abc.abstractmethod
    def delete_model_alias(self, tenant_id: str, name: str, alias: str) -> None:
        """Remove the alias. NotFound if the model or the alias is missing."""

    @abc.abstractmethod
    def list_model_aliases(self, tenant_id: str, name: str) -> list[ModelAlias]:
        """The model's aliases sorted by alias name. NotFound if the model is missing."""

    @abc.abstractmethod
    def delete_model(self, tenant_id: str, name: str) -> list[str]:
        """Delete the model, its versions and aliases; return the versions' artifact keys (oldest first).

        Also removes the dataset references its versions held. Conflict (``code="model_in_use"``, and
        nothing deleted) while any ModelReference points at the model.
        """

    @abc.abstractmethod
    def add_model_reference(self, ref: ModelReference) -> None:
        """Record that ``ref.holder`` uses the model (idempotent). NotFound if the model is missing."""

    @abc.abstractmethod
    def remove_model_reference(self, tenant_id: str, model_id: str, holder_kind: str, holder_id: str) -> None:
        """Forget a reference (idempotent; another tenant's reference is left alone)."""

    @abc.abstractmethod
    def list_model_references(self, tenant_id: str, model_id: str) -> list[ModelReference]:
        """References to the model, oldest first. NotFound if the model is missing."""

    # -- endpoints ---------------------------------------------------------------------------
    @abc.abstractmethod
    def create_endpoint(self, endpoint: Endpoint) -> Endpoint:
        """Insert an endpoint (settings checked with ``check_endpoint_settings``) and, in the same transaction,
        a :class:`ModelReference` (holder ``endpoint``, the endpoint id) on its model, so the model cannot be
        deleted while deployed. Conflict (``code="endpoint_exists"``) if the tenant already has an endpoint
        of that name; NotFound if the tenant has no model ``endpoint.model_name``."""

    @abc.abstractmethod
    def get_endpoint(self, tenant_id: str, name: str) -> Endpoint:
        """NotFound if the tenant has no endpoint of that name."""

    @abc.abstractmethod
    def list_endpoints(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[Endpoint]:
        """The tenant's endpoints in id order (see the module docstring for paging)."""

    @abc.abstractmethod
    def list_all_endpoints(self) -> list[Endpoint]:
        """Every tenant's endpoints, in id order: for the serving controller only, never for a request."""

    @abc.abstractmethod
    def update_endpoint(self, endpoint: Endpoint) -> Endpoint:
        """Replace the stored endpoint with the same tenant and name by ``endpoint`` (its settings, selectors,
        canary, description, ``updated_at``; ``id``, ``model_name`` and ``created_at`` are kept).
        NotFound if missing; InvalidInput for settings that break ``check_endpoint_settings``."""

    @abc.abstractmethod
    def delete_endpoint(self, tenant_id: str, name: str) -> None:
        """Delete the endpoint and its model reference. NotFound if missing."""

    # -- jobs --------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_job(self, job: Job) -> tuple[Job, bool]:
        """Insert a ``queued`` job; ``(job, True)``. When ``job.idempotency_key`` is set and the tenant already
        has a job with that key, nothing is written and ``(existing, False)`` is returned (also under
        concurrent calls). NotFound for a missing tenant; InvalidInput unless the job is queued."""

    @abc.abstractmethod
    def get_job(self, tenant_id: str, job_id: str) -> Job:
        """NotFound if the tenant has no such job (another tenant's job included)."""

    @abc.abstractmethod
    def list_jobs(
        self, tenant_id: str, *, limit: int = 100, after: str | None = None, state: JobState | str | None = None
    ) -> list[Job]:
        """The tenant's jobs in id (creation) order, optionally only those in ``state``."""

    @abc.abstractmethod
    def claim_jobs(self, owner: str, limit_total: int, limit_per_tenant: int | None) -> list[Job]:
        """Atomically move the queued jobs :func:`~aimaas.domain.pick_next` chooses (at most ``limit_total``;
        a tenant never above ``limit_per_tenant`` running jobs, counting every owner's) to ``running``, with
        ``owner``, ``started_at`` and ``heartbeat_at`` set to now; return them in start order.

        Two servers claiming at the same time never get the same job, and the per-tenant limit holds across
        them (PostgreSQL: a transaction advisory lock plus ``FOR UPDATE SKIP LOCKED``; SQLite: ``BEGIN
        IMMEDIATE``; memory: the store lock)."""

    @abc.abstractmethod
    def update_job(
        self,
        job_id: str,
        *,
        state: JobState | str | None = None,
        progress: float | None = None,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        heartbeat_at: datetime | None = None,
    ) -> Job:
        """Change the given fields (None: unchanged) in one transaction. A new ``state`` is checked with
        :func:`~aimaas.domain.check_transition` against the stored one (Conflict ``invalid_job_transition``,
        nothing written); ``running`` sets ``started_at`` if unset, a terminal state sets ``finished_at``.
        NotFound for an unknown id."""

    @abc.abstractmethod
    def request_job_cancel(self, tenant_id: str, job_id: str, at: datetime) -> Job:
        """A queued job becomes ``cancelled`` at once (``finished_at`` = ``at``); a running one gets
        ``cancel_requested_at`` = ``at`` (kept if already set) and the service stops it. A finished job is
        returned unchanged. NotFound for another tenant's job."""

    @abc.abstractmethod
    def fail_orphaned_jobs(
        self, *, owner: str | None = None, stale_before: datetime | None = None, reason: str
    ) -> list[str]:
        """Fail every ``running`` job owned by ``owner`` or whose ``heartbeat_at`` is older than
        ``stale_before`` (``error`` = ``reason``); return their ids in id order. Restart policy: orphans are
        failed, never re-queued (their side effects may be half done); a new job resumes with ``resume_from``."""

    @abc.abstractmethod
    def append_job_events(self, job_id: str, events: Sequence[JobEvent]) -> None:
        """Store events keyed ``(job_id, seq)``; an event whose key is already stored is ignored.
        NotFound for an unknown job; InvalidInput for an event of another job."""

    @abc.abstractmethod
    def list_job_events(self, tenant_id: str, job_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[JobEvent]:
        """Events with ``seq > after_seq`` in ``seq`` order, at most ``limit``. NotFound for another tenant's job."""
