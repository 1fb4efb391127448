"""Query helpers for the model registry's SQL methods (each runs inside the caller's transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from aimaas.domain import ModelVersion, check_model_format, check_model_name, check_model_status, new_id
from aimaas.errors import InvalidInput, NotFound, StorageError
from aimaas.storage.sql import convert as cv
from aimaas.storage.sql.queries import insert_or_ignore
from aimaas.storage.sql.tables import model_versions, registered_models

__all__ = [
    "check_new_version",
    "encode_version",
    "lock_or_create_model",
    "model_by_id",
    "model_row",
    "model_version_row",
]

Lock = Literal["update", "share"] | None


def _locked(query: sa.Select[Any], lock: Lock) -> sa.Select[Any]:
    if lock == "update":
        return query.with_for_update()
    if lock == "share":
        return query.with_for_update(read=True)
    return query


def check_new_version(model_name: str, version: ModelVersion) -> None:
    """InvalidInput unless the name, status and format of a version being added are acceptable."""
    check_model_name(model_name)
    check_model_status(version.status)
    check_model_format(version.format)


def encode_version(version: ModelVersion) -> dict[str, Any]:
    """Column values of ``version``; InvalidInput when a JSON field holds something JSON cannot carry."""
    try:
        return cv.model_version_values(version)
    except (TypeError, ValueError) as error:
        raise InvalidInput(
            f"model version metadata must be plain JSON values (signature, metrics, params, lineage): {error}",
            param="version",
        ) from None


def model_row(conn: Connection, tenant_id: str, name: str, *, lock: Lock = None) -> RowMapping:
    query = sa.select(registered_models).where(
        registered_models.c.tenant_id == tenant_id, registered_models.c.name == name
    )
    row = conn.execute(_locked(query, lock)).mappings().first()
    if row is None:
        raise NotFound(f"model {name!r} not found")
    return row


def model_by_id(conn: Connection, tenant_id: str, model_id: str, *, lock: Lock = None) -> RowMapping:
    query = sa.select(registered_models).where(
        registered_models.c.tenant_id == tenant_id, registered_models.c.id == model_id
    )
    row = conn.execute(_locked(query, lock)).mappings().first()
    if row is None:
        raise NotFound(f"model {model_id!r} not found")
    return row


def model_version_row(conn: Connection, model: RowMapping, number: int) -> RowMapping:
    row = (
        conn.execute(
            sa.select(model_versions).where(
                model_versions.c.model_id == model["id"], model_versions.c.version == number
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"model {model['name']!r} has no version {number}")
    return row


def lock_or_create_model(
    conn: Connection, tenant_id: str, name: str, created_at: datetime, description: str | None
) -> RowMapping:
    """The model row, created if missing, locked until commit (FOR UPDATE; SQLite holds the write lock).

    The same approach as :func:`aimaas.storage.sql.queries.lock_or_create_dataset`: ``INSERT ... ON
    CONFLICT DO NOTHING`` then ``SELECT ... FOR UPDATE``, so concurrent first versions create one model.
    """
    for _ in range(3):  # a concurrent delete can remove the row between our insert and select
        conn.execute(
            insert_or_ignore(conn, registered_models)
            .values(
                id=new_id("mdl"),
                tenant_id=tenant_id,
                name=name,
                description=description,
                created_at=created_at,
                latest_version=0,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
        )
        row = (
            conn.execute(
                sa.select(registered_models)
                .where(registered_models.c.tenant_id == tenant_id, registered_models.c.name == name)
                .with_for_update()
            )
            .mappings()
            .first()
        )
        if row is not None:
            return row
    raise StorageError(f"model {name!r} kept disappearing while a version was being added; retry")
