"""Endpoints: each tenant's deployed models (the serving layer's desired state).

Revision ID: 0004
Revises: 0003
Create Date: 2025-04-01

Only creates a table, so existing rows are untouched. Constraint names follow the naming convention of
``aimaas.storage.sql.tables`` so the schema matches the table definitions exactly. The downgrade drops the
table (every endpoint with it) and the model references endpoints held; aimaas itself never downgrades (a
newer schema is refused), an operator may.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", _id(), nullable=False),
        sa.Column(
            "tenant_id", _id(), sa.ForeignKey("tenants.id", name="fk_endpoints_tenant_id_tenants"), nullable=False
        ),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column(
            "model_id",
            _id(),
            sa.ForeignKey("registered_models.id", name="fk_endpoints_model_id_registered_models"),
            nullable=False,
        ),
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
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_endpoints"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_endpoints_tenant_id_name"),
    )
    # "which endpoints serve this model" (alias moves) and the FK check when a model row is deleted
    op.create_index("ix_endpoints_model_id", "endpoints", ["model_id"])


def downgrade() -> None:
    # the references endpoints held on their models would otherwise block deleting those models forever
    op.execute(sa.text("DELETE FROM model_references WHERE holder_kind = 'endpoint'"))
    op.drop_index("ix_endpoints_model_id", table_name="endpoints")
    op.drop_table("endpoints")
