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
"""

from __future__ import annotations

import abc
from datetime import datetime

from aimaas.domain import (
    ApiKey,
    Dataset,
    DatasetReference,
    DatasetSplit,
    DatasetVersion,
    ModelAlias,
    ModelRef,
    ModelReference,
    ModelVersion,
    RegisteredModel,
    Tenant,
)

__all__ = ["MetadataStore"]


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
    def add_dataset_version(self, tenant_id: str, dataset_name: str, version: DatasetVersion) -> tuple[
        DatasetVersion, bool
    ]:
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
