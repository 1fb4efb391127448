"""EndpointsContract: the endpoint behaviour every :class:`~aimaas.storage.base.MetadataStore` must show.

Used exactly like :class:`~aimaas.testing.registry_contract.RegistryContract`: subclass it in a test module
and give the subclass a ``store`` fixture that yields a fresh, empty store.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from aimaas.domain import Endpoint, ModelReference, Tenant, new_id
from aimaas.errors import Conflict, InvalidInput, NotFound
from aimaas.storage.base import MetadataStore
from aimaas.testing.registry_contract import make_model_version
from aimaas.testing.store_contract import make_tenant, run_concurrently

__all__ = ["EndpointsContract", "make_endpoint"]


def make_endpoint(tenant_id: str, model_name: str, **fields: Any) -> Endpoint:
    """An Endpoint as a service would hand it to ``create_endpoint`` (a random name unless given)."""
    values: dict[str, Any] = {"id": new_id("ep"), "tenant_id": tenant_id, "model_name": model_name}
    values["name"] = f"ep-{secrets.token_hex(4)}"
    return Endpoint(**(values | fields))


#: Settings ``check_endpoint_settings`` refuses, with the ``param`` the InvalidInput names.
BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"name": "Bad Name"}, "name"),
    ({"name": ""}, "name"),
    ({"selector": "Prod"}, "selector"),
    ({"canary_selector": "a b"}, "canary_selector"),
    ({"canary_weight": 0.5}, "canary_weight"),
    ({"canary_selector": "2", "canary_weight": 1.5}, "canary_weight"),
    ({"min_replicas": 5, "max_replicas": 2}, "min_replicas"),
    ({"min_replicas": 1.5}, "min_replicas"),
    ({"max_replicas": 0}, "max_replicas"),
    ({"max_batch_size": 0}, "max_batch_size"),
    ({"max_wait_ms": 1001}, "max_wait_ms"),
    ({"idle_timeout_s": 0.5}, "idle_timeout_s"),
    ({"target_ongoing_requests": True}, "target_ongoing_requests"),
    ({"description": 3}, "description"),
]


def _aware_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


class EndpointsContract:
    """``test_*`` methods taking a ``store`` fixture (a fresh, empty MetadataStore)."""

    @staticmethod
    def _tenant_with_model(store: MetadataStore, *models: str) -> Tenant:
        tenant = store.create_tenant(make_tenant())
        for name in models or ("iris",):
            store.add_model_version(tenant.id, name, make_model_version())
        return tenant

    # -- create and read ---------------------------------------------------------------------
    def test_create_get_and_list_round_trip(self, store: MetadataStore) -> None:
        tenant = self._tenant_with_model(store)
        given = make_endpoint(
            tenant.id,
            "iris",
            name="iris-prod",
            selector="prod",  # the alias need not exist yet: the controller resolves selectors continually
            canary_selector="3",
            canary_weight=0.25,
            min_replicas=0,
            max_replicas=8,
            max_batch_size=32,
            max_wait_ms=2.5,
            idle_timeout_s=600.0,
            target_ongoing_requests=4,
            description="Iris in production — ünïcode ✓",
        )
        assert store.create_endpoint(given) == given
        assert store.get_endpoint(tenant.id, "iris-prod") == given
        assert store.list_endpoints(tenant.id) == [given]
        assert store.list_all_endpoints() == [given]
        assert (given.ref, given.canary_ref) == ("iris@prod", "iris/3")

    def test_defaults_and_numbers_round_trip(self, store: MetadataStore) -> None:
        tenant = self._tenant_with_model(store)
        plain = store.create_endpoint(make_endpoint(tenant.id, "iris", name="plain"))
        same = {"id": plain.id, "created_at": plain.created_at, "updated_at": plain.updated_at}
        assert store.get_endpoint(tenant.id, "plain") == plain == make_endpoint(tenant.id, "iris", name="plain", **same)
        assert (plain.selector, plain.canary_selector, plain.canary_weight) == ("latest", None, 0)
        whole = store.create_endpoint(
            make_endpoint(tenant.id, "iris", canary_selector="latest", canary_weight=1, max_wait_ms=0, idle_timeout_s=1)
        )
        for got in (whole, store.get_endpoint(tenant.id, whole.name)):
            assert (got.canary_weight, got.max_wait_ms, got.idle_timeout_s) == (1.0, 0.0, 1.0)
            assert all(isinstance(v, float) for v in (got.canary_weight, got.max_wait_ms, got.idle_timeout_s))
            assert all(type(getattr(got, k)) is int for k in ("min_replicas", "max_replicas", "max_batch_size"))

    def test_timestamps_are_utc_aware(self, store: MetadataStore) -> None:
        tenant = self._tenant_with_model(store)
        local = datetime(2024, 5, 6, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
        created = store.create_endpoint(make_endpoint(tenant.id, "iris", name="e", created_at=local, updated_at=local))
        later = local + timedelta(minutes=5)
        updated = store.update_endpoint(replace(created, max_replicas=2, updated_at=later))
        stored = store.get_endpoint(tenant.id, "e")
        for value, expected in [(created.created_at, local), (created.updated_at, local), (updated.updated_at, later)]:
            assert _aware_utc(value) and value == expected
        assert _aware_utc(stored.created_at) and stored.created_at == local and stored.updated_at == later

    # -- refusals ----------------------------------------------------------------------------
    def test_duplicate_names_conflict(self, store: MetadataStore) -> None:
        tenant = self._tenant_with_model(store, "iris", "wine")
        first = store.create_endpoint(make_endpoint(tenant.id, "iris", name="e"))
        for model in ("iris", "wine"):
            with pytest.raises(Conflict) as info:
                store.create_endpoint(make_endpoint(tenant.id, model, name="e"))
            assert info.value.code == "endpoint_exists" and "'e'" in info.value.message
        assert store.list_endpoints(tenant.id) == [first]
        wine = store.get_model(tenant.id, "wine")
        assert store.list_model_references(tenant.id, wine.id) == []
        with pytest.raises(Conflict):  # the same id under another name
            store.create_endpoint(make_endpoint(tenant.id, "iris", name="f", id=first.id))
        assert store.list_endpoints(tenant.id) == [first]

    def test_missing_model_is_not_found(self, store: MetadataStore) -> None:
        owner = self._tenant_with_model(store)
        other = store.create_tenant(make_tenant())
        for tenant_id, model in [(owner.id, "wine"), (other.id, "iris"), ("ten_missing", "iris")]:
            with pytest.raises(NotFound):
                store.create_endpoint(make_endpoint(tenant_id, model, name="e"))
        with pytest.raises(InvalidInput) as info:
            store.create_endpoint(make_endpoint(owner.id, "iris@prod", name="e"))
        assert info.value.param == "model_name"
        assert store.list_all_endpoints() == []

    def test_bad_settings_are_refused(self, store: MetadataStore) -> None:
        tenant = self._tenant_with_model(store)
        good = store.create_endpoint(make_endpoint(tenant.id, "iris", name="good"))
        for changes, param in BAD_SETTINGS:
            with pytest.raises(InvalidInput) as info:
                store.create_endpoint(make_endpoint(tenant.id, "iris", **changes))
            assert info.value.param == param, changes
            with pytest.raises(InvalidInput) as info:
                store.update_endpoint(replace(good, **changes))
            assert info.value.param == param, changes
        assert store.list_endpoints(tenant.id) == [good]

    # -- paging and tenancy ------------------------------------------------------------------
    def test_paging_and_tenant_isolation(self, store: MetadataStore) -> None:
        a, b = self._tenant_with_model(store), self._tenant_with_model(store)
        mine = [store.create_endpoint(make_endpoint(a.id, "iris", name=f"ep{i}")) for i in range(4)]
        ids = sorted(e.id for e in mine)
        theirs = store.create_endpoint(make_endpoint(b.id, "iris", name="ep0"))
        assert [e.id for e in store.list_endpoints(a.id)] == ids
        assert [e.id for e in store.list_endpoints(a.id, limit=2, after=ids[0])] == ids[1:3]
        assert store.list_endpoints(a.id, limit=0) == []
        with pytest.raises(InvalidInput):
            store.list_endpoints(a.id, limit=-1)
        assert store.list_endpoints(b.id) == [theirs] and store.get_endpoint(b.id, "ep0") == theirs
        for call in (
            lambda: store.get_endpoint(b.id, "ep1"),
            lambda: store.update_endpoint(replace(mine[1], tenant_id=b.id, max_replicas=1)),
            lambda: store.delete_endpoint(b.id, "ep1"),
        ):
            with pytest.raises(NotFound):
                call()
        assert store.get_endpoint(a.id, "ep1") == mine[1]
        assert [e.id for e in store.list_all_endpoints()] == sorted([*ids, theirs.id])

    # -- update and delete -------------------------------------------------------------------
    def test_update_keeps_identity(self, store: MetadataStore) -> None:
        tenant = self._tenant_with_model(store, "iris", "wine")
        created = store.create_endpoint(make_endpoint(tenant.id, "iris", name="e", description="first"))
        model = store.get_model(tenant.id, "iris")
        later = created.created_at + timedelta(hours=1)
        changed = replace(
            created,
            id=new_id("ep"),
            model_name="wine",
            created_at=later,
            selector="2",
            canary_selector="prod",
            canary_weight=0.1,
            min_replicas=0,
            max_replicas=2,
            max_batch_size=1,
            max_wait_ms=0.0,
            idle_timeout_s=60.0,
            target_ongoing_requests=100,
            description=None,
            updated_at=later,
        )
        expected = replace(changed, id=created.id, model_name="iris", created_at=created.created_at)
        assert store.update_endpoint(changed) == expected
        assert store.get_endpoint(tenant.id, "e") == expected and store.list_endpoints(tenant.id) == [expected]
        refs = store.list_model_references(tenant.id, model.id)
        assert [(r.holder_kind, r.holder_id) for r in refs] == [("endpoint", created.id)]
        grown = store.update_endpoint(expected.with_changes(canary_selector=None, canary_weight=0.0, max_replicas=6))
        assert (grown.canary_ref, grown.max_replicas) == (None, 6)
        assert created.updated_at <= grown.updated_at < later  # with_changes stamped it now
        assert store.get_endpoint(tenant.id, "e") == grown
        with pytest.raises(NotFound):
            store.update_endpoint(replace(grown, name="missing"))

    def test_delete(self, store: MetadataStore) -> None:
        tenant = self._tenant_with_model(store)
        gone = store.create_endpoint(make_endpoint(tenant.id, "iris", name="e"))
        kept = store.create_endpoint(make_endpoint(tenant.id, "iris", name="f"))
        assert store.delete_endpoint(tenant.id, "e") is None
        for call in (lambda: store.get_endpoint(tenant.id, "e"), lambda: store.delete_endpoint(tenant.id, "e")):
            with pytest.raises(NotFound):
                call()
        assert store.list_endpoints(tenant.id) == [kept]
        again = store.create_endpoint(make_endpoint(tenant.id, "iris", name="e"))
        assert again.id != gone.id and store.get_endpoint(tenant.id, "e") == again

    # -- the model reference -----------------------------------------------------------------
    def test_model_cannot_be_deleted_while_deployed(self, store: MetadataStore) -> None:
        tenant = self._tenant_with_model(store)
        version = store.get_model_version(tenant.id, "iris")
        first = store.create_endpoint(make_endpoint(tenant.id, "iris", name="e"))
        second = store.create_endpoint(make_endpoint(tenant.id, "iris", name="f"))
        refs = sorted(store.list_model_references(tenant.id, version.model_id), key=lambda r: r.holder_id)
        both = sorted((first, second), key=lambda e: e.id)  # two ids made in one millisecond sort at random
        assert refs == [ModelReference(version.model_id, tenant.id, "endpoint", e.id, e.created_at) for e in both]
        with pytest.raises(Conflict) as info:
            store.delete_model(tenant.id, "iris")
        assert info.value.code == "model_in_use" and both[0].id in info.value.message
        store.delete_endpoint(tenant.id, "e")
        with pytest.raises(Conflict):
            store.delete_model(tenant.id, "iris")
        assert store.list_model_versions(tenant.id, "iris") == [version]
        store.delete_endpoint(tenant.id, "f")
        assert store.list_model_references(tenant.id, version.model_id) == []
        assert store.delete_model(tenant.id, "iris") == [version.artifact_key]
        with pytest.raises(NotFound):
            store.create_endpoint(make_endpoint(tenant.id, "iris", name="e"))

    # -- concurrency -------------------------------------------------------------------------
    def test_concurrent_creates_of_one_name_have_one_winner(self, store: MetadataStore) -> None:
        tenant = self._tenant_with_model(store)
        results = run_concurrently(8, lambda i: store.create_endpoint(make_endpoint(tenant.id, "iris", name="e")))
        winners = [r for r in results if isinstance(r, Endpoint)]
        losers = [r for r in results if not isinstance(r, Endpoint)]
        assert len(winners) == 1, results
        assert all(isinstance(r, Conflict) and r.code == "endpoint_exists" for r in losers), losers
        assert store.list_endpoints(tenant.id) == winners
        model = store.get_model(tenant.id, "iris")
        assert [r.holder_id for r in store.list_model_references(tenant.id, model.id)] == [winners[0].id]

    def test_creates_racing_model_deletion_never_orphan(self, store: MetadataStore) -> None:
        tenant = self._tenant_with_model(store)

        def work(i: int) -> object:
            if i == 3:
                return store.delete_model(tenant.id, "iris")
            return store.create_endpoint(make_endpoint(tenant.id, "iris", name=f"e{i}"))

        results = run_concurrently(8, work)
        created = [r for r in results if isinstance(r, Endpoint)]
        if isinstance(results[3], list):  # the deletion went first: no endpoint may point at the model
            assert created == [] and all(isinstance(r, NotFound) for i, r in enumerate(results) if i != 3), results
            assert store.list_all_endpoints() == []
        else:  # an endpoint went first: the model stays and every create succeeds
            assert isinstance(results[3], Conflict) and results[3].code == "model_in_use", results
            assert len(created) == 7, results
            model = store.get_model(tenant.id, "iris")
            refs = store.list_model_references(tenant.id, model.id)
            assert sorted(r.holder_id for r in refs) == sorted(e.id for e in created)
        assert store.list_endpoints(tenant.id) == sorted(created, key=lambda e: e.id)
