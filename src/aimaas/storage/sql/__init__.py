"""The SQL metadata store (SQLite, PostgreSQL). The only package allowed to import SQLAlchemy and Alembic."""

from __future__ import annotations

from aimaas.storage.sql.engine import session_scope
from aimaas.storage.sql.migrate import MigrationResult, head_revision, upgrade
from aimaas.storage.sql.store import SqlMetadataStore

__all__ = ["MigrationResult", "SqlMetadataStore", "head_revision", "session_scope", "upgrade"]
