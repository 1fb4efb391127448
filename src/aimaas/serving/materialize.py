"""Materializer: a model version's artifact as local files a runtime can load.

ONNX and GGUF files are used in place when the artifact store is local, else copied once into the cache; a
zipped Hugging Face directory is extracted once into ``<cache>/<sha256>/`` (to a temporary name, then renamed,
so a crash never leaves a half-extracted model that looks complete). The sha256 recorded at registration is
checked on the way.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from pathlib import Path

from aimaas.domain import ModelVersion
from aimaas.errors import StorageError
from aimaas.serving.runtime import ModelSource
from aimaas.storage.artifacts.base import ArtifactStore

__all__ = ["Materializer"]

_CHUNK = 1024 * 1024


class Materializer:
    """Turns registry versions into :class:`ModelSource` s under ``cache_dir``."""

    def __init__(self, artifacts: ArtifactStore, cache_dir: Path) -> None:
        self._artifacts = artifacts
        self._cache = cache_dir

    def source(self, version: ModelVersion, model_name: str) -> ModelSource:
        info = version.lineage.get("info") if isinstance(version.lineage.get("info"), dict) else {}
        path = self._extracted(version) if version.format == "safetensors" else self._file(version)
        return ModelSource(path=path, format=version.format, task=version.task, signature=dict(version.signature),
                           info=dict(info or {}), model=model_name, version=version.version)

    def _file(self, version: ModelVersion) -> Path:
        local = self._artifacts.local_path(version.artifact_key)
        if local is not None:
            return local
        target = self._cache / f"{version.sha256}.{version.format}"
        if not target.exists():
            self._download(version, target)
        return target

    def _extracted(self, version: ModelVersion) -> Path:
        target = self._cache / version.sha256
        if target.is_dir():
            return target
        self._cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        archive = self._file(version)
        work = Path(tempfile.mkdtemp(dir=self._cache, prefix=".extract-"))
        try:
            with zipfile.ZipFile(archive) as zf:
                for member in zf.infolist():  # names were checked at import; check again, cheaply
                    name = member.filename
                    if name.startswith("/") or ".." in Path(name).parts or member.is_dir():
                        continue
                    dest = work / name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, dest.open("wb") as out:
                        shutil.copyfileobj(src, out, _CHUNK)
            work.replace(target)
        except FileExistsError:  # another replica extracted it first
            shutil.rmtree(work, ignore_errors=True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return target

    def _download(self, version: ModelVersion, target: Path) -> None:
        self._cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self._cache, prefix=".download-")
        try:
            with open(fd, "wb") as out:
                for chunk in self._artifacts.iter_bytes(version.artifact_key):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != version.sha256:
                raise StorageError(f"model artifact {version.artifact_key} does not match its recorded sha256")
            Path(tmp).replace(target)
        finally:
            Path(tmp).unlink(missing_ok=True)
