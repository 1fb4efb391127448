"""Receiving an upload: stream it to a server-named file on local disk, hashing and capping as it comes.

The staged file lives in ``Settings.staging_dir`` (same disk as a local artifact store, so the final
step is a rename, not a copy). Whatever happens, :meth:`StagedUpload.discard` leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from types import TracebackType

from aimaas.errors import PayloadTooLarge

__all__ = ["StagedUpload"]


class StagedUpload:
    """A file being received. ``write`` raises PayloadTooLarge (and deletes the file) past ``max_bytes``."""

    def __init__(self, staging_dir: Path, max_bytes: int) -> None:
        staging_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = staging_dir / f"upload-{secrets.token_hex(12)}"
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._fh = os.fdopen(fd, "wb", buffering=1024 * 1024)
        self._closed = False

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.discard()
            raise PayloadTooLarge(
                f"upload exceeds the {self.max_bytes:,}-byte limit (AIMAAS_MAX_UPLOAD_BYTES); "
                "split the file or ask the operator to raise the limit",
                param="file",
            )
        self._hash.update(chunk)
        self._fh.write(chunk)

    def finish(self) -> str:
        """Flush and close the file; return its sha256."""
        if not self._closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._closed = True
        return self._hash.hexdigest()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        if not self._closed:
            self._fh.close()
            self._closed = True
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> StagedUpload:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # The service moves the file away on success; anything still here is garbage.
        self.discard()
