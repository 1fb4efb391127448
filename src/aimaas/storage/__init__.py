"""Persistence behind two interfaces, chosen by URL.

* :class:`MetadataStore` (rows): ``sqlite:///path`` (default, a file in ``AIMAAS_HOME``),
  ``postgresql+psycopg://user@host/db`` or ``memory://`` (tests), via :func:`open_metadata_store`.
* :class:`ArtifactStore` (blobs): a local directory (default), ``file://`` or any fsspec URL such as
  ``s3://bucket/prefix``, via :func:`open_artifact_store`.

The SQL backend is loaded lazily (by name, through importlib), so importing this package for its
interfaces pulls in neither SQLAlchemy nor Alembic.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from aimaas.config import Settings
from aimaas.errors import InvalidInput
from aimaas.storage.artifacts import (
    ArtifactStore,
    FsspecArtifactStore,
    LocalArtifactStore,
    StoredArtifact,
)
from aimaas.storage.base import MetadataStore
from aimaas.storage.memory import MemoryMetadataStore

if TYPE_CHECKING:
    from aimaas.storage.sql import SqlMetadataStore

__all__ = [
    "ArtifactStore",
    "FsspecArtifactStore",
    "LocalArtifactStore",
    "MemoryMetadataStore",
    "MetadataStore",
    "SqlMetadataStore",
    "StoredArtifact",
    "open_artifact_store",
    "open_metadata_store",
]

_SQL_MODULE = "aimaas.storage.sql"


def __getattr__(name: str) -> Any:
    if name == "SqlMetadataStore":
        return importlib.import_module(_SQL_MODULE).SqlMetadataStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower() if ":" in url else ""


def open_metadata_store(settings: Settings) -> MetadataStore:
    """The metadata store for ``settings.resolved_database_url`` (see the module docstring).

    For SQLite the database file's directory is created (mode 0700) first. Anything other than
    ``sqlite:``, ``postgresql:`` (``postgres:``) or ``memory://`` raises InvalidInput.
    """
    url = settings.resolved_database_url
    scheme = _scheme(url)
    driver = scheme.split("+", 1)[0]
    if url.strip().lower() in ("memory://", "memory:"):
        return MemoryMetadataStore()
    if driver == "sqlite":
        _make_sqlite_parent(url)
    elif driver not in ("postgresql", "postgres"):
        raise InvalidInput(
            f"AIMAAS_DATABASE_URL has an unsupported scheme {scheme!r}; use sqlite:///PATH, "
            "postgresql+psycopg://USER@HOST:5432/DB or memory://",
            param="database_url",
        )
    store_class: type[SqlMetadataStore] = importlib.import_module(_SQL_MODULE).SqlMetadataStore
    return store_class(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)


def _make_sqlite_parent(url: str) -> None:
    """Create the directory of a file-backed SQLite URL (``sqlite:///rel`` or ``sqlite:////abs``), 0700."""
    _, sep, rest = url.partition(":///")
    path = unquote(rest.split("?", 1)[0]) if sep else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    parent = Path(path).expanduser().parent
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)


def open_artifact_store(settings: Settings) -> ArtifactStore:
    """The artifact store for ``settings.resolved_storage_url``.

    A plain path or ``file://`` URL gives a :class:`LocalArtifactStore`; any other URL with a scheme
    (``s3://bucket/prefix``, ``memory://``, ...) gives an :class:`FsspecArtifactStore`.
    """
    url = settings.resolved_storage_url
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalArtifactStore(Path(unquote(parts.path)))
    if "://" in url and parts.scheme:
        return FsspecArtifactStore(url)
    return LocalArtifactStore(Path(url))
