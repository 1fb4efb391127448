"""Artifact stores: immutable blobs by key, on a local directory or any fsspec filesystem."""

from __future__ import annotations

from aimaas.storage.artifacts.base import ArtifactStore, StoredArtifact, validate_key
from aimaas.storage.artifacts.fsspec_store import FsspecArtifactStore
from aimaas.storage.artifacts.local import LocalArtifactStore

__all__ = ["ArtifactStore", "FsspecArtifactStore", "LocalArtifactStore", "StoredArtifact", "validate_key"]
