"""The platform's nouns as frozen dataclasses. Stores return these, never ORM rows."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ApiKey",
    "Dataset",
    "DatasetReference",
    "DatasetSplit",
    "DatasetVersion",
    "Principal",
    "Scope",
    "Tenant",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Scope(enum.StrEnum):
    """What a key may do. ``admin`` implies every other scope; ``write`` implies ``read``."""

    ADMIN = "admin"
    WRITE = "write"
    READ = "read"
    PREDICT = "predict"

    @staticmethod
    def grants(held: frozenset[str], needed: Scope) -> bool:
        if Scope.ADMIN in held or needed in held:
            return True
        return needed is Scope.READ and Scope.WRITE in held


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored: only the sha256 of the secret, never the secret itself."""

    id: str
    tenant_id: str
    name: str
    prefix: str  # first characters of the key, shown in listings so users can tell keys apart
    key_hash: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class Dataset:
    id: str
    tenant_id: str
    name: str
    created_at: datetime
    latest_version: int = 0


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable upload of a dataset. ``sha256`` of the stored bytes keys it within the dataset."""

    id: str
    dataset_id: str
    tenant_id: str
    version: int
    format: str  # csv | tsv | jsonl | parquet | text | text_zip | image_zip
    sha256: str
    size_bytes: int
    artifact_key: str
    filename: str  # the client's name for the file: metadata only, never a path
    num_rows: int
    schema: list[dict[str, Any]]  # [{"name", "type", "missing"}]
    stats: dict[str, Any]
    created_at: datetime
    target_suggestion: str | None = None


@dataclass(frozen=True, slots=True)
class DatasetSplit:
    """A deterministic train/validation/test assignment of a version's rows, stored with the version."""

    id: str
    version_id: str
    tenant_id: str
    seed: int
    fractions: tuple[float, float, float]
    stratify_by: str | None
    counts: dict[str, int]
    artifact_key: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DatasetReference:
    """Something (a job, a model version) that uses a dataset; while one exists the dataset can't be deleted."""

    dataset_id: str
    tenant_id: str
    holder_kind: str
    holder_id: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the authenticated key, its tenant, and whether it may manage other tenants."""

    tenant: Tenant
    key: ApiKey
    is_operator: bool = False

    @property
    def tenant_id(self) -> str:
        return self.tenant.id

    def can(self, scope: Scope) -> bool:
        return Scope.grants(self.key.scopes, scope)
