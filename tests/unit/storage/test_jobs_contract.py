"""The jobs contract on every backend, and migration 0002 → head keeping rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from aimaas.storage import MemoryMetadataStore, MetadataStore
from aimaas.storage.sql import SqlMetadataStore, head_revision
from aimaas.storage.sql.engine import create_store_engine, session_scope
from aimaas.storage.sql.migrate import alembic_config, current_revision
from aimaas.storage.sql.tables import registered_models, tenants
from aimaas.testing.jobs_contract import JobsContract, make_job
from aimaas.testing.store_contract import make_tenant


class TestSqliteFileJobs(JobsContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[MetadataStore]:
        s = SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
        yield s
        s.close()

    @pytest.fixture
    def twin(self, store: MetadataStore, tmp_path: Path) -> Iterator[MetadataStore]:
        s = SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
        yield s
        s.close()


class TestSqliteInMemoryJobs(JobsContract):
    @pytest.fixture
    def store(self) -> Iterator[MetadataStore]:
        s = SqlMetadataStore("sqlite://")
        yield s
        s.close()


@pytest.mark.postgres
class TestPostgresJobs(JobsContract):
    @pytest.fixture
    def store(self, postgres_url: str) -> Iterator[MetadataStore]:
        s = SqlMetadataStore(postgres_url)
        assert s.dialect == "postgresql"
        yield s
        s.close()

    @pytest.fixture
    def twin(self, store: MetadataStore, postgres_url: str) -> Iterator[MetadataStore]:
        s = SqlMetadataStore(postgres_url)
        yield s
        s.close()


class TestMemoryJobs(JobsContract):
    @pytest.fixture
    def store(self) -> Iterator[MetadataStore]:
        yield MemoryMetadataStore()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_database_at_0002_upgrades_to_head_keeping_rows(db_url: str) -> None:
    tenant = make_tenant("before-jobs")
    engine = create_store_engine(db_url)
    try:
        with session_scope(engine, write=True) as conn:
            command.upgrade(alembic_config(conn), "0002")
        with session_scope(engine, write=True) as conn:
            assert current_revision(conn) == "0002"
            assert "jobs" not in sa.inspect(conn).get_table_names()
            conn.execute(sa.insert(tenants).values(id=tenant.id, name=tenant.name, created_at=tenant.created_at))
            conn.execute(
                sa.insert(registered_models).values(
                    id="rm_old", tenant_id=tenant.id, name="iris", created_at=tenant.created_at, latest_version=0
                )
            )
    finally:
        engine.dispose()

    store = SqlMetadataStore(db_url)
    try:
        assert (store.migration.before, store.migration.after) == ("0002", head_revision())
        assert store.get_tenant(tenant.id) == tenant
        assert store.get_model(tenant.id, "iris").id == "rm_old"
        job, created = store.create_job(make_job(tenant.id, idempotency_key="first"))
        assert created and store.claim_jobs("server", 1, 1) == [store.get_job(tenant.id, job.id)]
    finally:
        store.close()
