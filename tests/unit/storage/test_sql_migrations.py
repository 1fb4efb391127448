"""Schema migrations: fresh databases reach head, re-runs are no-ops, newer schemas are refused."""

from __future__ import annotations

import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from aimaas.errors import SchemaTooNew
from aimaas.storage.sql import SqlMetadataStore, head_revision, upgrade
from aimaas.storage.sql.engine import create_store_engine
from aimaas.storage.sql.tables import metadata
from aimaas.testing.store_contract import make_tenant, run_concurrently

TABLES = {"tenants", "api_keys", "datasets", "dataset_versions", "dataset_splits", "dataset_references"}
TABLES |= {"registered_models", "model_versions", "model_aliases", "model_references", "jobs", "job_events"}
TABLES |= {"endpoints"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _stamp(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :rev"), {"rev": revision})
    engine.dispose()


def _revision(url: str) -> str | None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    engine.dispose()
    return heads[0] if heads else None


def test_fresh_database_reaches_head(db_url: str) -> None:
    store = SqlMetadataStore(db_url)
    try:
        assert store.migration.before is None and store.migration.after == head_revision() == "0004"
        assert store.migration.changed
    finally:
        store.close()
    assert _revision(db_url) == head_revision()
    engine = sa.create_engine(db_url)
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_migrating_twice_is_a_noop_and_keeps_rows(db_url: str) -> None:
    first = SqlMetadataStore(db_url)
    tenant = first.create_tenant(make_tenant("kept"))
    first.close()
    second = SqlMetadataStore(db_url)
    try:
        assert second.migration.before == second.migration.after == head_revision()
        assert not second.migration.changed
        assert second.get_tenant(tenant.id) == tenant
    finally:
        second.close()
    engine = create_store_engine(db_url)
    assert not upgrade(engine).changed
    engine.dispose()


def test_newer_schema_is_refused_not_downgraded(db_url: str) -> None:
    SqlMetadataStore(db_url).close()
    _stamp(db_url, "9999_from_the_future")
    with pytest.raises(SchemaTooNew) as info:
        SqlMetadataStore(db_url)
    message = info.value.message
    assert "9999_from_the_future" in message and f"head {head_revision()}" in message
    assert "newer than this aimaas knows" in message and "AIMAAS_DATABASE_URL" in message
    assert info.value.code == "schema_too_new"
    assert _revision(db_url) == "9999_from_the_future"


def test_tables_match_the_migrations(db_url: str) -> None:
    SqlMetadataStore(db_url).close()
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_concurrent_first_start_with_threads(db_url: str) -> None:
    results = run_concurrently(8, lambda i: SqlMetadataStore(db_url))
    stores = [r for r in results if isinstance(r, SqlMetadataStore)]
    try:
        assert len(stores) == 8, [r for r in results if not isinstance(r, SqlMetadataStore)]
        assert sum(s.migration.changed for s in stores) == 1
    finally:
        for s in stores:
            s.close()
    assert _revision(db_url) == head_revision()


def _open_in_process(url: str) -> tuple[str | None, str]:
    store = SqlMetadataStore(url)
    store.close()
    return store.migration.before, store.migration.after


def test_concurrent_first_start_with_processes(db_url: str) -> None:
    with ProcessPoolExecutor(max_workers=4, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_open_in_process, [db_url] * 4))
    assert [before for before, _ in results].count(None) == 1
    assert {after for _, after in results} == {head_revision()}


def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    SqlMetadataStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
