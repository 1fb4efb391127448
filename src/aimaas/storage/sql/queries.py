"""Small query helpers shared by the SQL store's methods (each runs inside the caller's transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from aimaas.domain import new_id
from aimaas.errors import InvalidInput, NotFound, StorageError
from aimaas.storage.sql.tables import api_keys, dataset_versions, datasets, tenants

__all__ = [
    "check_limit",
    "dataset_by_id",
    "dataset_row",
    "insert_or_ignore",
    "key_row",
    "lock_or_create_dataset",
    "one",
    "page",
    "require_tenant",
    "version_row",
]


def insert_or_ignore(conn: Connection, table: sa.Table) -> Any:
    """INSERT that supports ``on_conflict_do_nothing`` on both backends."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def check_limit(limit: int) -> None:
    if limit < 0:
        raise InvalidInput("limit must be zero or more", param="limit")


def page(query: sa.Select[Any], id_col: sa.ColumnElement[str], limit: int, after: str | None) -> Any:
    check_limit(limit)
    if after is not None:
        query = query.where(id_col > after)
    return query.order_by(id_col).limit(limit)


def one(conn: Connection, query: sa.Select[Any]) -> RowMapping:
    row = conn.execute(query).mappings().first()
    if row is None:  # pragma: no cover - only after a row we just wrote vanished
        raise StorageError("a row written in this transaction could not be read back")
    return row


def require_tenant(conn: Connection, tenant_id: str) -> None:
    if conn.execute(sa.select(tenants.c.id).where(tenants.c.id == tenant_id)).first() is None:
        raise NotFound(f"tenant {tenant_id!r} not found")


def key_row(conn: Connection, tenant_id: str, key_id: str) -> RowMapping:
    row = (
        conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id, api_keys.c.tenant_id == tenant_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"API key {key_id!r} not found")
    return row


def dataset_row(conn: Connection, tenant_id: str, name: str, *, lock: bool = False) -> RowMapping:
    query = sa.select(datasets).where(datasets.c.tenant_id == tenant_id, datasets.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise NotFound(f"dataset {name!r} not found")
    return row


def dataset_by_id(conn: Connection, tenant_id: str, dataset_id: str, *, lock: bool = False) -> RowMapping:
    query = sa.select(datasets).where(datasets.c.tenant_id == tenant_id, datasets.c.id == dataset_id)
    row = conn.execute(query.with_for_update(read=True) if lock else query).mappings().first()
    if row is None:
        raise NotFound(f"dataset {dataset_id!r} not found")
    return row


def version_row(conn: Connection, tenant_id: str, version_id: str) -> RowMapping:
    row = (
        conn.execute(
            sa.select(dataset_versions).where(
                dataset_versions.c.id == version_id, dataset_versions.c.tenant_id == tenant_id
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"dataset version {version_id!r} not found")
    return row


def lock_or_create_dataset(conn: Connection, tenant_id: str, name: str, created_at: datetime) -> RowMapping:
    """The dataset row, created if missing, locked until commit (FOR UPDATE; SQLite holds the write lock)."""
    for _ in range(3):  # a concurrent delete can remove the row between our insert and select
        conn.execute(
            insert_or_ignore(conn, datasets)
            .values(id=new_id("ds"), tenant_id=tenant_id, name=name, created_at=created_at, latest_version=0)
            .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
        )
        row = (
            conn.execute(
                sa.select(datasets).where(datasets.c.tenant_id == tenant_id, datasets.c.name == name).with_for_update()
            )
            .mappings()
            .first()
        )
        if row is not None:
            return row
    raise StorageError(f"dataset {name!r} kept disappearing while a version was being added; retry")
