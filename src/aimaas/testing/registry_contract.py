"""RegistryContract: the model registry behaviour every :class:`~aimaas.storage.base.MetadataStore` must show.

Used exactly like :class:`~aimaas.testing.store_contract.StoreContract`: subclass it in a test module and
give the subclass a ``store`` fixture that yields a fresh, empty store.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from aimaas.domain import ModelReference, ModelVersion, Tenant, new_id, parse_model_ref, utcnow
from aimaas.errors import Conflict, InvalidInput, NotFound
from aimaas.storage.base import MetadataStore
from aimaas.testing.store_contract import make_tenant, make_version, run_concurrently

__all__ = ["RegistryContract", "make_model_version"]


def make_model_version(**fields: Any) -> ModelVersion:
    """A ModelVersion as a service would hand it to ``add_model_version`` (store-assigned fields are junk)."""
    sha = secrets.token_hex(32)
    values: dict[str, Any] = {"id": new_id("mv"), "model_id": "ignored", "tenant_id": "ignored", "version": 99}
    values |= {"status": "ready", "task": "classification", "format": "onnx", "created_at": utcnow()}
    values |= {"artifact_key": f"models/{sha}/model.onnx", "sha256": sha, "size_bytes": 4096}
    values["signature"] = {
        "inputs": [{"name": "sepal_length", "type": "tensor(float)", "shape": [None, 1]}],
        "outputs": [{"name": "label", "type": "tensor(int64)"}, {"name": "probabilities"}],
    }
    values["metrics"] = {"accuracy": 0.97, "f1_macro": 0.965, "confusion": [[5, 0], [1, 4]]}
    values["params"] = {"n_estimators": 200, "max_depth": None, "class_weight": "balanced", "bootstrap": True}
    values["lineage"] = {"trainer": "random_forest", "libraries": {"scikit-learn": "1.5.0"}, "code_version": "c0de"}
    values["card_markdown"] = "# Iris classifier\n\nTrained on *iris* — ünïcode ✓"
    return ModelVersion(**(values | fields))


def _aware_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


class RegistryContract:
    """``test_*`` methods taking a ``store`` fixture (a fresh, empty MetadataStore)."""

    @staticmethod
    def _tenant(store: MetadataStore) -> Tenant:
        return store.create_tenant(make_tenant())

    # -- versions ----------------------------------------------------------------------------
    def test_versions_are_numbered(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        given = make_model_version()
        v1 = store.add_model_version(tenant.id, "iris", given, description="first")
        assert v1.version == 1 and v1.tenant_id == tenant.id and v1.model_id not in ("ignored", "")
        assert v1 == replace(given, model_id=v1.model_id, tenant_id=tenant.id, version=1)
        v2 = store.add_model_version(tenant.id, "iris", make_model_version())
        assert (v2.version, v2.model_id) == (2, v1.model_id)
        model = store.get_model(tenant.id, "iris")
        assert (model.id, model.name, model.latest_version, model.description) == (v1.model_id, "iris", 2, "first")
        assert store.list_model_versions(tenant.id, "iris") == [v1, v2]
        assert store.get_model_version(tenant.id, "iris") == v2
        assert store.get_model_version(tenant.id, "iris", 1) == v1
        with pytest.raises(NotFound):
            store.get_model_version(tenant.id, "iris", 3)
        store.add_model_version(tenant.id, "iris", make_model_version(), "second")
        assert store.get_model(tenant.id, "iris").description == "second"

    def test_concurrent_versions_are_numbered_without_gaps(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        results = run_concurrently(8, lambda i: store.add_model_version(tenant.id, "iris", make_model_version()))
        assert all(isinstance(r, ModelVersion) for r in results), results
        assert sorted(r.version for r in results if isinstance(r, ModelVersion)) == list(range(1, 9))
        assert [v.version for v in store.list_model_versions(tenant.id, "iris")] == list(range(1, 9))
        assert store.get_model(tenant.id, "iris").latest_version == 8
        assert len(store.list_models(tenant.id)) == 1

    def test_bad_versions_are_refused(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound):
            store.add_model_version("ten_missing", "iris", make_model_version())
        tenant = self._tenant(store)
        bad: list[tuple[str, dict[str, Any]]] = [("iris", {"status": "deleted"}), ("iris", {"format": "pickle"})]
        bad += [("iris", {"metrics": {"when": object()}}), ("iris@prod", {}), ("", {})]
        for name, fields in bad:
            with pytest.raises(InvalidInput):
                store.add_model_version(tenant.id, name, make_model_version(**fields))
        assert store.list_models(tenant.id) == []

    def test_status_changes(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        v1 = store.add_model_version(tenant.id, "iris", make_model_version())
        archived = store.set_model_version_status(tenant.id, "iris", 1, "archived")
        assert archived.status == "archived" and archived.id == v1.id
        assert store.get_model_version(tenant.id, "iris") == archived  # latest is the highest number
        assert store.set_model_version_status(tenant.id, "iris", 1, "ready") == v1
        with pytest.raises(InvalidInput):
            store.set_model_version_status(tenant.id, "iris", 1, "gone")
        with pytest.raises(NotFound):
            store.set_model_version_status(tenant.id, "iris", 2, "archived")

    def test_list_models_paging(self, store: MetadataStore) -> None:
        a, b = self._tenant(store), self._tenant(store)
        ids = sorted(store.add_model_version(a.id, f"m{i}", make_model_version()).model_id for i in range(4))
        store.add_model_version(b.id, "m0", make_model_version())
        assert [m.id for m in store.list_models(a.id)] == ids
        assert [m.id for m in store.list_models(a.id, limit=2, after=ids[0])] == ids[1:3]
        assert store.list_models(a.id, limit=0) == []
        assert [m.name for m in store.list_models(b.id)] == ["m0"]
        with pytest.raises(InvalidInput):
            store.list_models(a.id, limit=-1)

    def test_json_fields_round_trip(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        given = make_model_version(
            signature={"inputs": ({"name": "x", "shape": (None, 3)},), "outputs": []},
            metrics={"rmse": 0.125, "per_class": {"ä": 1.0, "b": None}, "ok": True, "n": 10**15},
            params={"alpha": 1e-4, "layers": [64, 32], "solver": "adam"},
            lineage={"dataset_version_id": "dsv_1", "split_id": "spl_1", "job_id": "job_1", "empty": {}},
            card_markdown="",
        )
        expected_signature = {"inputs": [{"name": "x", "shape": [None, 3]}], "outputs": []}
        stored = store.add_model_version(tenant.id, "m", given)
        for got in (stored, store.get_model_version(tenant.id, "m", 1), store.list_model_versions(tenant.id, "m")[0]):
            assert got.signature == expected_signature
            assert (got.metrics, got.params, got.lineage) == (given.metrics, given.params, given.lineage)
            assert got.card_markdown == "" and got.size_bytes == 4096 and got.sha256 == given.sha256

    def test_timestamps_are_utc_aware(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        local = datetime(2024, 5, 6, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
        version = store.add_model_version(tenant.id, "m", make_model_version(created_at=local))
        model = store.get_model(tenant.id, "m")
        alias = store.set_model_alias(tenant.id, "m", "prod", 1, at=local)
        store.add_model_reference(ModelReference(model.id, tenant.id, "endpoint", "ep_1", created_at=local))
        reference = store.list_model_references(tenant.id, model.id)[0]
        for value in (
            version.created_at,
            store.get_model_version(tenant.id, "m").created_at,
            model.created_at,
            alias.updated_at,
            store.list_model_aliases(tenant.id, "m")[0].updated_at,
            reference.created_at,
        ):
            assert _aware_utc(value) and value == local
        assert _aware_utc(store.set_model_alias(tenant.id, "m", "staging", 1).updated_at)

    # -- aliases and refs --------------------------------------------------------------------
    def test_alias_moves(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        v1 = store.add_model_version(tenant.id, "m", make_model_version())
        v2 = store.add_model_version(tenant.id, "m", make_model_version())
        t0 = datetime(2030, 1, 1, tzinfo=UTC)
        first = store.set_model_alias(tenant.id, "m", "prod", 1, at=t0)
        assert (first.model_id, first.tenant_id, first.alias, first.version) == (v1.model_id, tenant.id, "prod", 1)
        moved = store.set_model_alias(tenant.id, "m", "prod", 2, at=t0 + timedelta(hours=1))
        assert moved.version == 2 and moved.updated_at == t0 + timedelta(hours=1)
        store.set_model_alias(tenant.id, "m", "canary", 1, at=t0)
        assert [(a.alias, a.version) for a in store.list_model_aliases(tenant.id, "m")] == [("canary", 1), ("prod", 2)]
        assert store.resolve_model_ref(tenant.id, parse_model_ref("m@prod")) == v2
        with pytest.raises(NotFound):
            store.set_model_alias(tenant.id, "m", "prod", 3)
        assert store.resolve_model_ref(tenant.id, parse_model_ref("m@prod")) == v2
        store.delete_model_alias(tenant.id, "m", "canary")
        with pytest.raises(NotFound):
            store.delete_model_alias(tenant.id, "m", "canary")
        with pytest.raises(NotFound):
            store.resolve_model_ref(tenant.id, parse_model_ref("m@canary"))
        assert [a.alias for a in store.list_model_aliases(tenant.id, "m")] == ["prod"]

    def test_bad_alias_names_are_refused(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        store.add_model_version(tenant.id, "m", make_model_version())
        for alias in ("Prod", "3", "latest", "", "a b", "-x", "a/b", "a@b", "x" * 65):
            with pytest.raises(InvalidInput):
                store.set_model_alias(tenant.id, "m", alias, 1)
        assert store.list_model_aliases(tenant.id, "m") == []

    def test_concurrent_alias_moves_leave_one_answer(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        for _ in range(8):
            store.add_model_version(tenant.id, "m", make_model_version())
        results = run_concurrently(8, lambda i: store.set_model_alias(tenant.id, "m", "prod", i + 1))
        assert all(not isinstance(r, BaseException) for r in results), results
        aliases = store.list_model_aliases(tenant.id, "m")
        assert len(aliases) == 1 and 1 <= aliases[0].version <= 8

    def test_refs_resolve(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        v1 = store.add_model_version(tenant.id, "m", make_model_version())
        v2 = store.add_model_version(tenant.id, "m", make_model_version())
        store.set_model_alias(tenant.id, "m", "prod", 1)
        for text, expected in [("m", v2), ("m/1", v1), ("m/2", v2), ("m@prod", v1), ("m@latest", v2)]:
            assert store.resolve_model_ref(tenant.id, parse_model_ref(text)) == expected, text
        for text in ("m/3", "m@staging", "other", "other@prod", "other/1"):
            with pytest.raises(NotFound):
                store.resolve_model_ref(tenant.id, parse_model_ref(text))

    # -- tenancy, deletion, references -------------------------------------------------------
    def test_models_of_another_tenant_are_not_found(self, store: MetadataStore) -> None:
        owner, other = self._tenant(store), self._tenant(store)
        version = store.add_model_version(owner.id, "m", make_model_version())
        store.set_model_alias(owner.id, "m", "prod", 1)
        ref = ModelReference(version.model_id, other.id, "endpoint", "ep_1")
        for call in (
            lambda: store.get_model(other.id, "m"),
            lambda: store.list_model_versions(other.id, "m"),
            lambda: store.get_model_version(other.id, "m"),
            lambda: store.resolve_model_ref(other.id, parse_model_ref("m@prod")),
            lambda: store.set_model_alias(other.id, "m", "prod", 1),
            lambda: store.delete_model_alias(other.id, "m", "prod"),
            lambda: store.list_model_aliases(other.id, "m"),
            lambda: store.set_model_version_status(other.id, "m", 1, "archived"),
            lambda: store.delete_model(other.id, "m"),
            lambda: store.add_model_reference(ref),
            lambda: store.list_model_references(other.id, version.model_id),
        ):
            with pytest.raises(NotFound):
                call()
        store.remove_model_reference(other.id, version.model_id, "endpoint", "ep_1")
        assert store.list_models(other.id) == []
        assert store.get_model_version(owner.id, "m") == version
        assert [a.version for a in store.list_model_aliases(owner.id, "m")] == [1]
        other_version = store.add_model_version(other.id, "m", make_model_version())
        assert other_version.version == 1 and other_version.model_id != version.model_id

    def test_delete_returns_artifact_keys(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        v1 = store.add_model_version(tenant.id, "m", make_model_version())
        v2 = store.add_model_version(tenant.id, "m", make_model_version())
        keep = store.add_model_version(tenant.id, "keep", make_model_version())
        store.set_model_alias(tenant.id, "m", "prod", 2)
        assert store.delete_model(tenant.id, "m") == [v1.artifact_key, v2.artifact_key]
        for call in (
            lambda: store.get_model(tenant.id, "m"),
            lambda: store.list_model_aliases(tenant.id, "m"),
            lambda: store.delete_model(tenant.id, "m"),
            lambda: store.list_model_references(tenant.id, v1.model_id),
        ):
            with pytest.raises(NotFound):
                call()
        assert store.get_model_version(tenant.id, "keep") == keep
        again = store.add_model_version(tenant.id, "m", make_model_version())
        assert again.version == 1 and store.list_model_aliases(tenant.id, "m") == []

    def test_model_references_block_deletion(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        version = store.add_model_version(tenant.id, "m", make_model_version())
        ref = ModelReference(version.model_id, tenant.id, "endpoint", "ep_1")
        store.add_model_reference(ref)
        store.add_model_reference(ModelReference(version.model_id, tenant.id, "endpoint", "ep_1", utcnow()))
        store.add_model_reference(ModelReference(version.model_id, tenant.id, "endpoint", "ep_2", ref.created_at))
        listed = store.list_model_references(tenant.id, version.model_id)
        assert [(r.holder_kind, r.holder_id) for r in listed] == [("endpoint", "ep_1"), ("endpoint", "ep_2")]
        assert listed[0] == ref
        with pytest.raises(Conflict) as info:
            store.delete_model(tenant.id, "m")
        assert info.value.code == "model_in_use" and "ep_1" in info.value.message
        assert store.list_model_versions(tenant.id, "m") == [version]
        for holder in ("ep_1", "ep_2", "ep_2"):
            store.remove_model_reference(tenant.id, version.model_id, "endpoint", holder)
        assert store.delete_model(tenant.id, "m") == [version.artifact_key]
        with pytest.raises(NotFound):
            store.add_model_reference(ref)

    def test_lineage_dataset_cannot_be_deleted_until_the_model_is(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        dataset_version, _ = store.add_dataset_version(tenant.id, "iris", make_version())
        lineage = {"dataset_id": dataset_version.dataset_id, "dataset_version_id": dataset_version.id}
        v1 = store.add_model_version(tenant.id, "m", make_model_version(lineage=lineage))
        v2 = store.add_model_version(tenant.id, "m", make_model_version(lineage=lineage))
        refs = store.list_dataset_references(tenant.id, dataset_version.dataset_id)
        assert sorted((r.holder_kind, r.holder_id) for r in refs) == sorted(
            [("model_version", v1.id), ("model_version", v2.id)]
        )
        with pytest.raises(Conflict) as info:
            store.delete_dataset(tenant.id, "iris")
        assert info.value.code == "dataset_in_use"
        assert store.delete_model(tenant.id, "m") == [v1.artifact_key, v2.artifact_key]
        assert store.list_dataset_references(tenant.id, dataset_version.dataset_id) == []
        assert store.delete_dataset(tenant.id, "iris") == [dataset_version.artifact_key]

    def test_dataset_deletion_racing_new_versions_never_orphans_lineage(self, store: MetadataStore) -> None:
        tenant = self._tenant(store)
        dataset_version, _ = store.add_dataset_version(tenant.id, "iris", make_version())
        lineage = {"dataset_id": dataset_version.dataset_id}

        def work(i: int) -> object:
            if i == 3:
                return store.delete_dataset(tenant.id, "iris")
            return store.add_model_version(tenant.id, "m", make_model_version(lineage=lineage))

        results = run_concurrently(8, work)
        assert all(isinstance(r, ModelVersion | list | NotFound | Conflict) for r in results), results
        added = [r for r in results if isinstance(r, ModelVersion)]
        if isinstance(results[3], list):  # the dataset went first: no version may claim it
            assert added == [] and all(isinstance(r, NotFound) for i, r in enumerate(results) if i != 3)
        else:
            assert isinstance(results[3], Conflict) and results[3].code == "dataset_in_use"
            refs = store.list_dataset_references(tenant.id, dataset_version.dataset_id)
            assert sorted(r.holder_id for r in refs) == sorted(v.id for v in added) and added

    def test_lineage_dataset_must_exist_in_the_tenant(self, store: MetadataStore) -> None:
        owner, other = self._tenant(store), self._tenant(store)
        dataset_version, _ = store.add_dataset_version(owner.id, "iris", make_version())
        for dataset_id in ("ds_missing", dataset_version.dataset_id):
            with pytest.raises(NotFound):
                store.add_model_version(other.id, "m", make_model_version(lineage={"dataset_id": dataset_id}))
        assert store.list_models(other.id) == []
        assert store.list_dataset_references(owner.id, dataset_version.dataset_id) == []
