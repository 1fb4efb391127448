"""StoreContract: the behaviour every :class:`~aimaas.storage.base.MetadataStore` backend must show.

Use it the way Optuna runs one storage suite over every backend: subclass it in a test module and
give the subclass a ``store`` fixture that yields a fresh, empty store::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyStore(tmp_path)
            yield s
            s.close()
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest

from aimaas.domain import ApiKey, DatasetReference, DatasetSplit, DatasetVersion, Scope, Tenant, new_id, utcnow
from aimaas.errors import Conflict, InvalidInput, NotFound
from aimaas.storage.base import MetadataStore

__all__ = ["StoreContract", "make_api_key", "make_split", "make_tenant", "make_version", "run_concurrently"]

T = TypeVar("T")


def make_tenant(name: str | None = None, **fields: Any) -> Tenant:
    values: dict[str, Any] = {
        "id": new_id("ten"),
        "name": name or f"tenant-{secrets.token_hex(4)}",
        "created_at": utcnow(),
    }
    return Tenant(**(values | fields))


def make_api_key(tenant_id: str, **fields: Any) -> ApiKey:
    values: dict[str, Any] = {
        "id": new_id("key"),
        "tenant_id": tenant_id,
        "name": "ci",
        "prefix": "aim_abcd",
        "key_hash": secrets.token_hex(32),
        "scopes": frozenset({Scope.READ, Scope.PREDICT}),
        "created_at": utcnow(),
    }
    return ApiKey(**(values | fields))


def make_version(sha256: str | None = None, **fields: Any) -> DatasetVersion:
    sha = sha256 or secrets.token_hex(32)
    values: dict[str, Any] = {
        "id": new_id("dsv"),
        "dataset_id": "ignored",
        "tenant_id": "ignored",
        "version": 99,
        "format": "csv",
        "sha256": sha,
        "size_bytes": 1234,
        "artifact_key": f"datasets/{sha}.csv",
        "filename": "données.csv",
        "num_rows": 3,
        "schema": [{"name": "x", "type": "float", "missing": 0}, {"name": "y", "type": "string", "missing": 1}],
        "stats": {"rows": 3, "columns": {"x": {"mean": 1.5, "unique": None}}, "note": "ünïcode"},
        "created_at": utcnow(),
        "target_suggestion": "y",
    }
    return DatasetVersion(**(values | fields))


def make_split(version: DatasetVersion, **fields: Any) -> DatasetSplit:
    values: dict[str, Any] = {
        "id": new_id("spl"),
        "version_id": version.id,
        "tenant_id": version.tenant_id,
        "seed": 42,
        "fractions": (0.8, 0.1, 0.1),
        "stratify_by": None,
        "counts": {"train": 8, "validation": 1, "test": 1},
        "artifact_key": f"splits/{secrets.token_hex(8)}.parquet",
        "created_at": utcnow(),
    }
    return DatasetSplit(**(values | fields))


def run_concurrently(n: int, fn: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``fn(0..n-1)`` on ``n`` threads released together; results or raised exceptions, in order."""
    barrier = threading.Barrier(n)

    def call(i: int) -> T | BaseException:
        barrier.wait()
        try:
            return fn(i)
        except BaseException as error:  # noqa: B036 - reported to the test, not swallowed
            return error

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def _aware_utc(value: datetime | None) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)


