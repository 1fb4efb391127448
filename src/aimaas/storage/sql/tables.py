"""SQLAlchemy Core tables for the metadata store, and the column types they share.

These definitions describe the schema at the *head* migration; the migrations in ``migrations/versions``
create it. A unit test checks that the two never drift apart.

Conventions: ids are strings that sort by creation time (``C`` collation on PostgreSQL so the order is
byte order on every backend); timestamps are stored in UTC and come back timezone-aware; lists and
mappings are stored as JSON text so SQLite and PostgreSQL hold exactly the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

__all__ = [
    "Id",
    "UtcDateTime",
    "api_keys",
    "dataset_references",
    "dataset_splits",
    "dataset_versions",
    "datasets",
    "endpoints",
    "job_events",
    "jobs",
    "metadata",
    "model_aliases",
    "model_references",
    "model_versions",
    "registered_models",
    "tenants",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def Id() -> sa.types.TypeEngine[str]:  # noqa: N802 - reads like a type in column definitions
    """String id type; byte-order collation on PostgreSQL so ``ORDER BY id`` matches SQLite and memory."""
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC that always comes back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # naive values are taken to be UTC already
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _tenant_fk() -> sa.Column[str]:
    return sa.Column("tenant_id", Id(), sa.ForeignKey("tenants.id"), nullable=False, index=True)


tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", Id(), primary_key=True),
    sa.Column("name", sa.String(), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", Id(), primary_key=True),
    _tenant_fk(),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("prefix", sa.String(), nullable=False),
    sa.Column("key_hash", sa.String(), nullable=False),
    sa.Column("scopes", sa.Text(), nullable=False),  # JSON list, sorted
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    sa.Index("ix_api_keys_key_hash", "key_hash", unique=True),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", Id(), primary_key=True),
    _tenant_fk(),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("latest_version", sa.Integer(), nullable=False, server_default="0"),
    sa.UniqueConstraint("tenant_id", "name"),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("id", Id(), primary_key=True),
    sa.Column("dataset_id", Id(), sa.ForeignKey("datasets.id"), nullable=False),
    _tenant_fk(),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("format", sa.String(), nullable=False),
    sa.Column("sha256", sa.String(), nullable=False),
    sa.Column("size_bytes", sa.BigInteger(), nullable=False),
    sa.Column("artifact_key", sa.Text(), nullable=False),
    sa.Column("filename", sa.Text(), nullable=False),
    sa.Column("num_rows", sa.BigInteger(), nullable=False),
    sa.Column("schema_json", sa.Text(), nullable=False),
    sa.Column("stats_json", sa.Text(), nullable=False),
    sa.Column("target_suggestion", sa.String(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("dataset_id", "version"),
    sa.UniqueConstraint("dataset_id", "sha256"),
)

dataset_splits = sa.Table(
    "dataset_splits",
    metadata,
    sa.Column("id", Id(), primary_key=True),
    sa.Column("version_id", Id(), sa.ForeignKey("dataset_versions.id"), nullable=False),
    _tenant_fk(),
    sa.Column("seed", sa.BigInteger(), nullable=False),
    # JSON text, canonical: "[0.8, 0.1, 0.1]" and "null" / "\"label\"" so the unique key works with NULLs
    sa.Column("fractions", sa.String(), nullable=False),
    sa.Column("stratify_by", sa.String(), nullable=False),
    sa.Column("counts_json", sa.Text(), nullable=False),
    sa.Column("artifact_key", sa.Text(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("version_id", "seed", "fractions", "stratify_by"),
)

dataset_references = sa.Table(
    "dataset_references",
    metadata,
    sa.Column("dataset_id", Id(), sa.ForeignKey("datasets.id"), nullable=False),
    _tenant_fk(),
    sa.Column("holder_kind", sa.String(), nullable=False),
    sa.Column("holder_id", sa.String(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("dataset_id", "holder_kind", "holder_id"),
)

# -- model registry (migration 0002) -------------------------------------------------------------

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", Id(), primary_key=True),
    _tenant_fk(),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("latest_version", sa.Integer(), nullable=False, server_default="0"),
    sa.UniqueConstraint("tenant_id", "name"),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", Id(), primary_key=True),
    sa.Column("model_id", Id(), sa.ForeignKey("registered_models.id"), nullable=False),
    _tenant_fk(),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("task", sa.String(), nullable=False),
    sa.Column("format", sa.String(), nullable=False),
    sa.Column("artifact_key", sa.Text(), nullable=False),
    sa.Column("sha256", sa.String(), nullable=False),
    sa.Column("size_bytes", sa.BigInteger(), nullable=False),
    sa.Column("signature_json", sa.Text(), nullable=False),
    sa.Column("metrics_json", sa.Text(), nullable=False),
    sa.Column("params_json", sa.Text(), nullable=False),
    sa.Column("lineage_json", sa.Text(), nullable=False),
    sa.Column("card_markdown", sa.Text(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("model_id", "version"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", Id(), nullable=False),
    _tenant_fk(),
    sa.Column("alias", sa.String(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("model_id", "alias"),
    # an alias always points at an existing version of its own model
    sa.ForeignKeyConstraint(["model_id", "version"], ["model_versions.model_id", "model_versions.version"]),
)

model_references = sa.Table(
    "model_references",
    metadata,
    sa.Column("model_id", Id(), sa.ForeignKey("registered_models.id"), nullable=False),
    _tenant_fk(),
    sa.Column("holder_kind", sa.String(), nullable=False),
    sa.Column("holder_id", sa.String(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("model_id", "holder_kind", "holder_id"),
)

# -- jobs (migration 0003) -----------------------------------------------------------------------

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", Id(), primary_key=True),
    sa.Column("tenant_id", Id(), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("entrypoint", sa.Text(), nullable=False),
    sa.Column("params_json", sa.Text(), nullable=False),
    sa.Column("resume_from", sa.String(), nullable=True),
    sa.Column("priority", sa.Integer(), nullable=False),
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("progress", sa.Float(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("result_json", sa.Text(), nullable=True),
    sa.Column("idempotency_key", sa.String(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("cancel_requested_at", UtcDateTime(), nullable=True),
    sa.Column("owner", sa.String(), nullable=True),
    sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("tenant_id", "idempotency_key"),  # NULL keys never collide
    sa.Index("ix_jobs_tenant_id_state", "tenant_id", "state"),
    sa.Index("ix_jobs_state_priority_created_at", "state", "priority", "created_at"),
)

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("job_id", Id(), sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("time", UtcDateTime(), nullable=False),
    sa.Column("type", sa.String(), nullable=False),
    sa.Column("payload_json", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("job_id", "seq"),
)

# -- endpoints (migration 0004) ------------------------------------------------------------------

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", Id(), primary_key=True),
    # no separate tenant index: the unique (tenant_id, name) index starts with it
    sa.Column("tenant_id", Id(), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("name", sa.String(), nullable=False),
    # model_name is what users see; model_id pins the row so the model cannot vanish under the endpoint
    sa.Column("model_id", Id(), sa.ForeignKey("registered_models.id"), nullable=False, index=True),
    sa.Column("model_name", sa.String(), nullable=False),
    sa.Column("selector", sa.String(), nullable=False),
    sa.Column("canary_selector", sa.String(), nullable=True),
    sa.Column("canary_weight", sa.Float(), nullable=False),
    sa.Column("min_replicas", sa.Integer(), nullable=False),
    sa.Column("max_replicas", sa.Integer(), nullable=False),
    sa.Column("max_batch_size", sa.Integer(), nullable=False),
    sa.Column("max_wait_ms", sa.Float(), nullable=False),
    sa.Column("idle_timeout_s", sa.Float(), nullable=False),
    sa.Column("target_ongoing_requests", sa.Integer(), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
)
