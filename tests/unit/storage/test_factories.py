"""open_metadata_store / open_artifact_store choose the backend from Settings URLs."""

from __future__ import annotations

import importlib.util
import stat
from pathlib import Path

import pytest

from aimaas.config import Settings
from aimaas.errors import InvalidInput, StorageError
from aimaas.storage import (
    FsspecArtifactStore,
    LocalArtifactStore,
    MemoryMetadataStore,
    SqlMetadataStore,
    open_artifact_store,
    open_metadata_store,
)


def _settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(home=tmp_path / "home", **fields)  # type: ignore[arg-type]


def test_default_is_sqlite_in_home_with_private_directories(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "deep", sqlite_busy_timeout_ms=4321)
    store = open_metadata_store(settings)
    try:
        assert isinstance(store, SqlMetadataStore) and store.dialect == "sqlite"
        assert (settings.home / "aimaas.db").is_file()
        assert stat.S_IMODE(settings.home.stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "deep").stat().st_mode) == 0o700
        store.ping()
    finally:
        store.close()


def test_memory_url(tmp_path: Path) -> None:
    assert isinstance(open_metadata_store(_settings(tmp_path, database_url="memory://")), MemoryMetadataStore)


@pytest.mark.postgres
def test_postgres_url(tmp_path: Path, postgres_url: str) -> None:
    store = open_metadata_store(_settings(tmp_path, database_url=postgres_url))
    try:
        assert isinstance(store, SqlMetadataStore) and store.dialect == "postgresql"
    finally:
        store.close()


def test_unsupported_database_url_is_explained_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        open_metadata_store(_settings(tmp_path, database_url="mysql://root:hunter2@db/aimaas"))
    assert "mysql" in info.value.message and "postgresql+psycopg://" in info.value.message
    assert "hunter2" not in info.value.message and info.value.param == "database_url"


def test_artifact_store_default_and_file_urls(tmp_path: Path) -> None:
    default = open_artifact_store(_settings(tmp_path))
    assert isinstance(default, LocalArtifactStore) and default.root == (tmp_path / "home" / "artifacts").resolve()
    assert stat.S_IMODE(default.root.stat().st_mode) == 0o700
    by_url = open_artifact_store(_settings(tmp_path, storage_url=(tmp_path / "blobs").as_uri()))
    assert isinstance(by_url, LocalArtifactStore) and by_url.root == (tmp_path / "blobs").resolve()
    plain = open_artifact_store(_settings(tmp_path, storage_url=str(tmp_path / "plain")))
    assert isinstance(plain, LocalArtifactStore)


def test_artifact_store_fsspec_urls(tmp_path: Path) -> None:
    store = open_artifact_store(_settings(tmp_path, storage_url="memory://aimaas-factory-test"))
    assert isinstance(store, FsspecArtifactStore)
    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(StorageError, match=r"aimaas\[s3\]"):
            open_artifact_store(_settings(tmp_path, storage_url="s3://bucket/prefix"))
    else:
        assert isinstance(
            open_artifact_store(_settings(tmp_path, storage_url="s3://bucket/prefix")), FsspecArtifactStore
        )
