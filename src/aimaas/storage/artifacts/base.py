"""ArtifactStore: immutable blobs (uploaded datasets, splits, model files) addressed by a key.

Contract (every backend passes ``aimaas.testing.artifact_contract``):

* Keys are relative POSIX paths made by the server (``tenants/<id>/datasets/<id>/<sha256>.csv``); a key
  that is absolute, contains ``..``, a backslash, a NUL or an empty segment raises InvalidInput.
* ``put_file`` copies a local file in *atomically*: the blob appears under its key complete or not at
  all (temporary name, fsync, rename where the backend can). It returns the sha256 and size of what
  was written, and an existing key is replaced atomically.
* ``open`` returns a binary file object for reading; ``local_path`` returns a local filesystem path
  when the backend has one (used by readers like pyarrow), else None.
* ``delete`` of a missing key is not an error.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from aimaas.errors import InvalidInput

__all__ = ["ArtifactStore", "StoredArtifact", "validate_key"]


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    key: str
    sha256: str
    size_bytes: int


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise InvalidInput."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key or ":" in key:
        raise InvalidInput(f"invalid artifact key {key!r}", code="invalid_artifact_key")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"invalid artifact key {key!r}", code="invalid_artifact_key")
    return key


class ArtifactStore(abc.ABC):
    """Abstract blob store; see the module docstring for the contract."""

    url: str

    @abc.abstractmethod
    def put_file(self, key: str, source: Path, *, move: bool = False, sha256: str | None = None) -> StoredArtifact:
        """Store the local file ``source`` under ``key`` atomically.

        ``move=True`` lets the store take the file instead of copying it (a rename when ``source`` is on
        the same filesystem); after a successful move ``source`` no longer exists. ``sha256`` is the
        digest the caller already computed while receiving the bytes: a store that copies verifies it
        (StorageError with code ``checksum_mismatch`` and nothing stored when it differs); a store that
        renames trusts it instead of re-reading the file.
        """

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> StoredArtifact: ...

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """NotFound if the key is missing."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None: ...

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under ``prefix/`` (used when a tenant's dataset goes)."""

    def local_path(self, key: str) -> Path | None:
        """A local path for readers that need one, or None if the backend is remote."""
        return None

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        with self.open(key) as fh:
            while chunk := fh.read(chunk_size):
                yield chunk
