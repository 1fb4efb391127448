"""The model registry half of :class:`~aimaas.storage.sql.store.SqlMetadataStore`, as a mixin.

Same rules as the rest of the SQL store: one transaction per method, tenant-scoped reads (another
tenant's model is NotFound), driver errors translated by :func:`~aimaas.storage.sql.engine.session_scope`.
Version numbers come from ``registered_models.latest_version`` read under the model row's lock, exactly
like dataset versions, so concurrent publishers get 1, 2, 3, ... with no gaps or repeats.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aimaas.domain import (
    ModelAlias,
    ModelRef,
    ModelReference,
    ModelVersion,
    RegisteredModel,
    check_alias_name,
    check_model_status,
    utcnow,
)
from aimaas.errors import Conflict, NotFound
from aimaas.storage.base import MetadataStore
from aimaas.storage.sql import convert as cv
from aimaas.storage.sql import queries as q
from aimaas.storage.sql import registry_queries as rq
from aimaas.storage.sql.engine import session_scope
from aimaas.storage.sql.tables import (
    dataset_references,
    model_aliases,
    model_references,
    model_versions,
    registered_models,
)

__all__ = ["SqlRegistryMixin"]

MODEL_VERSION_HOLDER = "model_version"


class SqlRegistryMixin(MetadataStore):
    """Model registry methods of the SQL store; the concrete class provides ``_engine``."""

    _engine: Engine

    def add_model_version(
        self, tenant_id: str, model_name: str, version: ModelVersion, description: str | None = None
    ) -> ModelVersion:
        rq.check_new_version(model_name, version)
        with session_scope(self._engine, write=True) as conn:
            q.require_tenant(conn, tenant_id)
            model = rq.lock_or_create_model(conn, tenant_id, model_name, version.created_at, description)
            number = model["latest_version"] + 1
            new = replace(version, model_id=model["id"], tenant_id=tenant_id, version=number)
            values = rq.encode_version(new)
            if new.dataset_id is not None:  # lock the dataset (FOR SHARE) so it cannot be deleted meanwhile
                q.dataset_by_id(conn, tenant_id, new.dataset_id, lock=True)
            conn.execute(sa.insert(model_versions).values(**values))
            changes: dict[str, object] = {"latest_version": number}
            if description is not None:
                changes["description"] = description
            conn.execute(sa.update(registered_models).where(registered_models.c.id == model["id"]).values(changes))
            if new.dataset_id is not None:
                conn.execute(
                    q.insert_or_ignore(conn, dataset_references)
                    .values(
                        dataset_id=new.dataset_id,
                        tenant_id=tenant_id,
                        holder_kind=MODEL_VERSION_HOLDER,
                        holder_id=new.id,
                        created_at=new.created_at,
                    )
                    .on_conflict_do_nothing(index_elements=["dataset_id", "holder_kind", "holder_id"])
                )
            return cv.to_model_version(q.one(conn, sa.select(model_versions).where(model_versions.c.id == new.id)))

    def get_model(self, tenant_id: str, name: str) -> RegisteredModel:
        with session_scope(self._engine) as conn:
            return cv.to_registered_model(rq.model_row(conn, tenant_id, name))

    def list_models(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[RegisteredModel]:
        models = registered_models.c
        query = q.page(sa.select(registered_models).where(models.tenant_id == tenant_id), models.id, limit, after)
        with session_scope(self._engine) as conn:
            rows = conn.execute(query).mappings().all()
        return [cv.to_registered_model(r) for r in rows]

    def list_model_versions(self, tenant_id: str, name: str) -> list[ModelVersion]:
        with session_scope(self._engine) as conn:
            model = rq.model_row(conn, tenant_id, name)
            rows = (
                conn.execute(
                    sa.select(model_versions)
                    .where(model_versions.c.model_id == model["id"])
                    .order_by(model_versions.c.version)
                )
                .mappings()
                .all()
            )
        return [cv.to_model_version(r) for r in rows]

    def get_model_version(self, tenant_id: str, name: str, version: int | None = None) -> ModelVersion:
        return self.resolve_model_ref(tenant_id, ModelRef(name, version=version))

    def resolve_model_ref(self, tenant_id: str, ref: ModelRef) -> ModelVersion:
        with session_scope(self._engine) as conn:
            model = rq.model_row(conn, tenant_id, ref.name)
            if ref.alias is not None:
                number = conn.execute(
                    sa.select(model_aliases.c.version).where(
                        model_aliases.c.model_id == model["id"], model_aliases.c.alias == ref.alias
                    )
                ).scalar()
                if number is None:
                    raise NotFound(f"model {ref.name!r} has no alias {ref.alias!r}")
            else:
                number = model["latest_version"] if ref.version is None else ref.version
            return cv.to_model_version(rq.model_version_row(conn, model, number))

    def set_model_version_status(self, tenant_id: str, name: str, version: int, status: str) -> ModelVersion:
        check_model_status(status)
        with session_scope(self._engine, write=True) as conn:
            model = rq.model_row(conn, tenant_id, name)
            row = rq.model_version_row(conn, model, version)
            conn.execute(sa.update(model_versions).where(model_versions.c.id == row["id"]).values(status=status))
            return cv.to_model_version(q.one(conn, sa.select(model_versions).where(model_versions.c.id == row["id"])))

    # -- aliases -----------------------------------------------------------------------------
    def set_model_alias(
        self, tenant_id: str, name: str, alias: str, version: int, *, at: datetime | None = None
    ) -> ModelAlias:
        check_alias_name(alias)
        when = utcnow() if at is None else at
        with session_scope(self._engine, write=True) as conn:
            model = rq.model_row(conn, tenant_id, name, lock="share")
            rq.model_version_row(conn, model, version)
            insert = q.insert_or_ignore(conn, model_aliases).values(
                model_id=model["id"], tenant_id=tenant_id, alias=alias, version=version, updated_at=when
            )
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["model_id", "alias"],
                    set_={"version": insert.excluded.version, "updated_at": insert.excluded.updated_at},
                )
            )
            where = (model_aliases.c.model_id == model["id"], model_aliases.c.alias == alias)
            return cv.to_model_alias(q.one(conn, sa.select(model_aliases).where(*where)))

    def delete_model_alias(self, tenant_id: str, name: str, alias: str) -> None:
        with session_scope(self._engine, write=True) as conn:
            model = rq.model_row(conn, tenant_id, name)
            result = conn.execute(
                sa.delete(model_aliases).where(model_aliases.c.model_id == model["id"], model_aliases.c.alias == alias)
            )
            if result.rowcount == 0:
                raise NotFound(f"model {name!r} has no alias {alias!r}")

    def list_model_aliases(self, tenant_id: str, name: str) -> list[ModelAlias]:
        with session_scope(self._engine) as conn:
            model = rq.model_row(conn, tenant_id, name)
            rows = (
                conn.execute(
                    sa.select(model_aliases)
                    .where(model_aliases.c.model_id == model["id"])
                    .order_by(model_aliases.c.alias)
                )
                .mappings()
                .all()
            )
        return [cv.to_model_alias(r) for r in rows]

    # -- deletion and references -------------------------------------------------------------
    def delete_model(self, tenant_id: str, name: str) -> list[str]:
        with session_scope(self._engine, write=True) as conn:
            model = rq.model_row(conn, tenant_id, name, lock="update")
            refs = model_references.c
            holder = conn.execute(
                sa.select(refs.holder_kind, refs.holder_id)
                .where(refs.model_id == model["id"])
                .order_by(refs.holder_kind, refs.holder_id)
            ).first()
            if holder is not None:
                raise Conflict(
                    f"model {name!r} is still used by {holder[0]} {holder[1]!r}; "
                    "remove what uses it before deleting the model",
                    code="model_in_use",
                )
            rows = (
                conn.execute(
                    sa.select(model_versions)
                    .where(model_versions.c.model_id == model["id"])
                    .order_by(model_versions.c.version)
                )
                .mappings()
                .all()
            )
            versions = [cv.to_model_version(r) for r in rows]
            dataset_ids = {v.dataset_id for v in versions if v.dataset_id is not None}
            if dataset_ids:
                conn.execute(
                    sa.delete(dataset_references).where(
                        dataset_references.c.dataset_id.in_(sorted(dataset_ids)),
                        dataset_references.c.tenant_id == tenant_id,
                        dataset_references.c.holder_kind == MODEL_VERSION_HOLDER,
                        dataset_references.c.holder_id.in_([v.id for v in versions]),
                    )
                )
            conn.execute(sa.delete(model_aliases).where(model_aliases.c.model_id == model["id"]))
            conn.execute(sa.delete(model_versions).where(model_versions.c.model_id == model["id"]))
            conn.execute(sa.delete(registered_models).where(registered_models.c.id == model["id"]))
            return [v.artifact_key for v in versions]

    def add_model_reference(self, ref: ModelReference) -> None:
        with session_scope(self._engine, write=True) as conn:
            rq.model_by_id(conn, ref.tenant_id, ref.model_id, lock="share")
            conn.execute(
                q.insert_or_ignore(conn, model_references)
                .values(
                    model_id=ref.model_id,
                    tenant_id=ref.tenant_id,
                    holder_kind=ref.holder_kind,
                    holder_id=ref.holder_id,
                    created_at=ref.created_at,
                )
                .on_conflict_do_nothing(index_elements=["model_id", "holder_kind", "holder_id"])
            )

    def remove_model_reference(self, tenant_id: str, model_id: str, holder_kind: str, holder_id: str) -> None:
        refs = model_references.c
        with session_scope(self._engine, write=True) as conn:
            conn.execute(
                sa.delete(model_references).where(
                    refs.tenant_id == tenant_id,
                    refs.model_id == model_id,
                    refs.holder_kind == holder_kind,
                    refs.holder_id == holder_id,
                )
            )

    def list_model_references(self, tenant_id: str, model_id: str) -> list[ModelReference]:
        refs = model_references.c
        with session_scope(self._engine) as conn:
            rq.model_by_id(conn, tenant_id, model_id)
            rows = (
                conn.execute(
                    sa.select(model_references)
                    .where(refs.model_id == model_id, refs.tenant_id == tenant_id)
                    .order_by(refs.created_at, refs.holder_kind, refs.holder_id)
                )
                .mappings()
                .all()
            )
        return [cv.to_model_reference(r) for r in rows]
