"""The model registry: its contract on every backend, model refs, and migration 0001 → head keeping rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from aimaas.domain import ModelRef, parse_model_ref
from aimaas.errors import InvalidInput
from aimaas.storage.sql import SqlMetadataStore, head_revision
from aimaas.storage.sql.engine import create_store_engine, session_scope
from aimaas.storage.sql.migrate import alembic_config, current_revision
from aimaas.storage.sql.tables import dataset_versions, datasets, tenants
from aimaas.testing.registry_contract import RegistryContract, make_model_version
from aimaas.testing.store_contract import make_tenant, make_version


class TestRegistryContract(RegistryContract):
    """On every backend: the ``store`` fixture in conftest.py."""


# -- model refs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iris", ModelRef("iris")),
        ("iris-v2.onnx_1", ModelRef("iris-v2.onnx_1")),
        ("iris/3", ModelRef("iris", version=3)),
        ("iris/120", ModelRef("iris", version=120)),
        ("iris@prod", ModelRef("iris", alias="prod")),
        ("iris@canary-2_b", ModelRef("iris", alias="canary-2_b")),
        ("iris@latest", ModelRef("iris")),
    ],
)
def test_parse_model_ref(text: str, expected: ModelRef) -> None:
    assert parse_model_ref(text) == expected
    assert str(expected) == (text if text != "iris@latest" else "iris")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@prod",
        "/3",
        "iris/",
        "iris@",
        "iris/0",
        "iris/03",
        "iris/-1",
        "iris/x",
        "iris/3/4",
        "iris@Prod",
        "iris@3",
        "iris@a@b",
        "iris@prod/3",
        "ir is",
        "-iris",
        "iris@a b",
        "x" * 129,
    ],
)
def test_bad_model_refs_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_model_ref(text, param="model")
    assert info.value.param == "model"


# -- migration 0001 → head ---------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_database_at_0001_upgrades_to_head_keeping_rows(db_url: str) -> None:
    tenant = make_tenant("before-registry")
    version = make_version()
    engine = create_store_engine(db_url)
    try:
        with session_scope(engine, write=True) as conn:
            command.upgrade(alembic_config(conn), "0001")
        with session_scope(engine, write=True) as conn:
            assert current_revision(conn) == "0001"
            assert "registered_models" not in sa.inspect(conn).get_table_names()
            conn.execute(sa.insert(tenants).values(id=tenant.id, name=tenant.name, created_at=tenant.created_at))
            conn.execute(
                sa.insert(datasets).values(
                    id="ds_old", tenant_id=tenant.id, name="iris", created_at=tenant.created_at, latest_version=1
                )
            )
            conn.execute(
                sa.insert(dataset_versions).values(
                    id=version.id,
                    dataset_id="ds_old",
                    tenant_id=tenant.id,
                    version=1,
                    format=version.format,
                    sha256=version.sha256,
                    size_bytes=version.size_bytes,
                    artifact_key=version.artifact_key,
                    filename=version.filename,
                    num_rows=version.num_rows,
                    schema_json="[]",
                    stats_json="{}",
                    target_suggestion=None,
                    created_at=version.created_at,
                )
            )
    finally:
        engine.dispose()

    store = SqlMetadataStore(db_url)
    try:
        assert (store.migration.before, store.migration.after) == ("0001", head_revision())
        assert store.get_tenant(tenant.id) == tenant
        kept = store.get_dataset_version(tenant.id, "iris")
        assert (kept.id, kept.dataset_id, kept.version, kept.sha256) == (version.id, "ds_old", 1, version.sha256)
        lineage = {"dataset_id": "ds_old", "dataset_version_id": version.id}
        model_version = store.add_model_version(tenant.id, "iris-clf", make_model_version(lineage=lineage))
        assert model_version.version == 1
        refs = store.list_dataset_references(tenant.id, "ds_old")
        assert [(r.holder_kind, r.holder_id) for r in refs] == [("model_version", model_version.id)]
    finally:
        store.close()
