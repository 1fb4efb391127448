"""ServingController over a real in-memory store, real local artifacts and real ONNX models: replicas follow
the endpoints, unknown endpoints are 404, and the memory budget unloads the least recently used endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aimaas.domain import Endpoint, ModelVersion, new_id
from aimaas.errors import NotFound
from aimaas.serving.controller import ServingController
from aimaas.serving.materialize import Materializer
from aimaas.storage import MemoryMetadataStore
from aimaas.storage.artifacts.local import LocalArtifactStore
from aimaas.testing.store_contract import make_tenant

ROW = {"a": 1.0, "b": 2.0}


def onnx_model(seed: int) -> bytes:
    import numpy as np
    import pandas as pd

    from aimaas.training import get_trainer

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    y = pd.Series(np.where(X["a"] > 0, "yes", "no"), name="y")
    trainer = get_trainer("logistic_regression")(task="classification")
    trainer.fit(X, y)
    return trainer.export_onnx(X.head())


def deploy(store: MemoryMetadataStore, artifacts: LocalArtifactStore, tenant_id: str, name: str, seed: int) -> None:
    stored = artifacts.put_bytes(f"models/{name}.onnx", onnx_model(seed))
    draft = ModelVersion(id=new_id("mv"), model_id="", tenant_id=tenant_id, version=0, status="ready",
                         task="classification", format="onnx", artifact_key=stored.key, sha256=stored.sha256,
                         size_bytes=stored.size_bytes)
    store.add_model_version(tenant_id, name, draft)
    store.create_endpoint(Endpoint(id=new_id("ep"), tenant_id=tenant_id, name=name, model_name=name,
                                   min_replicas=0, idle_timeout_s=3600))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[MemoryMetadataStore, LocalArtifactStore, str]:
    store = MemoryMetadataStore()
    tenant = store.create_tenant(make_tenant())
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    return store, artifacts, tenant.id


async def test_requests_load_replicas_and_unknown_endpoints_are_404(
        setup: tuple[MemoryMetadataStore, LocalArtifactStore, str], tmp_path: Path) -> None:
    store, artifacts, tenant = setup
    deploy(store, artifacts, tenant, "one", 0)
    controller = ServingController(store, Materializer(artifacts, tmp_path / "cache"), reconcile_interval_s=0.05)
    await controller.start()
    try:
        replica = await controller.acquire(tenant, "one")  # scale from zero on demand
        assert replica.ready and replica.version == 1
        [prediction] = await replica.predict([ROW])
        assert prediction.label in ("yes", "no") and set(prediction.probabilities or {}) == {"no", "yes"}
        with pytest.raises(NotFound):
            await controller.acquire(tenant, "missing")
        with pytest.raises(NotFound):
            await controller.acquire("another-tenant", "one")
    finally:
        await controller.stop()


async def test_memory_budget_unloads_the_least_recently_used(
        setup: tuple[MemoryMetadataStore, LocalArtifactStore, str], tmp_path: Path) -> None:
    store, artifacts, tenant = setup
    deploy(store, artifacts, tenant, "first", 1)
    deploy(store, artifacts, tenant, "second", 2)
    sizes = [store.get_model_version(tenant, n).size_bytes for n in ("first", "second")]
    controller = ServingController(store, Materializer(artifacts, tmp_path / "cache"), reconcile_interval_s=0.05,
                                   memory_budget_bytes=max(sizes) + 1)  # room for one model, not two
    await controller.start()
    try:
        await (await controller.acquire(tenant, "first")).predict([ROW])
        await asyncio.sleep(0.01)
        await (await controller.acquire(tenant, "second")).predict([ROW])
        await controller.reconcile()
        first, second = controller.state_of(tenant, "first"), controller.state_of(tenant, "second")
        assert first is not None and second is not None
        assert first.state == "idle" and first.memory() == 0  # least recently used: unloaded
        assert second.memory() > 0
        replica = await controller.acquire(tenant, "first")  # reloads on demand
        assert replica.ready
    finally:
        await controller.stop()


async def test_a_model_that_fails_to_load_marks_the_endpoint_failed(
        setup: tuple[MemoryMetadataStore, LocalArtifactStore, str], tmp_path: Path) -> None:
    from aimaas.errors import ServiceUnavailable

    store, artifacts, tenant = setup
    stored = artifacts.put_bytes("models/broken.onnx", b"this is not an onnx graph")
    draft = ModelVersion(id=new_id("mv"), model_id="", tenant_id=tenant, version=0, status="ready",
                         task="classification", format="onnx", artifact_key=stored.key, sha256=stored.sha256,
                         size_bytes=stored.size_bytes)
    store.add_model_version(tenant, "broken", draft)
    store.create_endpoint(Endpoint(id=new_id("ep"), tenant_id=tenant, name="broken", model_name="broken"))
    controller = ServingController(store, Materializer(artifacts, tmp_path / "cache"), reconcile_interval_s=0.05,
                                   cold_start_timeout_s=10)
    await controller.start()
    try:
        with pytest.raises(ServiceUnavailable) as info:
            await controller.acquire(tenant, "broken")
        assert "failed to load" in info.value.message and info.value.headers["Retry-After"]
        state = controller.state_of(tenant, "broken")
        assert state is not None and state.state == "failed"
        await asyncio.sleep(0.3)  # several reconcile passes: no new load attempt inside the back-off
        assert state.main is not None and len(state.main.replicas) == 0
    finally:
        await controller.stop()
