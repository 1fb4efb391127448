"""Jobs: the persisted job queue and each job's event log.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01

Only creates tables, so existing rows are untouched. Constraint names follow the naming convention of
``aimaas.storage.sql.tables`` so the schema matches the table definitions exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(postgresql.VARCHAR(collation="C"), "postgresql")


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", _id(), nullable=False),
        sa.Column("tenant_id", _id(), sa.ForeignKey("tenants.id", name="fk_jobs_tenant_id_tenants"), nullable=False),
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
        _ts("created_at", nullable=False),
        _ts("started_at"),
        _ts("finished_at"),
        _ts("cancel_requested_at"),
        sa.Column("owner", sa.String(), nullable=True),
        _ts("heartbeat_at"),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_id_idempotency_key"),
    )
    op.create_index("ix_jobs_tenant_id_state", "jobs", ["tenant_id", "state"])
    op.create_index("ix_jobs_state_priority_created_at", "jobs", ["state", "priority", "created_at"])

    op.create_table(
        "job_events",
        sa.Column("job_id", _id(), sa.ForeignKey("jobs.id", name="fk_job_events_job_id_jobs"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _ts("time", nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "seq", name="pk_job_events"),
    )


def downgrade() -> None:
    raise NotImplementedError("aimaas does not downgrade databases")
