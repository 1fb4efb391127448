"""The endpoints part of :class:`~aimaas.storage.sql.store.SqlMetadataStore`, as a mixin.

Same rules as the rest of the SQL store: one transaction per method, tenant-scoped reads (another tenant's
endpoint is NotFound), driver errors translated by :func:`~aimaas.storage.sql.engine.session_scope`.

An endpoint row carries its model's ``model_id`` (a foreign key) and, written in the same transaction, a
``model_references`` row (holder ``endpoint``), so ``delete_model`` answers ``model_in_use`` while it exists.
Creating reads the model ``FOR SHARE``: a concurrent ``delete_model`` (``FOR UPDATE``) either finishes first
(the create then finds no model) or waits and then sees the reference. Two creates of one name race on the
unique ``(tenant_id, name)`` index through ``INSERT ... ON CONFLICT DO NOTHING``: the loser inserts nothing
and answers ``endpoint_exists``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from aimaas.domain import Endpoint, check_endpoint_settings, check_model_name
from aimaas.errors import Conflict, InvalidInput, NotFound
from aimaas.storage.base import MetadataStore
from aimaas.storage.sql import convert as cv
from aimaas.storage.sql import queries as q
from aimaas.storage.sql import registry_queries as rq
from aimaas.storage.sql.engine import session_scope
from aimaas.storage.sql.tables import endpoints, model_references

__all__ = ["ENDPOINT_HOLDER", "SqlEndpointsMixin"]

#: ``holder_kind`` of the model reference every endpoint holds on its model.
ENDPOINT_HOLDER = "endpoint"


def _check(endpoint: Endpoint) -> Endpoint:
    if not isinstance(endpoint, Endpoint):
        raise InvalidInput("endpoint must be an Endpoint", param="endpoint")
    if endpoint.description is not None and not isinstance(endpoint.description, str):
        raise InvalidInput("description must be text or null", param="description")
    return check_endpoint_settings(endpoint)


def _endpoint_row(conn: Connection, tenant_id: str, name: str, *, lock: bool = False) -> RowMapping:
    query = sa.select(endpoints).where(endpoints.c.tenant_id == tenant_id, endpoints.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise NotFound(f"endpoint {name!r} not found")
    return row


class SqlEndpointsMixin(MetadataStore):
    """Endpoint methods of the SQL store; the concrete class provides ``_engine``."""

    _engine: Engine

    def create_endpoint(self, endpoint: Endpoint) -> Endpoint:
        _check(endpoint)
        check_model_name(endpoint.model_name, param="model_name")
        with session_scope(self._engine, write=True) as conn:
            model = rq.model_row(conn, endpoint.tenant_id, endpoint.model_name, lock="share")
            inserted = conn.execute(
                q.insert_or_ignore(conn, endpoints)
                .values(**cv.endpoint_values(endpoint, model["id"]))
                .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
                .returning(endpoints.c.id)
            ).first()
            if inserted is None:
                raise Conflict(
                    f"an endpoint named {endpoint.name!r} already exists; choose another name or update that one",
                    code="endpoint_exists",
                )
            conn.execute(
                q.insert_or_ignore(conn, model_references)
                .values(
                    model_id=model["id"],
                    tenant_id=endpoint.tenant_id,
                    holder_kind=ENDPOINT_HOLDER,
                    holder_id=endpoint.id,
                    created_at=endpoint.created_at,
                )
                .on_conflict_do_nothing(index_elements=["model_id", "holder_kind", "holder_id"])
            )
            return cv.to_endpoint(q.one(conn, sa.select(endpoints).where(endpoints.c.id == endpoint.id)))

    def get_endpoint(self, tenant_id: str, name: str) -> Endpoint:
        with session_scope(self._engine) as conn:
            return cv.to_endpoint(_endpoint_row(conn, tenant_id, name))

    def list_endpoints(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[Endpoint]:
        query = q.page(sa.select(endpoints).where(endpoints.c.tenant_id == tenant_id), endpoints.c.id, limit, after)
        with session_scope(self._engine) as conn:
            rows = conn.execute(query).mappings().all()
        return [cv.to_endpoint(r) for r in rows]

    def list_all_endpoints(self) -> list[Endpoint]:
        with session_scope(self._engine) as conn:
            rows = conn.execute(sa.select(endpoints).order_by(endpoints.c.id)).mappings().all()
        return [cv.to_endpoint(r) for r in rows]

    def update_endpoint(self, endpoint: Endpoint) -> Endpoint:
        _check(endpoint)
        with session_scope(self._engine, write=True) as conn:
            row = _endpoint_row(conn, endpoint.tenant_id, endpoint.name, lock=True)
            conn.execute(
                sa.update(endpoints).where(endpoints.c.id == row["id"]).values(**cv.endpoint_settings_values(endpoint))
            )
            return cv.to_endpoint(q.one(conn, sa.select(endpoints).where(endpoints.c.id == row["id"])))

    def delete_endpoint(self, tenant_id: str, name: str) -> None:
        refs = model_references.c
        with session_scope(self._engine, write=True) as conn:
            row = _endpoint_row(conn, tenant_id, name, lock=True)
            conn.execute(
                sa.delete(model_references).where(
                    refs.model_id == row["model_id"],
                    refs.holder_kind == ENDPOINT_HOLDER,
                    refs.holder_id == row["id"],
                )
            )
            conn.execute(sa.delete(endpoints).where(endpoints.c.id == row["id"]))
