"""Model registry: registered models, their versions, aliases and references.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01

Only creates tables, so existing rows are untouched. Constraint names follow the naming convention of
``aimaas.storage.sql.tables`` so the schema matches the table definitions exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _tenant_id(table: str) -> sa.Column[str]:
    return sa.Column(
        "tenant_id", _id(), sa.ForeignKey("tenants.id", name=f"fk_{table}_tenant_id_tenants"), nullable=False
    )


def _model_id(table: str) -> sa.Column[str]:
    return sa.Column(
        "model_id",
        _id(),
        sa.ForeignKey("registered_models.id", name=f"fk_{table}_model_id_registered_models"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", _id(), nullable=False),
        _tenant_id("registered_models"),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _ts("created_at"),
        sa.Column("latest_version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_registered_models_tenant_id_name"),
    )
    op.create_index("ix_registered_models_tenant_id", "registered_models", ["tenant_id"])

    op.create_table(
        "model_versions",
        sa.Column("id", _id(), nullable=False),
        _model_id("model_versions"),
        _tenant_id("model_versions"),
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
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
    )
    op.create_index("ix_model_versions_tenant_id", "model_versions", ["tenant_id"])

    op.create_table(
        "model_aliases",
        sa.Column("model_id", _id(), nullable=False),
        _tenant_id("model_aliases"),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_model_aliases"),
        sa.ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            name="fk_model_aliases_model_id_model_versions",
        ),
    )
    op.create_index("ix_model_aliases_tenant_id", "model_aliases", ["tenant_id"])

    op.create_table(
        "model_references",
        _model_id("model_references"),
        _tenant_id("model_references"),
        sa.Column("holder_kind", sa.String(), nullable=False),
        sa.Column("holder_id", sa.String(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("model_id", "holder_kind", "holder_id", name="pk_model_references"),
    )
    op.create_index("ix_model_references_tenant_id", "model_references", ["tenant_id"])


def downgrade() -> None:
    raise NotImplementedError("aimaas does not downgrade databases")
