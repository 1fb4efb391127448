"""The MetadataStore contract on every backend: SQLite (file and in-memory), PostgreSQL, memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aimaas.storage import MemoryMetadataStore, MetadataStore
from aimaas.storage.sql import SqlMetadataStore
from aimaas.testing import StoreContract


class TestSqliteFileStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[MetadataStore]:
        s = SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
        yield s
        s.close()


class TestSqliteInMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[MetadataStore]:
        s = SqlMetadataStore("sqlite://")
        yield s
        s.close()


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, postgres_url: str) -> Iterator[MetadataStore]:
        s = SqlMetadataStore(postgres_url)
        assert s.dialect == "postgresql"
        yield s
        s.close()


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[MetadataStore]:
        yield MemoryMetadataStore()
