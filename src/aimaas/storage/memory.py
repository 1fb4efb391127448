"""MemoryMetadataStore: the MetadataStore in a few dicts, for unit tests and ``AIMAAS_DATABASE_URL=memory://``.

It passes the same contract suite as the SQL store and mirrors its observable behaviour: timestamps
come back in UTC, JSON-like fields come back as plain JSON values (tuples become lists), and every
method runs under one lock, so concurrent calls are serialised like SQLite transactions.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aimaas.domain import ApiKey, Dataset, DatasetReference, DatasetSplit, DatasetVersion, Tenant, new_id
from aimaas.errors import Conflict, InvalidInput, NotFound
from aimaas.storage.memory_endpoints import MemoryEndpointsMixin
from aimaas.storage.memory_jobs import MemoryJobsMixin
from aimaas.storage.memory_registry import MemoryRegistryMixin

__all__ = ["MemoryMetadataStore"]

_DUPLICATE = "the record conflicts with an existing one"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _page(items: list[Any], limit: int, after: str | None) -> list[Any]:
    if limit < 0:
        raise InvalidInput("limit must be zero or more", param="limit")
    items = sorted(items, key=lambda item: item.id)
    if after is not None:
        items = [item for item in items if item.id > after]
    return items[:limit]


class MemoryMetadataStore(MemoryRegistryMixin, MemoryEndpointsMixin, MemoryJobsMixin):
    """Thread-safe in-memory MetadataStore with the same behaviour as :class:`SqlMetadataStore`.

    The model registry methods live in :class:`~aimaas.storage.memory_registry.MemoryRegistryMixin`, the
    endpoint methods in :class:`~aimaas.storage.memory_endpoints.MemoryEndpointsMixin`, the job methods in
    :class:`~aimaas.storage.memory_jobs.MemoryJobsMixin`.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tenants: dict[str, Tenant] = {}
        self._keys: dict[str, ApiKey] = {}
        self._datasets: dict[str, Dataset] = {}
        self._versions: dict[str, DatasetVersion] = {}
        self._splits: dict[str, DatasetSplit] = {}
        self._refs: dict[tuple[str, str, str], DatasetReference] = {}
        self._init_registry()
        self._init_endpoints()
        self._init_jobs()

    def ping(self) -> None:
        return None

    # -- tenants -----------------------------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> Tenant:
        with self._lock:
            if any(t.name == tenant.name for t in self._tenants.values()):
                raise Conflict("a tenant with this name already exists; choose another name")
            if tenant.id in self._tenants:
                raise Conflict(_DUPLICATE)
            stored = replace(tenant, created_at=_utc(tenant.created_at))
            self._tenants[tenant.id] = stored
            return stored

    def get_tenant(self, tenant_id: str) -> Tenant:
        with self._lock:
            if tenant_id not in self._tenants:
                raise NotFound(f"tenant {tenant_id!r} not found")
            return self._tenants[tenant_id]

    def get_tenant_by_name(self, name: str) -> Tenant | None:
        with self._lock:
            return next((t for t in self._tenants.values() if t.name == name), None)

    def list_tenants(self, *, limit: int = 100, after: str | None = None) -> list[Tenant]:
        with self._lock:
            return _page(list(self._tenants.values()), limit, after)

    # -- API keys ----------------------------------------------------------------------------
    def create_api_key(self, key: ApiKey) -> ApiKey:
        with self._lock:
            self.get_tenant(key.tenant_id)
            if any(k.key_hash == key.key_hash for k in self._keys.values()):
                raise Conflict("an API key with this hash already exists; generate a new key")
            if key.id in self._keys:
                raise Conflict(_DUPLICATE)
            stored = replace(
                key,
                scopes=frozenset(_json(sorted(key.scopes))),
                created_at=_utc(key.created_at),
                expires_at=_utc_or_none(key.expires_at),
                revoked_at=_utc_or_none(key.revoked_at),
            )
            self._keys[key.id] = stored
            return stored

    def find_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self._lock:
            return next((k for k in self._keys.values() if k.key_hash == key_hash), None)

    def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None or key.tenant_id != tenant_id:
                raise NotFound(f"API key {key_id!r} not found")
            return key

    def list_api_keys(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[ApiKey]:
        with self._lock:
            return _page([k for k in self._keys.values() if k.tenant_id == tenant_id], limit, after)

    def revoke_api_key(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey:
        with self._lock:
            key = self.get_api_key(tenant_id, key_id)
            if key.revoked_at is None:
                key = self._keys[key_id] = replace(key, revoked_at=_utc(at))
            return key

    # -- datasets ----------------------------------------------------------------------------
    def add_dataset_version(
        self, tenant_id: str, dataset_name: str, version: DatasetVersion
    ) -> tuple[DatasetVersion, bool]:
        with self._lock:
            self.get_tenant(tenant_id)
            ds = self._find_dataset(tenant_id, dataset_name)
            if ds is not None:
                for existing in self._versions.values():
                    if existing.dataset_id == ds.id and existing.sha256 == version.sha256:
                        return existing, False
            if version.id in self._versions:
                raise Conflict(_DUPLICATE)
            if ds is None:
                ds = Dataset(new_id("ds"), tenant_id, dataset_name, _utc(version.created_at), 0)
            number = ds.latest_version + 1
            stored = replace(
                version,
                dataset_id=ds.id,
                tenant_id=tenant_id,
                version=number,
                schema=_json(version.schema),
                stats=_json(version.stats),
                created_at=_utc(version.created_at),
            )
            self._datasets[ds.id] = replace(ds, latest_version=number)
            self._versions[stored.id] = stored
            return stored, True

    def get_dataset(self, tenant_id: str, name: str) -> Dataset:
        with self._lock:
            ds = self._find_dataset(tenant_id, name)
            if ds is None:
                raise NotFound(f"dataset {name!r} not found")
            return ds

    def list_datasets(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[Dataset]:
        with self._lock:
            return _page([d for d in self._datasets.values() if d.tenant_id == tenant_id], limit, after)

    def list_dataset_versions(self, tenant_id: str, name: str) -> list[DatasetVersion]:
        with self._lock:
            ds = self.get_dataset(tenant_id, name)
            return sorted((v for v in self._versions.values() if v.dataset_id == ds.id), key=lambda v: v.version)

    def get_dataset_version(self, tenant_id: str, name: str, version: int | None = None) -> DatasetVersion:
        with self._lock:
            ds = self.get_dataset(tenant_id, name)
            number = ds.latest_version if version is None else version
            for v in self._versions.values():
                if v.dataset_id == ds.id and v.version == number:
                    return v
            raise NotFound(f"dataset {name!r} has no version {number}")

    def delete_dataset(self, tenant_id: str, name: str) -> list[str]:
        with self._lock:
            ds = self.get_dataset(tenant_id, name)
            holders = sorted((kind, hid) for (did, kind, hid) in self._refs if did == ds.id)
            if holders:
                kind, hid = holders[0]
                raise Conflict(
                    f"dataset {name!r} is still used by {kind} {hid!r}; "
                    "remove what uses it before deleting the dataset",
                    code="dataset_in_use",
                )
            versions = self.list_dataset_versions(tenant_id, name)
            version_ids = {v.id for v in versions}
            splits = sorted((s for s in self._splits.values() if s.version_id in version_ids), key=lambda s: s.id)
            for s in splits:
                del self._splits[s.id]
            for v in versions:
                del self._versions[v.id]
            del self._datasets[ds.id]
            return [v.artifact_key for v in versions] + [s.artifact_key for s in splits]

    def add_dataset_split(self, split: DatasetSplit) -> tuple[DatasetSplit, bool]:
        with self._lock:
            self._version(split.tenant_id, split.version_id)
            fractions = (float(split.fractions[0]), float(split.fractions[1]), float(split.fractions[2]))
            for existing in self._splits.values():
                if (existing.version_id, existing.seed, existing.fractions, existing.stratify_by) == (
                    split.version_id,
                    split.seed,
                    fractions,
                    split.stratify_by,
                ):
                    return existing, False
            if split.id in self._splits:
                raise Conflict(_DUPLICATE)
            stored = replace(split, fractions=fractions, counts=_json(split.counts), created_at=_utc(split.created_at))
            self._splits[split.id] = stored
            return stored, True

    def list_dataset_splits(self, tenant_id: str, version_id: str) -> list[DatasetSplit]:
        with self._lock:
            self._version(tenant_id, version_id)
            return sorted((s for s in self._splits.values() if s.version_id == version_id), key=lambda s: s.id)

    def add_dataset_reference(self, ref: DatasetReference) -> None:
        with self._lock:
            self._dataset_by_id(ref.tenant_id, ref.dataset_id)
            key = (ref.dataset_id, ref.holder_kind, ref.holder_id)
            self._refs.setdefault(key, replace(ref, created_at=_utc(ref.created_at)))

    def remove_dataset_reference(self, tenant_id: str, dataset_id: str, holder_kind: str, holder_id: str) -> None:
        with self._lock:
            ref = self._refs.get((dataset_id, holder_kind, holder_id))
            if ref is not None and ref.tenant_id == tenant_id:
                del self._refs[(dataset_id, holder_kind, holder_id)]

    def list_dataset_references(self, tenant_id: str, dataset_id: str) -> list[DatasetReference]:
        with self._lock:
            self._dataset_by_id(tenant_id, dataset_id)
            refs = [r for r in self._refs.values() if r.dataset_id == dataset_id]
            return sorted(refs, key=lambda r: (r.created_at, r.holder_kind, r.holder_id))

    # -- helpers -----------------------------------------------------------------------------
    def _find_dataset(self, tenant_id: str, name: str) -> Dataset | None:
        return next((d for d in self._datasets.values() if d.tenant_id == tenant_id and d.name == name), None)

    def _dataset_by_id(self, tenant_id: str, dataset_id: str) -> Dataset:
        ds = self._datasets.get(dataset_id)
        if ds is None or ds.tenant_id != tenant_id:
            raise NotFound(f"dataset {dataset_id!r} not found")
        return ds

    def _version(self, tenant_id: str, version_id: str) -> DatasetVersion:
        v = self._versions.get(version_id)
        if v is None or v.tenant_id != tenant_id:
            raise NotFound(f"dataset version {version_id!r} not found")
        return v
