"""RegistryService: the model registry's use cases (versions, aliases, cards, reports, plots, files, compare,
import), every call scoped to the caller's tenant.

A version's files live beside its model artifact. Trained versions record where in
``lineage["outputs"]`` (``report``, ``files`` name → key, ``plots`` name → key); the public view lists the
names only. Versions are immutable: there is no way to change a version's files or metrics, only its status
and the aliases pointing at it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimaas.domain import ModelAlias, ModelRef, ModelVersion, Principal, RegisteredModel, new_id, parse_model_ref
from aimaas.domain.registry import check_model_name
from aimaas.errors import InvalidInput, NotFound
from aimaas.services.datasets.staging import StagedUpload
from aimaas.storage.artifacts.base import ArtifactStore
from aimaas.storage.base import MetadataStore

__all__ = ["MAX_COMPARE", "ModelFile", "RegistryService", "version_selector"]

MAX_COMPARE = 10
_PLOT = re.compile(r"^[a-z0-9_]{1,64}$")
_EXTENSIONS = {"onnx": "onnx", "gguf": "gguf", "safetensors": "zip"}
_MEDIA = {"onnx": "application/octet-stream", "gguf": "application/octet-stream", "safetensors": "application/zip"}


@dataclass(frozen=True)
class ModelFile:
    """A file to send: its chunks, the name to offer, its media type and size."""

    chunks: Iterator[bytes]
    filename: str
    media_type: str
    size_bytes: int


def version_selector(name: str, selector: str | int | None) -> ModelRef:
    """``(name, "3" | "prod" | "latest" | None)`` as a :class:`ModelRef` (InvalidInput for a bad selector)."""
    check_model_name(name)
    if selector is None or selector == "latest":
        return ModelRef(name)
    text = str(selector)
    return parse_model_ref(f"{name}/{text}" if text.isdigit() else f"{name}@{text}", param="version")


def outputs(version: ModelVersion) -> dict[str, Any]:
    """``lineage["outputs"]``: where a trained version's report, extra files and plots are stored."""
    value = version.lineage.get("outputs")
    return value if isinstance(value, dict) else {}


