"""Endpoints: their contract on every backend, and migration 0003 → head (0004) keeping rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from aimaas.errors import Conflict
from aimaas.storage.sql import SqlMetadataStore, head_revision
from aimaas.storage.sql.convert import job_values, model_version_values
from aimaas.storage.sql.engine import create_store_engine, session_scope
from aimaas.storage.sql.migrate import alembic_config, current_revision
from aimaas.storage.sql.tables import jobs, model_references, model_versions, registered_models, tenants
from aimaas.testing.endpoints_contract import EndpointsContract, make_endpoint
from aimaas.testing.jobs_contract import make_job
from aimaas.testing.registry_contract import make_model_version
from aimaas.testing.store_contract import make_tenant


class TestEndpointsContract(EndpointsContract):
    """On every backend: the ``store`` fixture in conftest.py."""


# -- migration 0003 → head ---------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _at(db_url: str, revision: str) -> Engine:
    engine = create_store_engine(db_url)
    with session_scope(engine, write=True) as conn:
        command.upgrade(alembic_config(conn), revision)
    return engine


def test_database_at_0003_upgrades_to_head_keeping_rows(db_url: str) -> None:
    tenant = make_tenant("before-endpoints")
    version = make_model_version(model_id="rm_old", tenant_id=tenant.id, version=1)
    engine = _at(db_url, "0003")
    try:
        with session_scope(engine, write=True) as conn:
            assert current_revision(conn) == "0003"
            assert "endpoints" not in sa.inspect(conn).get_table_names()
            conn.execute(sa.insert(tenants).values(id=tenant.id, name=tenant.name, created_at=tenant.created_at))
            conn.execute(
                sa.insert(registered_models).values(
                    id="rm_old", tenant_id=tenant.id, name="iris", created_at=tenant.created_at, latest_version=1
                )
            )
            conn.execute(sa.insert(model_versions).values(**model_version_values(version)))
            conn.execute(sa.insert(jobs).values(**job_values(make_job(tenant.id))))
    finally:
        engine.dispose()

    store = SqlMetadataStore(db_url)
    try:
        assert (store.migration.before, store.migration.after) == ("0003", head_revision())
        assert head_revision() == "0004"
        assert store.get_tenant(tenant.id) == tenant
        assert store.get_model_version(tenant.id, "iris") == version
        assert len(store.list_jobs(tenant.id)) == 1
        endpoint = store.create_endpoint(make_endpoint(tenant.id, "iris", name="iris-prod", selector="1"))
        assert store.get_endpoint(tenant.id, "iris-prod") == endpoint
        with pytest.raises(Conflict):
            store.delete_model(tenant.id, "iris")
    finally:
        store.close()


def test_downgrade_to_0003_drops_endpoints_and_their_references(db_url: str) -> None:
    store = SqlMetadataStore(db_url)
    try:
        tenant = store.create_tenant(make_tenant())
        store.add_model_version(tenant.id, "iris", make_model_version())
        store.create_endpoint(make_endpoint(tenant.id, "iris", name="e"))
    finally:
        store.close()
    engine = create_store_engine(db_url)
    try:
        with session_scope(engine, write=True) as conn:
            command.downgrade(alembic_config(conn), "0003")
        with session_scope(engine) as conn:
            assert current_revision(conn) == "0003"
            assert "endpoints" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.select(sa.func.count()).select_from(model_references)).scalar() == 0
    finally:
        engine.dispose()
    store = SqlMetadataStore(db_url)  # and back up again
    try:
        assert store.migration.before == "0003" and store.list_all_endpoints() == []
        assert store.delete_model(tenant.id, "iris")  # no stale reference blocks it
    finally:
        store.close()
