"""ArtifactContract: the behaviour every :class:`~aimaas.storage.artifacts.base.ArtifactStore` must show.

Subclass it in a test module and give the subclass an ``artifact_store`` fixture yielding a fresh,
empty store. ``stored_files`` lists every object the backend holds (temporary ones included) so the
suite can check that writes leave nothing behind; it knows the bundled backends, override it for others.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from aimaas.errors import InvalidInput, NotFound, StorageError
from aimaas.storage.artifacts import ArtifactStore, FsspecArtifactStore, LocalArtifactStore

__all__ = ["BAD_KEYS", "ArtifactContract"]

BAD_KEYS = ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", ".", "..", "a\\b", "a\x00b", "c:/x"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactContract:
    """``test_*`` methods taking an ``artifact_store`` fixture (a fresh, empty ArtifactStore)."""

    def stored_files(self, store: ArtifactStore) -> set[str]:
        """Every file or object under the store's root, as keys relative to it."""
        if isinstance(store, LocalArtifactStore):
            return {p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if not p.is_dir()}
        if isinstance(store, FsspecArtifactStore):
            root = store.root.strip("/")
            return {str(p).strip("/")[len(root) :].lstrip("/") for p in store.fs.find(store.root)}
        pytest.skip(f"override stored_files() to list the objects of {type(store).__name__}")

    def test_put_bytes_roundtrip(self, artifact_store: ArtifactStore) -> None:
        data = b"a,b\n1,2\n"
        stored = artifact_store.put_bytes("t/1/data.csv", data)
        assert (stored.key, stored.sha256, stored.size_bytes) == ("t/1/data.csv", _sha(data), len(data))
        with artifact_store.open("t/1/data.csv") as fh:
            assert fh.read() == data
        assert artifact_store.exists("t/1/data.csv") and artifact_store.size("t/1/data.csv") == len(data)
        assert b"".join(artifact_store.iter_bytes("t/1/data.csv", chunk_size=3)) == data
        assert not artifact_store.exists("t/1/other.csv") and not artifact_store.exists("t/1")
        assert self.stored_files(artifact_store) == {"t/1/data.csv"}

    def test_put_file_copies_with_checksum(self, artifact_store: ArtifactStore, tmp_path: Path) -> None:
        data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks for every backend
        source = tmp_path / "upload.bin"
        source.write_bytes(data)
        stored = artifact_store.put_file("t/model.onnx", source)
        assert (stored.sha256, stored.size_bytes) == (_sha(data), len(data))
        assert source.read_bytes() == data
        with artifact_store.open("t/model.onnx") as fh:
            assert fh.read() == data
        assert artifact_store.put_file("t/again.onnx", source, sha256=_sha(data)).sha256 == _sha(data)
        assert self.stored_files(artifact_store) == {"t/model.onnx", "t/again.onnx"}

    def test_put_file_move_takes_the_file(self, artifact_store: ArtifactStore, tmp_path: Path) -> None:
        data = b"x" * 100_000
        source = tmp_path / "staged.part"
        source.write_bytes(data)
        stored = artifact_store.put_file("t/d/v1.csv", source, move=True)
        assert (stored.sha256, stored.size_bytes) == (_sha(data), len(data))
        assert not source.exists()
        assert b"".join(artifact_store.iter_bytes("t/d/v1.csv")) == data
        source.write_bytes(data)
        trusted = artifact_store.put_file("t/d/v2.csv", source, move=True, sha256=_sha(data))
        assert trusted.sha256 == _sha(data) and not source.exists()
        assert self.stored_files(artifact_store) == {"t/d/v1.csv", "t/d/v2.csv"}

    def test_checksum_mismatch_stores_nothing(self, artifact_store: ArtifactStore, tmp_path: Path) -> None:
        source = tmp_path / "upload.bin"
        source.write_bytes(b"payload")
        with pytest.raises(StorageError) as info:
            artifact_store.put_file("t/x.bin", source, sha256="0" * 64)
        assert info.value.code == "checksum_mismatch"
        assert not artifact_store.exists("t/x.bin") and source.read_bytes() == b"payload"
        assert self.stored_files(artifact_store) == set()

    def test_put_replaces_atomically(self, artifact_store: ArtifactStore) -> None:
        artifact_store.put_bytes("k/blob", b"old" * 1000)
        reader = artifact_store.open("k/blob")
        try:
            artifact_store.put_bytes("k/blob", b"new")
            with artifact_store.open("k/blob") as fh:
                assert fh.read() == b"new"
        finally:
            reader.close()
        assert self.stored_files(artifact_store) == {"k/blob"}

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_unsafe_keys_are_rejected(self, artifact_store: ArtifactStore, key: str) -> None:
        for call in (
            lambda: artifact_store.put_bytes(key, b"x"),
            lambda: artifact_store.open(key),
            lambda: artifact_store.exists(key),
            lambda: artifact_store.delete(key),
            lambda: artifact_store.delete_prefix(key),
        ):
            with pytest.raises(InvalidInput):
                call()
        assert self.stored_files(artifact_store) == set()

    def test_missing_keys(self, artifact_store: ArtifactStore) -> None:
        with pytest.raises(NotFound):
            artifact_store.open("nope/missing.bin")
        with pytest.raises(NotFound):
            artifact_store.size("nope/missing.bin")
        artifact_store.delete("nope/missing.bin")
        artifact_store.delete_prefix("nope")

    def test_delete(self, artifact_store: ArtifactStore) -> None:
        artifact_store.put_bytes("a/b.bin", b"1")
        artifact_store.delete("a/b.bin")
        artifact_store.delete("a/b.bin")
        assert not artifact_store.exists("a/b.bin")
        with pytest.raises(NotFound):
            artifact_store.open("a/b.bin")

    def test_delete_prefix(self, artifact_store: ArtifactStore) -> None:
        for key in ("t/ds/v1.csv", "t/ds/splits/s1.parquet", "t/ds2/v1.csv", "t/dsx.csv"):
            artifact_store.put_bytes(key, key.encode())
        artifact_store.delete_prefix("t/ds")
        assert self.stored_files(artifact_store) == {"t/ds2/v1.csv", "t/dsx.csv"}
        artifact_store.delete_prefix("t/ds/")

    def test_local_path(self, artifact_store: ArtifactStore) -> None:
        artifact_store.put_bytes("m/weights.safetensors", b"w")
        path = artifact_store.local_path("m/weights.safetensors")
        if path is not None:
            assert path.is_absolute() and path == path.resolve() and path.read_bytes() == b"w"