class RegistryService:
    """Owns registered models of every tenant; see the module docstring."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, *, staging_dir: Path,
                 max_upload_bytes: int, archive_limits: dict[str, Any] | None = None) -> None:
        self._store = store
        self._artifacts = artifacts
        self._staging_dir = staging_dir
        self._max_upload_bytes = max_upload_bytes
        #: ``max_entries``, ``max_bytes``, ``max_ratio`` for zipped Hugging Face directories.
        self._archive_limits = dict(archive_limits or {})

    def stage(self, name: str) -> StagedUpload:
        """A staged upload for an import into model ``name`` (the name is checked before any byte arrives)."""
        check_model_name(name)
        return StagedUpload(self._staging_dir, self._max_upload_bytes)

    # -- reading -----------------------------------------------------------------------------
    def list_models(self, principal: Principal, *, limit: int, after: str | None) -> list[RegisteredModel]:
        return self._store.list_models(principal.tenant_id, limit=limit, after=after)

    def get(self, principal: Principal, name: str) -> tuple[RegisteredModel, list[ModelVersion], list[ModelAlias]]:
        model = self._store.get_model(principal.tenant_id, name)
        return (model, self._store.list_model_versions(principal.tenant_id, name),
                self._store.list_model_aliases(principal.tenant_id, name))

    def latest_number(self, tenant_id: str, name: str) -> int:
        """The model's highest version number, 0 when the model does not exist yet."""
        try:
            return self._store.get_model(tenant_id, name).latest_version
        except NotFound:
            return 0

    def aliases(self, principal: Principal, name: str) -> list[ModelAlias]:
        return self._store.list_model_aliases(principal.tenant_id, name)

    def version(self, principal: Principal, name: str, selector: str | int | None = None) -> ModelVersion:
        """A version by number, alias or ``latest``."""
        return self._store.resolve_model_ref(principal.tenant_id, version_selector(name, selector))

    def resolve(self, principal: Principal, ref: str, *, param: str = "model") -> ModelVersion:
        """A version by one-string ref: ``name``, ``name/3`` or ``name@alias``."""
        return self._store.resolve_model_ref(principal.tenant_id, parse_model_ref(ref, param=param))

    def card(self, principal: Principal, name: str, selector: str | int | None) -> str:
        return self.version(principal, name, selector).card_markdown

    def report(self, principal: Principal, name: str, selector: str | int | None) -> dict[str, Any]:
        """The stored evaluation report (``{}`` for an imported model, which has none)."""
        return self.read_json(outputs(self.version(principal, name, selector)).get("report"))

    def read_json(self, key: Any) -> dict[str, Any]:
        """A JSON object stored at ``key`` (``{}`` when ``key`` is not a string)."""
        if not isinstance(key, str):
            return {}
        with self._artifacts.open(key) as fh:
            data = json.loads(fh.read())
        return data if isinstance(data, dict) else {}

    def plot(self, principal: Principal, name: str, selector: str | int | None, plot: str) -> bytes:
        version = self.version(principal, name, selector)
        plots = outputs(version).get("plots") or {}
        if not _PLOT.match(plot) or plot not in plots:
            known = ", ".join(sorted(plots)) or "none"
            raise NotFound(f"version {version.version} of {name!r} has no plot {plot[:64]!r}; plots: {known}",
                           param="plot")
        with self._artifacts.open(plots[plot]) as fh:
            return fh.read()

    def open_file(self, principal: Principal, name: str, selector: str | int | None,
                  file: str | None = None) -> ModelFile:
        """The model artifact (``file`` None) or one of the version's extra files, to stream."""
        version = self.version(principal, name, selector)
        if file is None:
            key, filename = version.artifact_key, f"{name}-v{version.version}.{_EXTENSIONS[version.format]}"
            media = _MEDIA[version.format]
        else:
            files = outputs(version).get("files") or {}
            if file not in files:
                known = ", ".join(sorted(files)) or "none"
                raise NotFound(f"version {version.version} of {name!r} has no file {file[:80]!r}; files: {known}",
                               param="file")
            key, filename, media = files[file], file, "application/octet-stream"
        return ModelFile(self._artifacts.iter_bytes(key), filename, media, self._artifacts.size(key))

    def compare(self, principal: Principal, refs: list[str]) -> tuple[list[ModelVersion], dict[str, list[float | None]],
                                                                      bool, list[str]]:
        """Versions side by side: ``(versions, metric → values, same test split?, notes)``."""
        if not 2 <= len(refs) <= MAX_COMPARE:
            raise InvalidInput(f"compare takes 2 to {MAX_COMPARE} model refs; got {len(refs)}", param="ref")
        versions = [self.resolve(principal, ref, param="ref") for ref in refs]
        names = sorted({k for v in versions for k, value in v.metrics.items() if _scalar(value)})
        table = {k: [float(v.metrics[k]) if _scalar(v.metrics.get(k)) else None for v in versions] for k in names}
        splits = {(v.lineage.get("dataset_version_id"), v.lineage.get("split_id")) for v in versions}
        same = len(splits) == 1 and None not in next(iter(splits))
        notes = [] if same else ["the versions were not all tested on the same dataset version and split, so "
                                 "their metrics are not directly comparable"]
        tasks = {v.task for v in versions}
        if len(tasks) > 1:
            notes.append(f"the versions do different tasks: {', '.join(sorted(tasks))}")
        return versions, table, same, notes

    # -- changing ----------------------------------------------------------------------------
    def register(self, tenant_id: str, name: str, draft: ModelVersion, *,
                 description: str | None = None) -> ModelVersion:
        """Record a version whose artifact (and files) are already stored (see ``add_model_version``)."""
        check_model_name(name)
        return self._store.add_model_version(tenant_id, name, draft, description)

    def set_alias(self, principal: Principal, name: str, alias: str, version: int) -> ModelAlias:
        return self._store.set_model_alias(principal.tenant_id, name, alias, version)

    def delete_alias(self, principal: Principal, name: str, alias: str) -> None:
        self._store.delete_model_alias(principal.tenant_id, name, alias)

    def set_status(self, principal: Principal, name: str, selector: str | int | None, status: str) -> ModelVersion:
        version = self.version(principal, name, selector)
        return self._store.set_model_version_status(principal.tenant_id, name, version.version, status)

    def delete(self, principal: Principal, name: str) -> None:
        """Delete the model, its versions and aliases, then their files (rows first: no row points at a gap)."""
        versions = self._store.list_model_versions(principal.tenant_id, name)
        keys = self._store.delete_model(principal.tenant_id, name)
        for version in versions:
            out = outputs(version)
            for key in [out.get("report"), *dict(out.get("files") or {}).values(),
                        *dict(out.get("plots") or {}).values()]:
                if isinstance(key, str):
                    self._artifacts.delete(key)
        for key in keys:
            self._artifacts.delete(key)

    def import_model(self, principal: Principal, name: str, staged: StagedUpload, filename: str, *,
                     task: str | None = None, description: str | None = None) -> ModelVersion:
        """Register an uploaded ONNX file, GGUF file or zipped Hugging Face directory (checked first; refused
        formats such as pickle raise InvalidInput). The staged file is moved into the artifact store."""
        from aimaas.services.model_imports.isolated import inspect_isolated, repack_hf_zip

        check_model_name(name)
        if staged.size == 0:
            raise InvalidInput("the upload is empty; send the model file as the request body", param="file")
        staged.finish()
        path = staged.path
        imported = inspect_isolated(path, filename, task=task, limits=self._archive_limits)
        if imported.format == "safetensors":  # keep only what the check read
            packed = path.with_name(path.name + ".zip")
            try:
                repack_hf_zip(path, packed, str(imported.info.get("root") or ""),
                              [str(f["name"]) for f in imported.info.get("files", [])])
                packed.replace(path)
            finally:
                packed.unlink(missing_ok=True)
        version_id = new_id("mv")
        key = f"tenants/{principal.tenant_id}/models/{name}/imports/{version_id}/model.{_EXTENSIONS[imported.format]}"
        stored = self._artifacts.put_file(key, path, move=True)
        draft = ModelVersion(
            id=version_id, model_id="", tenant_id=principal.tenant_id, version=0, status="ready",
            task=imported.task, format=imported.format, artifact_key=stored.key, sha256=stored.sha256,
            size_bytes=stored.size_bytes, signature=imported.signature, metrics={}, params={},
            lineage={"source": "import", "filename": filename[:200], "info": imported.info,
                     "notes": list(imported.notes)},
            card_markdown=_import_card(name, filename, imported.format, imported.task, imported.info),
        )
        try:
            return self._store.add_model_version(principal.tenant_id, name, draft, description)
        except BaseException:
            self._artifacts.delete(stored.key)
            raise


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _import_card(name: str, filename: str, fmt: str, task: str, info: dict[str, Any]) -> str:
    facts = "\n".join(f"| {k} | {str(v)[:120].replace('|', '/')} |" for k, v in sorted(info.items())
                      if not isinstance(v, dict | list))
    return (f"# {name}\n\nImported from `{filename[:200]}` ({fmt}); task: {task}.\n\n"
            "This model was not trained or evaluated by aimaas: no metrics, data or lineage are known beyond what "
            "the file declares.\n\n| fact | value |\n|---|---|\n" + facts + "\n")
