"""DatasetService: the data-center use cases (upload, versions, preview, stats, splits, download, delete).

Order of an upload, so that a failure at any step leaves nothing behind:
stream to a staged file (hashing, capped) → identical content already stored? return that version →
detect and validate the format, computing schema and stats in one streaming pass → move the file into
the artifact store under a server-made key → commit the version row → on a failed commit delete the file.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from aimaas.domain import (
    Dataset,
    DatasetReference,
    DatasetSplit,
    DatasetVersion,
    Principal,
    new_id,
    utcnow,
)
from aimaas.domain.jobs import is_terminal
from aimaas.errors import Conflict, InvalidInput, NotFound
from aimaas.services.datasets.formats import detect_format
from aimaas.services.datasets.ingest import IngestLimits, inspect_dataset
from aimaas.services.datasets.preview import read_column, read_preview
from aimaas.services.datasets.split import compute_split, split_counts
from aimaas.services.datasets.staging import StagedUpload
from aimaas.storage.artifacts.base import ArtifactStore
from aimaas.storage.base import MetadataStore

__all__ = ["DatasetService"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_EXTENSIONS = {
    "csv": "csv",
    "tsv": "tsv",
    "jsonl": "jsonl",
    "parquet": "parquet",
    "text": "txt",
    "text_zip": "zip",
    "image_zip": "zip",
}
_PARTS = ("train", "validation", "test")


def check_dataset_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(
            f"invalid dataset name {name[:80]!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            param="name",
        )
    return name


class DatasetService:
    """Owns datasets of every tenant; every call is scoped to the caller's tenant."""

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        *,
        staging_dir: Path,
        max_upload_bytes: int,
        limits: IngestLimits,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._staging_dir = staging_dir
        self._max_upload_bytes = max_upload_bytes
        self._limits = limits

    # -- upload ------------------------------------------------------------------------------
    def stage(self, name: str | None = None) -> StagedUpload:
        """A new staged upload to stream bytes into (use as a context manager).

        Pass the dataset ``name`` to have it checked before any byte is received.
        """
        if name is not None:
            check_dataset_name(name)
        return StagedUpload(self._staging_dir, self._max_upload_bytes)

    def ingest(
        self,
        principal: Principal,
        name: str,
        staged: StagedUpload,
        *,
        filename: str,
        format_hint: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Turn a fully received staged file into a dataset version (or the identical existing one)."""
        check_dataset_name(name)
        sha256 = staged.finish()
        if staged.size == 0:
            raise InvalidInput(
                "the file is empty; upload a file with a header and at least one row", code="empty_file", param="file"
            )
        existing = self._find_identical(principal.tenant_id, name, sha256)
        if existing is not None:
            return existing, False
        fmt = detect_format(staged.path, filename, format_hint)
        result = inspect_dataset(staged.path, fmt, self._limits)
        version_id = new_id("dsv")
        key = f"tenants/{principal.tenant_id}/datasets/{version_id}/data.{_EXTENSIONS[fmt]}"
        stored = self._artifacts.put_file(key, staged.path, move=True, sha256=sha256)
        draft = DatasetVersion(
            id=version_id,
            dataset_id="",
            tenant_id=principal.tenant_id,
            version=0,
            format=fmt,
            sha256=stored.sha256,
            size_bytes=stored.size_bytes,
            artifact_key=key,
            filename=_display_name(filename),
            num_rows=result.num_rows,
            schema=result.schema,
            stats=result.stats,
            created_at=utcnow(),
            target_suggestion=result.target_suggestion,
        )
        try:
            version, created = self._store.add_dataset_version(principal.tenant_id, name, draft)
        except BaseException:
            self._artifacts.delete(key)
            raise
        if not created:  # an identical upload won a race with us
            self._artifacts.delete(key)
        return version, created

    def ingest_file(
        self, principal: Principal, name: str, path: Path, *, format_hint: str | None = None
    ) -> tuple[DatasetVersion, bool]:
        """Upload a local file (used by the demo seeding and by in-process callers)."""
        with self.stage() as staged, path.open("rb") as src:
            while chunk := src.read(1024 * 1024):
                staged.write(chunk)
            return self.ingest(principal, name, staged, filename=path.name, format_hint=format_hint)

    # -- reading -----------------------------------------------------------------------------
    def list_datasets(self, principal: Principal, *, limit: int, after: str | None) -> list[Dataset]:
        return self._store.list_datasets(principal.tenant_id, limit=limit, after=after)

    def get(self, principal: Principal, name: str) -> tuple[Dataset, list[DatasetVersion]]:
        dataset = self._store.get_dataset(principal.tenant_id, name)
        return dataset, self._store.list_dataset_versions(principal.tenant_id, name)

    def versions(self, principal: Principal, name: str) -> list[DatasetVersion]:
        return self._store.list_dataset_versions(principal.tenant_id, name)

    def version(self, principal: Principal, name: str, version: int | None) -> DatasetVersion:
        return self._store.get_dataset_version(principal.tenant_id, name, version)

    def preview(
        self, principal: Principal, name: str, version: int | None, *, offset: int, limit: int
    ) -> tuple[DatasetVersion, list[str], list[dict]]:
        if offset < 0 or not 1 <= limit <= 1000:
            raise InvalidInput("offset must be ≥ 0 and limit between 1 and 1000", param="limit")
        ver = self.version(principal, name, version)
        with self._local_copy(ver.artifact_key) as path:
            columns, rows = read_preview(path, ver.format, offset, limit)
        return ver, columns, rows

    def open_download(
        self, principal: Principal, name: str, version: int | None
    ) -> tuple[DatasetVersion, Iterator[bytes]]:
        ver = self.version(principal, name, version)
        return ver, self._artifacts.iter_bytes(ver.artifact_key)

    def download_filename(self, ver: DatasetVersion, dataset: str) -> str:
        return f"{dataset}-v{ver.version}.{_EXTENSIONS[ver.format]}"

    # -- splits ------------------------------------------------------------------------------
    def split(
        self,
        principal: Principal,
        name: str,
        version: int | None,
        *,
        fractions: tuple[float, float, float],
        seed: int,
        stratify_by: str | None,
    ) -> tuple[DatasetVersion, DatasetSplit, bool]:
        ver = self.version(principal, name, version)
        for existing in self._store.list_dataset_splits(principal.tenant_id, ver.id):
            if (existing.seed, existing.fractions, existing.stratify_by) == (seed, fractions, stratify_by):
                return ver, existing, False
        labels = None
        if stratify_by is not None:
            if stratify_by not in {c["name"] for c in ver.schema}:
                raise InvalidInput(
                    f"stratify_by: no column {stratify_by!r} in {name} v{ver.version}; columns are "
                    + ", ".join(c["name"] for c in ver.schema),
                    param="stratify_by",
                )
            with self._local_copy(ver.artifact_key) as path:
                labels = read_column(path, ver.format, stratify_by)
        assignment = compute_split(ver.num_rows, fractions, seed, labels)
        split_id = new_id("spl")
        key = f"tenants/{principal.tenant_id}/datasets/{ver.id}/splits/{split_id}.npy"
        buf = io.BytesIO()
        np.save(buf, assignment.astype(np.int8), allow_pickle=False)
        self._artifacts.put_bytes(key, buf.getvalue())
        draft = DatasetSplit(
            id=split_id,
            version_id=ver.id,
            tenant_id=principal.tenant_id,
            seed=seed,
            fractions=fractions,
            stratify_by=stratify_by,
            counts=split_counts(assignment),
            artifact_key=key,
            created_at=utcnow(),
        )
        try:
            split, created = self._store.add_dataset_split(draft)
        except BaseException:
            self._artifacts.delete(key)
            raise
        if not created:
            self._artifacts.delete(key)
        return ver, split, created

    def splits(self, principal: Principal, name: str, version: int | None) -> tuple[DatasetVersion, list[DatasetSplit]]:
        ver = self.version(principal, name, version)
        return ver, self._store.list_dataset_splits(principal.tenant_id, ver.id)

    def split_assignment(self, principal: Principal, name: str, version: int | None, split_id: str) -> np.ndarray:
        """The split as an int8 array (0 train, 1 validation, 2 test), one entry per row."""
        _, splits = self.splits(principal, name, version)
        for split in splits:
            if split.id == split_id:
                with self._artifacts.open(split.artifact_key) as fh:
                    return np.load(io.BytesIO(fh.read()), allow_pickle=False)
        raise NotFound(f"split {split_id!r} not found for dataset {name!r}", param="split_id")

    def split_csv(self, principal: Principal, name: str, version: int | None, split_id: str) -> Iterator[bytes]:
        assignment = self.split_assignment(principal, name, version, split_id)
        return _split_csv_chunks(assignment)

    # -- deletion and references -------------------------------------------------------------
    def delete(self, principal: Principal, name: str) -> None:
        dataset = self._store.get_dataset(principal.tenant_id, name)
        refs = [r for r in self._store.list_dataset_references(principal.tenant_id, dataset.id)
                if not self._stale(r)]
        if refs:
            holders = ", ".join(f"{r.holder_kind} {r.holder_id}" for r in refs[:5])
            raise Conflict(
                f"dataset {name!r} is used by {holders}; delete those first", code="dataset_in_use", param="name"
            )
        keys = self._store.delete_dataset(principal.tenant_id, name)
        for key in keys:  # rows are gone first: no row ever points at a missing file
            self._artifacts.delete(key)

    def add_reference(self, principal: Principal, name: str, holder_kind: str, holder_id: str) -> None:
        dataset = self._store.get_dataset(principal.tenant_id, name)
        self._store.add_dataset_reference(
            DatasetReference(
                dataset_id=dataset.id, tenant_id=principal.tenant_id, holder_kind=holder_kind, holder_id=holder_id
            )
        )

    def remove_reference(self, principal: Principal, name: str, holder_kind: str, holder_id: str) -> None:
        dataset = self._store.get_dataset(principal.tenant_id, name)
        self._store.remove_dataset_reference(principal.tenant_id, dataset.id, holder_kind, holder_id)

    def _stale(self, ref: DatasetReference) -> bool:
        """A job's reference outlives the job when the job ended without its finisher (a failure, a server
        that died): such a reference is removed here rather than blocking the delete forever."""
        if ref.holder_kind != "job":
            return False
        try:
            job = self._store.get_job(ref.tenant_id, ref.holder_id)
        except NotFound:
            job = None
        if job is not None and not is_terminal(job.state):
            return False
        self._store.remove_dataset_reference(ref.tenant_id, ref.dataset_id, ref.holder_kind, ref.holder_id)
        return True

    def release(self, tenant_id: str, dataset_id: str, holder_kind: str, holder_id: str) -> None:
        """Forget a reference by dataset id (idempotent; used by the job loop, which has no principal)."""
        self._store.remove_dataset_reference(tenant_id, dataset_id, holder_kind, holder_id)

    # -- helpers -----------------------------------------------------------------------------
    def _find_identical(self, tenant_id: str, name: str, sha256: str) -> DatasetVersion | None:
        try:
            versions = self._store.list_dataset_versions(tenant_id, name)
        except NotFound:
            return None
        return next((v for v in versions if v.sha256 == sha256), None)

    @contextmanager
    def _local_copy(self, key: str) -> Iterator[Path]:
        local = self._artifacts.local_path(key)
        if local is not None:
            yield local
            return
        self._staging_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self._staging_dir / f"read-{new_id('tmp')}"
        try:
            with self._artifacts.open(key) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            yield target
        finally:
            target.unlink(missing_ok=True)


def _display_name(filename: str) -> str:
    """The client's file name reduced to a harmless label (it is never used as a path)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable())[:200]
    return cleaned or "upload"


def _split_csv_chunks(assignment: np.ndarray, rows_per_chunk: int = 65536) -> Iterator[bytes]:
    yield b"row,part\n"
    names = np.array(_PARTS)
    for start in range(0, len(assignment), rows_per_chunk):
        part = assignment[start : start + rows_per_chunk]
        rows = np.arange(start, start + len(part))
        lines = [f"{r},{p}" for r, p in zip(rows.tolist(), names[part].tolist(), strict=True)]
        yield ("\n".join(lines) + "\n").encode()
