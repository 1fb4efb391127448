"""FsspecArtifactStore: artifacts on any fsspec filesystem (``s3://bucket/prefix``, ``memory://``, ...)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast

import fsspec

from aimaas.errors import AimaasError, InvalidInput, NotFound, StorageError
from aimaas.storage.artifacts.base import ArtifactStore, StoredArtifact, validate_key

__all__ = ["FsspecArtifactStore"]

_CHUNK = 8 * 1024 * 1024
_TMP_PREFIX = ".tmp-"


@contextmanager
def _fs_errors(action: str, *, missing: str | None = None) -> Iterator[None]:
    """OSError → StorageError; FileNotFoundError → NotFound(``missing``) when a message is given."""
    try:
        yield
    except AimaasError:
        raise
    except FileNotFoundError as error:
        if missing is not None:
            raise NotFound(missing) from None
        raise StorageError(f"could not {action}: {error}") from error
    except (OSError, ValueError) as error:
        raise StorageError(f"could not {action}: {error}") from error


class FsspecArtifactStore(ArtifactStore):
    """ArtifactStore on the fsspec filesystem named by ``url`` (S3 needs ``pip install aimaas[s3]``).

    Writes stream to a temporary key next to the final one (``.tmp-<uuid>-<name>.part``), computing
    sha256 and size on the way, and are then moved onto the key; the temporary key is removed on any
    failure. Object stores such as S3 already make each object appear whole or not at all, so there
    the move only keeps half-written uploads off the final key; on S3 a move is a server-side copy.
    Reads go through ``fs.open``. ``local_path`` is the file path for ``file://`` roots, else None.
    ``storage_options`` are passed to fsspec (credentials normally come from the environment).
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        try:
            fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except ImportError as error:
            raise StorageError(
                f"no fsspec driver for {url.split(':', 1)[0]!r} ({error.name}); "
                "for S3 install it with `pip install aimaas[s3]`"
            ) from None
        except ValueError as error:
            raise InvalidInput(f"unsupported artifact storage URL: {error}", param="storage_url") from None
        self.fs = fs
        self.root = str(root).rstrip("/")
        self.url = url
        protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
        self._is_local = "file" in protocols or "local" in protocols

    def _path(self, key: str) -> str:
        path = f"{self.root}/{validate_key(key)}"
        if self._is_local:
            real, root = os.path.realpath(path), os.path.realpath(self.root or "/")
            if os.path.commonpath([real, root]) != root:
                raise InvalidInput(f"artifact key {key!r} leads outside the store", code="invalid_artifact_key")
        return path

    def _temporary_path(self, path: str) -> str:
        """A fresh temporary key next to ``path``; its parent "directory" exists (for file systems)."""
        parent, _, name = path.rpartition("/")
        self.fs.makedirs(parent, exist_ok=True)
        return f"{parent}/{_TMP_PREFIX}{uuid.uuid4().hex}-{name}.part"

    # -- writing -----------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes) -> StoredArtifact:
        path = self._path(key)
        with _fs_errors(f"write artifact {key!r}"):
            tmp = self._temporary_path(path)
        with _fs_errors(f"write artifact {key!r}"), self._cleanup(tmp):
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, path)
        return StoredArtifact(key, hashlib.sha256(data).hexdigest(), len(data))

    def put_file(self, key: str, source: Path, *, move: bool = False, sha256: str | None = None) -> StoredArtifact:
        path = self._path(key)
        with _fs_errors(f"store artifact {key!r}"):
            tmp = self._temporary_path(path)
        digest, size = hashlib.sha256(), 0
        with _fs_errors(f"store artifact {key!r}"), self._cleanup(tmp):
            with open(source, "rb") as src, self.fs.open(tmp, "wb") as out:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if sha256 is not None and sha256 != digest.hexdigest():
                raise StorageError(
                    f"the bytes for artifact {key!r} do not match their sha256", code="checksum_mismatch"
                )
            self.fs.mv(tmp, path)
        if move:
            Path(source).unlink(missing_ok=True)
        return StoredArtifact(key, digest.hexdigest(), size)

    @contextmanager
    def _cleanup(self, tmp: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            try:
                if self.fs.exists(tmp):
                    self.fs.rm_file(tmp)
            except Exception:  # best effort: the original error matters more
                pass
            raise

    # -- reading and deleting ----------------------------------------------------------------
    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        with _fs_errors(f"open artifact {key!r}", missing=f"artifact {key!r} not found"):
            if not self.fs.isfile(path):
                raise FileNotFoundError(path)
            return cast(BinaryIO, self.fs.open(path, "rb"))

    def exists(self, key: str) -> bool:
        path = self._path(key)
        with _fs_errors(f"check artifact {key!r}"):
            return bool(self.fs.isfile(path))

    def size(self, key: str) -> int:
        path = self._path(key)
        with _fs_errors(f"check artifact {key!r}", missing=f"artifact {key!r} not found"):
            info = self.fs.info(path)
        if info.get("type") == "directory":
            raise NotFound(f"artifact {key!r} not found")
        return int(info["size"])

    def local_path(self, key: str) -> Path | None:
        if not self._is_local:
            return None
        path = self._path(key)
        if not self.fs.isfile(path):
            raise NotFound(f"artifact {key!r} not found")
        return Path(os.path.realpath(path))

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _fs_errors(f"delete artifact {key!r}"):
            try:
                if self.fs.isfile(path):
                    self.fs.rm_file(path)
            except FileNotFoundError:
                pass

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix.rstrip("/"))
        with _fs_errors(f"delete artifacts under {prefix!r}"):
            try:
                if self.fs.isdir(path):
                    self.fs.rm(path, recursive=True)
            except FileNotFoundError:
                pass
