"""LocalArtifactStore: artifacts as files under one root directory (the embedded default)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from aimaas.errors import AimaasError, InvalidInput, NotFound, StorageError
from aimaas.storage.artifacts.base import ArtifactStore, StoredArtifact, validate_key

__all__ = ["LocalArtifactStore"]

_CHUNK = 4 * 1024 * 1024
_TMP_PREFIX = ".tmp-"


@contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """Turn OSError into StorageError (AimaasError passes through)."""
    try:
        yield
    except AimaasError:
        raise
    except OSError as error:
        raise StorageError(f"could not {action}: {error.strerror or error}") from error


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checksum_mismatch(key: str) -> StorageError:
    return StorageError(f"the bytes for artifact {key!r} do not match their sha256", code="checksum_mismatch")


class LocalArtifactStore(ArtifactStore):
    """ArtifactStore on a local directory.

    Contract beyond :class:`ArtifactStore`: every path is resolved (links included) and must stay inside
    ``root``; directories are created 0700 and files 0600; writes go to a temporary name in the target
    directory, are fsynced, renamed over the key with ``os.replace`` and the directory is fsynced, so a
    crash leaves either the old blob or the new one. ``put_file(move=True)`` renames a file that is
    already on the same filesystem (falling back to a copy across filesystems) so large uploads staged
    on the same disk are stored without copying. ``local_path`` returns the real path of a key.
    """

    def __init__(self, root: Path) -> None:
        root = Path(root).expanduser()
        with _os_errors(f"create the artifact directory {root}"):
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root = root.resolve()
        self.url = str(self.root)

    # -- paths -------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        validate_key(key)
        path = (self.root / key).resolve()
        if path == self.root or not path.is_relative_to(self.root):
            raise InvalidInput(f"artifact key {key!r} leads outside the store", code="invalid_artifact_key")
        return path

    def _target(self, key: str) -> Path:
        """The path for writing ``key``, with its parent directories created 0700."""
        path = self._path(key)
        with _os_errors(f"create directories for {key!r}"):
            missing = []
            parent = path.parent
            while not parent.exists():
                missing.append(parent)
                parent = parent.parent
            for directory in reversed(missing):
                directory.mkdir(mode=0o700, exist_ok=True)
        return self._path(key)  # checked again now that the directories exist

    # -- writing -----------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes) -> StoredArtifact:
        dest = self._target(key)
        with _os_errors(f"write artifact {key!r}"), self._temporary(dest) as (out, tmp):
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
            out.close()
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
        return StoredArtifact(key, hashlib.sha256(data).hexdigest(), len(data))

    def put_file(self, key: str, source: Path, *, move: bool = False, sha256: str | None = None) -> StoredArtifact:
        dest = self._target(key)
        source = Path(source)
        with _os_errors(f"read {source.name!r}"):
            if not stat.S_ISREG(os.lstat(source).st_mode):
                raise InvalidInput(f"{source.name!r} is not a regular file", code="invalid_artifact_source")
        if move:
            moved = self._move_in(key, source, dest, sha256)
            if moved is not None:
                return moved
        stored = self._copy_in(key, source, dest, sha256)
        if move:
            with _os_errors(f"remove {source.name!r} after copying it"):
                source.unlink()
        return stored

    def _move_in(self, key: str, source: Path, dest: Path, sha256: str | None) -> StoredArtifact | None:
        """Rename ``source`` onto ``dest``; None when they are on different filesystems."""
        with _os_errors(f"move {source.name!r} into the store"):
            fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                os.fsync(fd)
                size = os.fstat(fd).st_size
                if sha256 is None:
                    digest = hashlib.sha256()
                    with os.fdopen(os.dup(fd), "rb") as fh:
                        while chunk := fh.read(_CHUNK):
                            digest.update(chunk)
                    sha256 = digest.hexdigest()
            finally:
                os.close(fd)
            os.chmod(source, 0o600)
            try:
                os.replace(source, dest)
            except OSError as error:
                if error.errno == errno.EXDEV:
                    return None
                raise
            _fsync_dir(dest.parent)
        return StoredArtifact(key, sha256, size)

    def _copy_in(self, key: str, source: Path, dest: Path, sha256: str | None) -> StoredArtifact:
        digest, size = hashlib.sha256(), 0
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        with _os_errors(f"store artifact {key!r}"), self._temporary(dest) as (out, tmp):
            with open(source, "rb") as src:
                while n := src.readinto(buffer):
                    digest.update(view[:n])
                    out.write(view[:n])
                    size += n
            out.flush()
            os.fsync(out.fileno())
            out.close()
            if sha256 is not None and sha256 != digest.hexdigest():
                raise _checksum_mismatch(key)
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
        return StoredArtifact(key, digest.hexdigest(), size)

    @contextmanager
    def _temporary(self, dest: Path) -> Iterator[tuple[BinaryIO, Path]]:
        """A 0600 temporary file next to ``dest``, removed unless it was renamed into place."""
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".part", dir=dest.parent)
        tmp = Path(name)
        out = os.fdopen(fd, "wb")
        try:
            yield out, tmp
        finally:
            out.close()
            tmp.unlink(missing_ok=True)

    # -- reading and deleting ----------------------------------------------------------------
    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"artifact {key!r} not found") from None
        except OSError as error:
            raise StorageError(f"could not open artifact {key!r}: {error.strerror or error}") from error

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"artifact {key!r} not found")
        return path.stat().st_size

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"artifact {key!r} not found")
        return path

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _os_errors(f"delete artifact {key!r}"):
            try:
                path.unlink(missing_ok=True)
            except (IsADirectoryError, NotADirectoryError):
                return
            except PermissionError:
                if path.is_dir():  # some platforms answer EPERM for unlink(directory)
                    return
                raise

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix.rstrip("/"))
        with _os_errors(f"delete artifacts under {prefix!r}"):
            if path.is_dir():
                shutil.rmtree(path)
