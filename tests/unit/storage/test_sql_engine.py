"""SQLite set-up (WAL, busy timeout, BEGIN IMMEDIATE) and translation of driver errors."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aimaas.domain import DatasetReference
from aimaas.errors import AimaasError, InvalidInput, StorageError
from aimaas.storage.sql import SqlMetadataStore, session_scope
from aimaas.storage.sql.engine import create_store_engine
from aimaas.testing.store_contract import make_api_key, make_split, make_tenant, make_version, run_concurrently


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'a.db'}", busy_timeout_ms=1234)
    with session_scope(engine) as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_write_transactions_begin_immediate(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'a.db'}")
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    with session_scope(engine, write=True) as conn:
        conn.execute(sa.text("SELECT 1"))
    with session_scope(engine) as conn:
        conn.execute(sa.text("SELECT 1"))
    assert [s for s in seen if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE", "BEGIN DEFERRED"]
    engine.dispose()


def test_sixteen_threads_writing_never_see_database_is_locked(tmp_path: Path) -> None:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'busy.db'}")
    tenants = [store.create_tenant(make_tenant(f"t{i}")) for i in range(4)]

    def work(i: int) -> int:
        tenant = tenants[i % 4]
        for j in range(15):
            store.create_api_key(make_api_key(tenant.id))
            version, _ = store.add_dataset_version(tenant.id, f"d{j % 3}", make_version())
            store.add_dataset_split(make_split(version))
            store.add_dataset_reference(DatasetReference(version.dataset_id, tenant.id, "job", f"j{i}-{j}"))
            store.list_dataset_versions(tenant.id, f"d{j % 3}")
        return i

    try:
        results = run_concurrently(16, work)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == [], errors
        versions = sum(len(store.list_dataset_versions(t.id, f"d{k}")) for t in tenants for k in range(3))
        assert versions == 16 * 15
        for t in tenants:
            for k in range(3):
                numbers = [v.version for v in store.list_dataset_versions(t.id, f"d{k}")]
                assert numbers == list(range(1, len(numbers) + 1))
    finally:
        store.close()


def _hold_write_lock(path: Path, seconds: float, started: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


def test_writer_waits_for_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = SqlMetadataStore(f"sqlite:///{path}", busy_timeout_ms=10_000)
    started = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 0.5, started))
    holder.start()
    started.wait()
    began = time.monotonic()
    store.create_tenant(make_tenant("patient"))
    assert time.monotonic() - began >= 0.3
    holder.join()
    store.close()


def test_lock_held_past_the_timeout_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = SqlMetadataStore(f"sqlite:///{path}", busy_timeout_ms=100)
    tenant = store.create_tenant(make_tenant("reader"))
    started = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 1.5, started))
    holder.start()
    started.wait()
    try:
        assert store.get_tenant(tenant.id) == tenant  # WAL: readers are not blocked by the writer
        with pytest.raises(StorageError, match="busy timeout") as info:
            store.create_tenant(make_tenant("impatient"))
        assert type(info.value) is StorageError and not isinstance(info.value, sqlite3.Error)
    finally:
        holder.join()
        store.close()


def test_session_scope_translates_driver_errors(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(StorageError, match="no such table"), session_scope(engine) as conn:
        conn.execute(sa.text("SELECT * FROM missing_table"))
    with pytest.raises(InvalidInput), session_scope(engine):
        raise InvalidInput("passes through unchanged")
    engine.dispose()


def test_unreachable_postgres_is_a_storage_error() -> None:
    with pytest.raises(StorageError) as info:
        SqlMetadataStore("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=3")
    assert "database error" in info.value.message


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("not a url", InvalidInput),
        ("mysql://u:secret@h/db", InvalidInput),
        ("postgresql+nodriver://h/db", StorageError),
    ],
)
def test_bad_urls(url: str, error: type[AimaasError]) -> None:
    with pytest.raises(error) as info:
        SqlMetadataStore(url)
    assert "secret" not in info.value.message


def test_in_memory_sqlite_is_shared_between_threads() -> None:
    store = SqlMetadataStore("sqlite://")
    results: list[Any] = run_concurrently(8, lambda i: store.create_tenant(make_tenant(f"t{i}")))
    assert len(store.list_tenants()) == 8, results
    store.close()
