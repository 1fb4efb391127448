"""Initial schema: tenants, API keys, datasets, versions, splits and references.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tenant_id(table: str) -> sa.Column[str]:
    return sa.Column(
        "tenant_id", _id(), sa.ForeignKey("tenants.id", name=f"fk_{table}_tenant_id_tenants"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", _id(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", _id(), nullable=False),
        _tenant_id("api_keys"),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        _ts("created_at"),
        _ts("expires_at", nullable=True),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])

    op.create_table(
        "datasets",
        sa.Column("id", _id(), nullable=False),
        _tenant_id("datasets"),
        sa.Column("name", sa.String(), nullable=False),
        _ts("created_at"),
        sa.Column("latest_version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_datasets_tenant_id_name"),
    )
    op.create_index("ix_datasets_tenant_id", "datasets", ["tenant_id"])

    op.create_table(
        "dataset_versions",
        sa.Column("id", _id(), nullable=False),
        sa.Column(
            "dataset_id",
            _id(),
            sa.ForeignKey("datasets.id", name="fk_dataset_versions_dataset_id_datasets"),
            nullable=False,
        ),
        _tenant_id("dataset_versions"),
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
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_id_version"),
        sa.UniqueConstraint("dataset_id", "sha256", name="uq_dataset_versions_dataset_id_sha256"),
    )
    op.create_index("ix_dataset_versions_tenant_id", "dataset_versions", ["tenant_id"])

    op.create_table(
        "dataset_splits",
        sa.Column("id", _id(), nullable=False),
        sa.Column(
            "version_id",
            _id(),
            sa.ForeignKey("dataset_versions.id", name="fk_dataset_splits_version_id_dataset_versions"),
            nullable=False,
        ),
        _tenant_id("dataset_splits"),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("fractions", sa.String(), nullable=False),
        sa.Column("stratify_by", sa.String(), nullable=False),
        sa.Column("counts_json", sa.Text(), nullable=False),
        sa.Column("artifact_key", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_splits"),
        sa.UniqueConstraint(
            "version_id",
            "seed",
            "fractions",
            "stratify_by",
            name="uq_dataset_splits_version_id_seed_fractions_stratify_by",
        ),
    )
    op.create_index("ix_dataset_splits_tenant_id", "dataset_splits", ["tenant_id"])

    op.create_table(
        "dataset_references",
        sa.Column(
            "dataset_id",
            _id(),
            sa.ForeignKey("datasets.id", name="fk_dataset_references_dataset_id_datasets"),
            nullable=False,
        ),
        _tenant_id("dataset_references"),
        sa.Column("holder_kind", sa.String(), nullable=False),
        sa.Column("holder_id", sa.String(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("dataset_id", "holder_kind", "holder_id", name="pk_dataset_references"),
    )
    op.create_index("ix_dataset_references_tenant_id", "dataset_references", ["tenant_id"])


def downgrade() -> None:
    raise NotImplementedError("aimaas does not downgrade databases")
