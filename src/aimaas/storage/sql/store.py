"""SqlMetadataStore: the MetadataStore on SQLite (default) or PostgreSQL, with SQLAlchemy 2 Core."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from aimaas.domain import ApiKey, Dataset, DatasetReference, DatasetSplit, DatasetVersion, Tenant
from aimaas.errors import Conflict, NotFound
from aimaas.storage.sql import convert as cv
from aimaas.storage.sql import queries as q
from aimaas.storage.sql.endpoints import SqlEndpointsMixin
from aimaas.storage.sql.engine import create_store_engine, session_scope
from aimaas.storage.sql.jobs import SqlJobsMixin
from aimaas.storage.sql.migrate import MigrationResult, upgrade
from aimaas.storage.sql.registry import SqlRegistryMixin
from aimaas.storage.sql.tables import (
    api_keys,
    dataset_references,
    dataset_splits,
    dataset_versions,
    datasets,
    tenants,
)

__all__ = ["SqlMetadataStore"]


class SqlMetadataStore(SqlRegistryMixin, SqlEndpointsMixin, SqlJobsMixin):
    """MetadataStore backed by SQLite (``sqlite:///path``) or PostgreSQL (``postgresql+psycopg://...``).

    The model registry methods live in :class:`~aimaas.storage.sql.registry.SqlRegistryMixin`, the endpoint
    methods in :class:`~aimaas.storage.sql.endpoints.SqlEndpointsMixin`, the job methods in
    :class:`~aimaas.storage.sql.jobs.SqlJobsMixin`.

    Opening the store upgrades the schema to the head migration (see :mod:`.migrate`); a database
    written by a newer aimaas raises :class:`~aimaas.errors.SchemaTooNew`. Every method is one
    transaction; driver errors surface as :class:`~aimaas.errors.StorageError` or
    :class:`~aimaas.errors.Conflict`. Thread-safe: each call checks out its own connection.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000) -> None:
        self._engine = create_store_engine(url, busy_timeout_ms=busy_timeout_ms)
        try:
            self.migration: MigrationResult = upgrade(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._engine.dispose()

    def ping(self) -> None:
        with session_scope(self._engine) as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- tenants -----------------------------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> Tenant:
        with session_scope(self._engine, write=True) as conn:
            conn.execute(sa.insert(tenants).values(id=tenant.id, name=tenant.name, created_at=tenant.created_at))
            return cv.to_tenant(q.one(conn, sa.select(tenants).where(tenants.c.id == tenant.id)))

    def get_tenant(self, tenant_id: str) -> Tenant:
        with session_scope(self._engine) as conn:
            row = conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id)).mappings().first()
        if row is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return cv.to_tenant(row)

    def get_tenant_by_name(self, name: str) -> Tenant | None:
        with session_scope(self._engine) as conn:
            row = conn.execute(sa.select(tenants).where(tenants.c.name == name)).mappings().first()
        return None if row is None else cv.to_tenant(row)

    def list_tenants(self, *, limit: int = 100, after: str | None = None) -> list[Tenant]:
        with session_scope(self._engine) as conn:
            rows = conn.execute(q.page(sa.select(tenants), tenants.c.id, limit, after)).mappings().all()
        return [cv.to_tenant(r) for r in rows]

    # -- API keys ----------------------------------------------------------------------------
    def create_api_key(self, key: ApiKey) -> ApiKey:
        with session_scope(self._engine, write=True) as conn:
            q.require_tenant(conn, key.tenant_id)
            conn.execute(
                sa.insert(api_keys).values(
                    id=key.id,
                    tenant_id=key.tenant_id,
                    name=key.name,
                    prefix=key.prefix,
                    key_hash=key.key_hash,
                    scopes=cv.dumps(sorted(key.scopes)),
                    created_at=key.created_at,
                    expires_at=key.expires_at,
                    revoked_at=key.revoked_at,
                )
            )
            return cv.to_api_key(q.one(conn, sa.select(api_keys).where(api_keys.c.id == key.id)))

    def find_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with session_scope(self._engine) as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).mappings().first()
        return None if row is None else cv.to_api_key(row)

    def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey:
        with session_scope(self._engine) as conn:
            return cv.to_api_key(q.key_row(conn, tenant_id, key_id))

    def list_api_keys(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[ApiKey]:
        query = q.page(sa.select(api_keys).where(api_keys.c.tenant_id == tenant_id), api_keys.c.id, limit, after)
        with session_scope(self._engine) as conn:
            rows = conn.execute(query).mappings().all()
        return [cv.to_api_key(r) for r in rows]

    def revoke_api_key(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey:
        with session_scope(self._engine, write=True) as conn:
            conn.execute(
                sa.update(api_keys)
                .where(
                    api_keys.c.id == key_id,
                    api_keys.c.tenant_id == tenant_id,
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=at)
            )
            return cv.to_api_key(q.key_row(conn, tenant_id, key_id))

    # -- datasets ----------------------------------------------------------------------------
    def add_dataset_version(
        self, tenant_id: str, dataset_name: str, version: DatasetVersion
    ) -> tuple[DatasetVersion, bool]:
        with session_scope(self._engine, write=True) as conn:
            q.require_tenant(conn, tenant_id)
            ds = q.lock_or_create_dataset(conn, tenant_id, dataset_name, version.created_at)
            same = (
                conn.execute(
                    sa.select(dataset_versions).where(
                        dataset_versions.c.dataset_id == ds["id"], dataset_versions.c.sha256 == version.sha256
                    )
                )
                .mappings()
                .first()
            )
            if same is not None:
                return cv.to_version(same), False
            number = ds["latest_version"] + 1
            new = replace(version, dataset_id=ds["id"], tenant_id=tenant_id, version=number)
            conn.execute(sa.insert(dataset_versions).values(**cv.version_values(new)))
            conn.execute(sa.update(datasets).where(datasets.c.id == ds["id"]).values(latest_version=number))
            row = q.one(conn, sa.select(dataset_versions).where(dataset_versions.c.id == new.id))
            return cv.to_version(row), True

    def get_dataset(self, tenant_id: str, name: str) -> Dataset:
        with session_scope(self._engine) as conn:
            return cv.to_dataset(q.dataset_row(conn, tenant_id, name))

    def list_datasets(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[Dataset]:
        query = q.page(sa.select(datasets).where(datasets.c.tenant_id == tenant_id), datasets.c.id, limit, after)
        with session_scope(self._engine) as conn:
            rows = conn.execute(query).mappings().all()
        return [cv.to_dataset(r) for r in rows]

    def list_dataset_versions(self, tenant_id: str, name: str) -> list[DatasetVersion]:
        with session_scope(self._engine) as conn:
            ds = q.dataset_row(conn, tenant_id, name)
            rows = (
                conn.execute(
                    sa.select(dataset_versions)
                    .where(dataset_versions.c.dataset_id == ds["id"])
                    .order_by(dataset_versions.c.version)
                )
                .mappings()
                .all()
            )
        return [cv.to_version(r) for r in rows]

    def get_dataset_version(self, tenant_id: str, name: str, version: int | None = None) -> DatasetVersion:
        with session_scope(self._engine) as conn:
            ds = q.dataset_row(conn, tenant_id, name)
            number = ds["latest_version"] if version is None else version
            row = (
                conn.execute(
                    sa.select(dataset_versions).where(
                        dataset_versions.c.dataset_id == ds["id"], dataset_versions.c.version == number
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"dataset {name!r} has no version {number}")
        return cv.to_version(row)

    def delete_dataset(self, tenant_id: str, name: str) -> list[str]:
        with session_scope(self._engine, write=True) as conn:
            ds = q.dataset_row(conn, tenant_id, name, lock=True)
            holder = conn.execute(
                sa.select(dataset_references.c.holder_kind, dataset_references.c.holder_id)
                .where(dataset_references.c.dataset_id == ds["id"])
                .order_by(dataset_references.c.holder_kind, dataset_references.c.holder_id)
            ).first()
            if holder is not None:
                raise Conflict(
                    f"dataset {name!r} is still used by {holder[0]} {holder[1]!r}; "
                    "remove what uses it before deleting the dataset",
                    code="dataset_in_use",
                )
            version_ids = sa.select(dataset_versions.c.id).where(dataset_versions.c.dataset_id == ds["id"])
            keys = list(
                conn.execute(
                    sa.select(dataset_versions.c.artifact_key)
                    .where(dataset_versions.c.dataset_id == ds["id"])
                    .order_by(dataset_versions.c.version)
                ).scalars()
            )
            keys += conn.execute(
                sa.select(dataset_splits.c.artifact_key)
                .where(dataset_splits.c.version_id.in_(version_ids))
                .order_by(dataset_splits.c.id)
            ).scalars()
            conn.execute(sa.delete(dataset_splits).where(dataset_splits.c.version_id.in_(version_ids)))
            conn.execute(sa.delete(dataset_versions).where(dataset_versions.c.dataset_id == ds["id"]))
            conn.execute(sa.delete(datasets).where(datasets.c.id == ds["id"]))
            return keys

    def add_dataset_split(self, split: DatasetSplit) -> tuple[DatasetSplit, bool]:
        fractions, stratify = cv.fractions_key(split.fractions), cv.stratify_key(split.stratify_by)
        unique = [
            dataset_splits.c.version_id == split.version_id,
            dataset_splits.c.seed == split.seed,
            dataset_splits.c.fractions == fractions,
            dataset_splits.c.stratify_by == stratify,
        ]
        with session_scope(self._engine, write=True) as conn:
            q.version_row(conn, split.tenant_id, split.version_id)
            result = conn.execute(
                q.insert_or_ignore(conn, dataset_splits)
                .values(
                    id=split.id,
                    version_id=split.version_id,
                    tenant_id=split.tenant_id,
                    seed=split.seed,
                    fractions=fractions,
                    stratify_by=stratify,
                    counts_json=cv.dumps(split.counts),
                    artifact_key=split.artifact_key,
                    created_at=split.created_at,
                )
                .on_conflict_do_nothing(index_elements=["version_id", "seed", "fractions", "stratify_by"])
                .returning(dataset_splits.c.id)
            )
            created = result.first() is not None
            row = q.one(conn, sa.select(dataset_splits).where(*unique))
            return cv.to_split(row), created

    def list_dataset_splits(self, tenant_id: str, version_id: str) -> list[DatasetSplit]:
        with session_scope(self._engine) as conn:
            q.version_row(conn, tenant_id, version_id)
            rows = (
                conn.execute(
                    sa.select(dataset_splits)
                    .where(dataset_splits.c.version_id == version_id, dataset_splits.c.tenant_id == tenant_id)
                    .order_by(dataset_splits.c.id)
                )
                .mappings()
                .all()
            )
        return [cv.to_split(r) for r in rows]

    def add_dataset_reference(self, ref: DatasetReference) -> None:
        with session_scope(self._engine, write=True) as conn:
            q.dataset_by_id(conn, ref.tenant_id, ref.dataset_id, lock=True)
            conn.execute(
                q.insert_or_ignore(conn, dataset_references)
                .values(
                    dataset_id=ref.dataset_id,
                    tenant_id=ref.tenant_id,
                    holder_kind=ref.holder_kind,
                    holder_id=ref.holder_id,
                    created_at=ref.created_at,
                )
                .on_conflict_do_nothing(index_elements=["dataset_id", "holder_kind", "holder_id"])
            )

    def remove_dataset_reference(self, tenant_id: str, dataset_id: str, holder_kind: str, holder_id: str) -> None:
        with session_scope(self._engine, write=True) as conn:
            conn.execute(
                sa.delete(dataset_references).where(
                    dataset_references.c.tenant_id == tenant_id,
                    dataset_references.c.dataset_id == dataset_id,
                    dataset_references.c.holder_kind == holder_kind,
                    dataset_references.c.holder_id == holder_id,
                )
            )

    def list_dataset_references(self, tenant_id: str, dataset_id: str) -> list[DatasetReference]:
        refs = dataset_references.c
        with session_scope(self._engine) as conn:
            q.dataset_by_id(conn, tenant_id, dataset_id)
            rows = (
                conn.execute(
                    sa.select(dataset_references)
                    .where(refs.dataset_id == dataset_id, refs.tenant_id == tenant_id)
                    .order_by(refs.created_at, refs.holder_kind, refs.holder_id)
                )
                .mappings()
                .all()
            )
        return [cv.to_reference(r) for r in rows]