class StoreContract:
    """``test_*`` methods taking a ``store`` fixture (a fresh, empty MetadataStore)."""

    # -- tenants -----------------------------------------------------------------------------
    def test_ping(self, store: MetadataStore) -> None:
        store.ping()

    def test_tenant_roundtrip(self, store: MetadataStore) -> None:
        tenant = make_tenant("acme")
        assert store.create_tenant(tenant) == tenant
        assert store.get_tenant(tenant.id) == tenant
        assert store.get_tenant_by_name("acme") == tenant
        assert store.get_tenant_by_name("nobody") is None
        with pytest.raises(NotFound):
            store.get_tenant("ten_missing")

    def test_tenant_name_conflict(self, store: MetadataStore) -> None:
        first = store.create_tenant(make_tenant("acme"))
        with pytest.raises(Conflict, match="name"):
            store.create_tenant(make_tenant("acme"))
        with pytest.raises(Conflict):
            store.create_tenant(make_tenant("other", id=first.id))
        assert store.list_tenants() == [first]

    def test_list_tenants_paging(self, store: MetadataStore) -> None:
        ids = sorted(store.create_tenant(make_tenant(f"t{i}")).id for i in range(5))
        assert [t.id for t in store.list_tenants()] == ids
        assert [t.id for t in store.list_tenants(limit=2)] == ids[:2]
        assert [t.id for t in store.list_tenants(limit=2, after=ids[1])] == ids[2:4]
        assert store.list_tenants(after=ids[-1]) == []
        assert store.list_tenants(limit=0) == []
        with pytest.raises(InvalidInput):
            store.list_tenants(limit=-1)

    def test_timestamps_are_utc_aware(self, store: MetadataStore) -> None:
        local = datetime(2024, 5, 6, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
        tenant = store.create_tenant(make_tenant(created_at=local))
        for got in (tenant, store.get_tenant(tenant.id)):
            assert _aware_utc(got.created_at) and got.created_at == local
        key = store.create_api_key(make_api_key(tenant.id, created_at=local, expires_at=local + timedelta(days=1)))
        assert _aware_utc(key.created_at) and _aware_utc(key.expires_at)
        version, _ = store.add_dataset_version(tenant.id, "d", make_version(created_at=local))
        assert _aware_utc(store.get_dataset_version(tenant.id, "d").created_at)
        assert _aware_utc(store.get_dataset(tenant.id, "d").created_at)
        assert version.created_at == local

    # -- API keys ----------------------------------------------------------------------------
    def test_api_key_roundtrip_and_hash_lookup(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        key = make_api_key(tenant.id, expires_at=utcnow() + timedelta(days=30))
        assert store.create_api_key(key) == key
        found = store.find_api_key_by_hash(key.key_hash)
        assert found == key and found.scopes == frozenset({"read", "predict"})
        assert store.get_api_key(tenant.id, key.id) == key
        assert store.find_api_key_by_hash("0" * 64) is None

    def test_api_key_needs_tenant_and_unique_hash(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound):
            store.create_api_key(make_api_key("ten_missing"))
        tenant = store.create_tenant(make_tenant())
        key = store.create_api_key(make_api_key(tenant.id))
        with pytest.raises(Conflict):
            store.create_api_key(make_api_key(tenant.id, key_hash=key.key_hash))
        assert store.list_api_keys(tenant.id) == [key]

    def test_list_api_keys_paging(self, store: MetadataStore) -> None:
        a, b = store.create_tenant(make_tenant()), store.create_tenant(make_tenant())
        ids = sorted(store.create_api_key(make_api_key(a.id)).id for _ in range(4))
        store.create_api_key(make_api_key(b.id))
        assert [k.id for k in store.list_api_keys(a.id)] == ids
        assert [k.id for k in store.list_api_keys(a.id, limit=3, after=ids[0])] == ids[1:4]
        assert len(store.list_api_keys(b.id)) == 1

    def test_revoke_is_idempotent(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        key = store.create_api_key(make_api_key(tenant.id))
        first_time = datetime(2030, 1, 1, tzinfo=UTC)
        revoked = store.revoke_api_key(tenant.id, key.id, first_time)
        assert revoked.revoked_at == first_time and not revoked.is_active(utcnow())
        again = store.revoke_api_key(tenant.id, key.id, first_time + timedelta(hours=1))
        assert again.revoked_at == first_time
        assert store.find_api_key_by_hash(key.key_hash) == revoked
        with pytest.raises(NotFound):
            store.revoke_api_key(tenant.id, "key_missing", first_time)

    def test_api_keys_of_another_tenant_are_not_found(self, store: MetadataStore) -> None:
        owner, other = store.create_tenant(make_tenant()), store.create_tenant(make_tenant())
        key = store.create_api_key(make_api_key(owner.id))
        with pytest.raises(NotFound):
            store.get_api_key(other.id, key.id)
        with pytest.raises(NotFound):
            store.revoke_api_key(other.id, key.id, utcnow())
        assert store.list_api_keys(other.id) == []
        assert store.get_api_key(owner.id, key.id).revoked_at is None

    # -- concurrency -------------------------------------------------------------------------
    def test_concurrent_tenants_with_one_name(self, store: MetadataStore) -> None:
        results = run_concurrently(8, lambda i: store.create_tenant(make_tenant("same")))
        assert sum(isinstance(r, Tenant) for r in results) == 1
        assert all(isinstance(r, Tenant | Conflict) for r in results), results
        assert len(store.list_tenants()) == 1

    def test_concurrent_versions_with_distinct_content(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        results = run_concurrently(8, lambda i: store.add_dataset_version(tenant.id, "iris", make_version()))
        assert all(isinstance(r, tuple) and r[1] for r in results), results
        versions = store.list_dataset_versions(tenant.id, "iris")
        assert [v.version for v in versions] == list(range(1, 9))
        assert len({v.sha256 for v in versions}) == 8
        assert store.get_dataset(tenant.id, "iris").latest_version == 8
        assert len(store.list_datasets(tenant.id)) == 1

    def test_concurrent_versions_with_same_content(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        sha = secrets.token_hex(32)
        results = run_concurrently(8, lambda i: store.add_dataset_version(tenant.id, "iris", make_version(sha)))
        assert all(isinstance(r, tuple) for r in results), results
        assert sum(r[1] for r in results if isinstance(r, tuple)) == 1
        assert len({r[0].id for r in results if isinstance(r, tuple)}) == 1
        assert [v.version for v in store.list_dataset_versions(tenant.id, "iris")] == [1]

    # -- datasets ----------------------------------------------------------------------------
    def test_dataset_versions_are_numbered(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        given = make_version()
        v1, created = store.add_dataset_version(tenant.id, "iris", given)
        assert created and v1.version == 1 and v1.tenant_id == tenant.id and v1.dataset_id != "ignored"
        assert v1 == replace(given, dataset_id=v1.dataset_id, tenant_id=tenant.id, version=1)
        v2, created = store.add_dataset_version(tenant.id, "iris", make_version())
        assert created and v2.version == 2 and v2.dataset_id == v1.dataset_id
        dataset = store.get_dataset(tenant.id, "iris")
        assert (dataset.id, dataset.name, dataset.latest_version) == (v1.dataset_id, "iris", 2)
        assert store.list_dataset_versions(tenant.id, "iris") == [v1, v2]
        assert store.get_dataset_version(tenant.id, "iris") == v2
        assert store.get_dataset_version(tenant.id, "iris", 1) == v1
        with pytest.raises(NotFound):
            store.get_dataset_version(tenant.id, "iris", 3)

    def test_same_sha256_returns_existing_version(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        v1, _ = store.add_dataset_version(tenant.id, "iris", make_version("a" * 64))
        again, created = store.add_dataset_version(tenant.id, "iris", make_version("a" * 64, filename="b.csv"))
        assert not created and again == v1
        assert store.get_dataset(tenant.id, "iris").latest_version == 1
        other, created = store.add_dataset_version(tenant.id, "wine", make_version("a" * 64))
        assert created and other.version == 1 and other.dataset_id != v1.dataset_id

    def test_datasets_need_a_tenant_and_are_listed_per_tenant(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound):
            store.add_dataset_version("ten_missing", "iris", make_version())
        a, b = store.create_tenant(make_tenant()), store.create_tenant(make_tenant())
        for name in ("d1", "d2", "d3"):
            store.add_dataset_version(a.id, name, make_version())
        store.add_dataset_version(b.id, "d1", make_version())
        listed = store.list_datasets(a.id)
        assert [d.id for d in listed] == sorted(d.id for d in listed) and len(listed) == 3
        assert store.list_datasets(a.id, limit=1, after=listed[0].id) == [listed[1]]
        assert [d.name for d in store.list_datasets(b.id)] == ["d1"]

    def test_datasets_of_another_tenant_are_not_found(self, store: MetadataStore) -> None:
        owner, other = store.create_tenant(make_tenant()), store.create_tenant(make_tenant())
        version, _ = store.add_dataset_version(owner.id, "iris", make_version())
        for call in (
            lambda: store.get_dataset(other.id, "iris"),
            lambda: store.list_dataset_versions(other.id, "iris"),
            lambda: store.get_dataset_version(other.id, "iris"),
            lambda: store.delete_dataset(other.id, "iris"),
            lambda: store.list_dataset_splits(other.id, version.id),
            lambda: store.add_dataset_split(make_split(version, tenant_id=other.id)),
            lambda: store.list_dataset_references(other.id, version.dataset_id),
            lambda: store.add_dataset_reference(DatasetReference(version.dataset_id, other.id, "job", "j1")),
        ):
            with pytest.raises(NotFound):
                call()
        store.remove_dataset_reference(other.id, version.dataset_id, "job", "j1")
        assert store.get_dataset_version(owner.id, "iris") == version

    def test_delete_refused_while_referenced(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        version, _ = store.add_dataset_version(tenant.id, "iris", make_version())
        store.add_dataset_split(make_split(version))
        store.add_dataset_reference(DatasetReference(version.dataset_id, tenant.id, "job", "job_1"))
        with pytest.raises(Conflict) as info:
            store.delete_dataset(tenant.id, "iris")
        assert "job_1" in info.value.message
        assert store.list_dataset_versions(tenant.id, "iris") == [version]
        assert len(store.list_dataset_splits(tenant.id, version.id)) == 1
        store.remove_dataset_reference(tenant.id, version.dataset_id, "job", "job_1")
        assert len(store.delete_dataset(tenant.id, "iris")) == 2

    def test_delete_returns_artifact_keys(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        v1, _ = store.add_dataset_version(tenant.id, "iris", make_version())
        v2, _ = store.add_dataset_version(tenant.id, "iris", make_version())
        split, _ = store.add_dataset_split(make_split(v2))
        keep, _ = store.add_dataset_version(tenant.id, "wine", make_version())
        keys = store.delete_dataset(tenant.id, "iris")
        assert sorted(keys) == sorted([v1.artifact_key, v2.artifact_key, split.artifact_key])
        with pytest.raises(NotFound):
            store.get_dataset(tenant.id, "iris")
        with pytest.raises(NotFound):
            store.list_dataset_splits(tenant.id, v2.id)
        with pytest.raises(NotFound):
            store.delete_dataset(tenant.id, "iris")
        assert store.get_dataset_version(tenant.id, "wine") == keep
        again, created = store.add_dataset_version(tenant.id, "iris", make_version(v1.sha256))
        assert created and again.version == 1

    def test_splits_are_deduplicated(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        version, _ = store.add_dataset_version(tenant.id, "iris", make_version())
        first, created = store.add_dataset_split(make_split(version))
        assert created and first.fractions == (0.8, 0.1, 0.1) and first.counts["train"] == 8
        again, created = store.add_dataset_split(make_split(version))
        assert not created and again == first
        variants: list[dict[str, Any]] = [{"seed": 7}, {"stratify_by": "y"}, {"fractions": (0.7, 0.15, 0.15)}]
        made = [store.add_dataset_split(make_split(version, **v)) for v in variants]
        assert all(created for _, created in made)
        assert store.add_dataset_split(make_split(version, stratify_by="y")) == (made[1][0], False)
        listed = store.list_dataset_splits(tenant.id, version.id)
        assert listed == sorted([first, *(s for s, _ in made)], key=lambda s: s.id)
        with pytest.raises(NotFound):
            store.add_dataset_split(make_split(replace(version, id="dsv_missing")))

    def test_concurrent_identical_splits(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        version, _ = store.add_dataset_version(tenant.id, "iris", make_version())
        results = run_concurrently(8, lambda i: store.add_dataset_split(make_split(version)))
        assert sum(r[1] for r in results if isinstance(r, tuple)) == 1, results
        assert len(store.list_dataset_splits(tenant.id, version.id)) == 1

    def test_references_are_idempotent(self, store: MetadataStore) -> None:
        tenant = store.create_tenant(make_tenant())
        version, _ = store.add_dataset_version(tenant.id, "iris", make_version())
        ref = DatasetReference(version.dataset_id, tenant.id, "model_version", "mv_1")
        store.add_dataset_reference(ref)
        store.add_dataset_reference(replace(ref, created_at=utcnow() + timedelta(seconds=5)))
        store.add_dataset_reference(replace(ref, holder_id="mv_2"))
        listed = store.list_dataset_references(tenant.id, version.dataset_id)
        assert [(r.holder_kind, r.holder_id) for r in listed] == [("model_version", "mv_1"), ("model_version", "mv_2")]
        assert listed[0] == ref and _aware_utc(listed[0].created_at)
        store.remove_dataset_reference(tenant.id, version.dataset_id, "model_version", "mv_1")
        store.remove_dataset_reference(tenant.id, version.dataset_id, "model_version", "mv_1")
        assert [r.holder_id for r in store.list_dataset_references(tenant.id, version.dataset_id)] == ["mv_2"]
        with pytest.raises(NotFound):
            store.add_dataset_reference(replace(ref, dataset_id="ds_missing"))
