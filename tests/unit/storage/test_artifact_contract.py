"""The ArtifactStore contract on the local store and on fsspec (memory:// and file://)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimaas.storage.artifacts import ArtifactStore, FsspecArtifactStore, LocalArtifactStore
from aimaas.testing import ArtifactContract


class TestLocalArtifactStore(ArtifactContract):
    @pytest.fixture
    def artifact_store(self, tmp_path: Path) -> ArtifactStore:
        return LocalArtifactStore(tmp_path / "artifacts")


class TestFsspecMemoryArtifactStore(ArtifactContract):
    @pytest.fixture
    def artifact_store(self) -> Iterator[ArtifactStore]:
        store = FsspecArtifactStore(f"memory://aimaas-test-{uuid.uuid4().hex}")
        yield store
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)


class TestFsspecFileArtifactStore(ArtifactContract):
    @pytest.fixture
    def artifact_store(self, tmp_path: Path) -> ArtifactStore:
        root = tmp_path / "fsspec-root"
        root.mkdir()
        return FsspecArtifactStore(root.as_uri())
