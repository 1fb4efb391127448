"""``store``: one fixture, every metadata-store backend (SQLite file and in-memory, PostgreSQL, memory).

A contract class that needs more than the store (the jobs suite's second connection) defines its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aimaas.storage import MemoryMetadataStore, MetadataStore
from aimaas.storage.sql import SqlMetadataStore

BACKENDS = ["sqlite-file", "sqlite-memory", pytest.param("postgresql", marks=pytest.mark.postgres), "memory"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    backend = request.param
    if backend == "memory":
        yield MemoryMetadataStore()
        return
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    elif backend == "sqlite-file":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        url = "sqlite://"
    s = SqlMetadataStore(url)
    assert s.dialect == ("postgresql" if backend == "postgresql" else "sqlite")
    yield s
    s.close()
