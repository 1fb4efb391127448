"""The model registry half of :class:`~aimaas.storage.memory.MemoryMetadataStore`, as a mixin.

Mirrors :class:`aimaas.storage.sql.registry.SqlRegistryMixin` observably: same numbering, errors,
ordering, JSON normalisation (tuples become lists) and UTC timestamps; every method runs under the
store's one lock, so it is one transaction.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aimaas.domain import (
    Dataset,
    DatasetReference,
    ModelAlias,
    ModelRef,
    ModelReference,
    ModelVersion,
    RegisteredModel,
    check_alias_name,
    check_model_format,
    check_model_name,
    check_model_status,
    new_id,
    utcnow,
)
from aimaas.errors import Conflict, InvalidInput, NotFound
from aimaas.storage.base import MetadataStore

__all__ = ["MemoryRegistryMixin"]

MODEL_VERSION_HOLDER = "model_version"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError) as error:
        raise InvalidInput(
            f"model version metadata must be plain JSON values (signature, metrics, params, lineage): {error}",
            param="version",
        ) from None


class MemoryRegistryMixin(MetadataStore):
    """Model registry methods of the memory store; the concrete class provides the attributes below."""

    _lock: threading.RLock
    _datasets: dict[str, Dataset]
    _refs: dict[tuple[str, str, str], DatasetReference]

    def _init_registry(self) -> None:
        self._models: dict[str, RegisteredModel] = {}
        self._model_versions: dict[str, ModelVersion] = {}
        self._aliases: dict[tuple[str, str], ModelAlias] = {}  # (model_id, alias)
        self._model_refs: dict[tuple[str, str, str], ModelReference] = {}

    def add_model_version(
        self, tenant_id: str, model_name: str, version: ModelVersion, description: str | None = None
    ) -> ModelVersion:
        check_model_name(model_name)
        check_model_status(version.status)
        check_model_format(version.format)
        with self._lock:
            self.get_tenant(tenant_id)
            model = self._find_model(tenant_id, model_name)
            if model is None:
                model = RegisteredModel(new_id("mdl"), tenant_id, model_name, description, _utc(version.created_at))
            number = model.latest_version + 1
            stored = replace(
                version,
                model_id=model.id,
                tenant_id=tenant_id,
                version=number,
                signature=_json(version.signature),
                metrics=_json(version.metrics),
                params=_json(version.params),
                lineage=_json(version.lineage),
                created_at=_utc(version.created_at),
            )
            dataset_id = stored.dataset_id
            if dataset_id is not None:
                ds = self._datasets.get(dataset_id)
                if ds is None or ds.tenant_id != tenant_id:
                    raise NotFound(f"dataset {dataset_id!r} not found")
            if stored.id in self._model_versions:
                raise Conflict("the record conflicts with an existing one")
            self._models[model.id] = replace(
                model,
                latest_version=number,
                description=model.description if description is None else description,
            )
            self._model_versions[stored.id] = stored
            if dataset_id is not None:
                key = (dataset_id, MODEL_VERSION_HOLDER, stored.id)
                self._refs.setdefault(
                    key, DatasetReference(dataset_id, tenant_id, MODEL_VERSION_HOLDER, stored.id, stored.created_at)
                )
            return stored

    def get_model(self, tenant_id: str, name: str) -> RegisteredModel:
        with self._lock:
            model = self._find_model(tenant_id, name)
            if model is None:
                raise NotFound(f"model {name!r} not found")
            return model

    def list_models(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[RegisteredModel]:
        if limit < 0:
            raise InvalidInput("limit must be zero or more", param="limit")
        with self._lock:
            models = sorted((m for m in self._models.values() if m.tenant_id == tenant_id), key=lambda m: m.id)
        return [m for m in models if after is None or m.id > after][:limit]

    def list_model_versions(self, tenant_id: str, name: str) -> list[ModelVersion]:
        with self._lock:
            model = self.get_model(tenant_id, name)
            return self._versions_of(model.id)

    def get_model_version(self, tenant_id: str, name: str, version: int | None = None) -> ModelVersion:
        return self.resolve_model_ref(tenant_id, ModelRef(name, version=version))

    def resolve_model_ref(self, tenant_id: str, ref: ModelRef) -> ModelVersion:
        with self._lock:
            model = self.get_model(tenant_id, ref.name)
            if ref.alias is not None:
                alias = self._aliases.get((model.id, ref.alias))
                if alias is None:
                    raise NotFound(f"model {ref.name!r} has no alias {ref.alias!r}")
                number = alias.version
            else:
                number = model.latest_version if ref.version is None else ref.version
            return self._version_of(model, number)

    def set_model_version_status(self, tenant_id: str, name: str, version: int, status: str) -> ModelVersion:
        check_model_status(status)
        with self._lock:
            current = self._version_of(self.get_model(tenant_id, name), version)
            updated = self._model_versions[current.id] = replace(current, status=status)
            return updated

    # -- aliases -----------------------------------------------------------------------------
    def set_model_alias(
        self, tenant_id: str, name: str, alias: str, version: int, *, at: datetime | None = None
    ) -> ModelAlias:
        check_alias_name(alias)
        when = _utc(utcnow() if at is None else at)
        with self._lock:
            model = self.get_model(tenant_id, name)
            self._version_of(model, version)
            stored = self._aliases[(model.id, alias)] = ModelAlias(model.id, tenant_id, alias, version, when)
            return stored

    def delete_model_alias(self, tenant_id: str, name: str, alias: str) -> None:
        with self._lock:
            model = self.get_model(tenant_id, name)
            if self._aliases.pop((model.id, alias), None) is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")

    def list_model_aliases(self, tenant_id: str, name: str) -> list[ModelAlias]:
        with self._lock:
            model = self.get_model(tenant_id, name)
            return sorted((a for a in self._aliases.values() if a.model_id == model.id), key=lambda a: a.alias)

    # -- deletion and references -------------------------------------------------------------
    def delete_model(self, tenant_id: str, name: str) -> list[str]:
        with self._lock:
            model = self.get_model(tenant_id, name)
            holders = sorted((kind, hid) for (mid, kind, hid) in self._model_refs if mid == model.id)
            if holders:
                kind, hid = holders[0]
                raise Conflict(
                    f"model {name!r} is still used by {kind} {hid!r}; remove what uses it before deleting the model",
                    code="model_in_use",
                )
            versions = self._versions_of(model.id)
            for v in versions:
                if v.dataset_id is not None:
                    self._refs.pop((v.dataset_id, MODEL_VERSION_HOLDER, v.id), None)
                del self._model_versions[v.id]
            for key in [k for k in self._aliases if k[0] == model.id]:
                del self._aliases[key]
            del self._models[model.id]
            return [v.artifact_key for v in versions]

    def add_model_reference(self, ref: ModelReference) -> None:
        with self._lock:
            self._model_by_id(ref.tenant_id, ref.model_id)
            key = (ref.model_id, ref.holder_kind, ref.holder_id)
            self._model_refs.setdefault(key, replace(ref, created_at=_utc(ref.created_at)))

    def remove_model_reference(self, tenant_id: str, model_id: str, holder_kind: str, holder_id: str) -> None:
        with self._lock:
            ref = self._model_refs.get((model_id, holder_kind, holder_id))
            if ref is not None and ref.tenant_id == tenant_id:
                del self._model_refs[(model_id, holder_kind, holder_id)]

    def list_model_references(self, tenant_id: str, model_id: str) -> list[ModelReference]:
        with self._lock:
            self._model_by_id(tenant_id, model_id)
            refs = [r for r in self._model_refs.values() if r.model_id == model_id]
            return sorted(refs, key=lambda r: (r.created_at, r.holder_kind, r.holder_id))

    # -- helpers -----------------------------------------------------------------------------
    def _find_model(self, tenant_id: str, name: str) -> RegisteredModel | None:
        return next((m for m in self._models.values() if m.tenant_id == tenant_id and m.name == name), None)

    def _model_by_id(self, tenant_id: str, model_id: str) -> RegisteredModel:
        model = self._models.get(model_id)
        if model is None or model.tenant_id != tenant_id:
            raise NotFound(f"model {model_id!r} not found")
        return model

    def _versions_of(self, model_id: str) -> list[ModelVersion]:
        return sorted((v for v in self._model_versions.values() if v.model_id == model_id), key=lambda v: v.version)

    def _version_of(self, model: RegisteredModel, number: int) -> ModelVersion:
        for v in self._model_versions.values():
            if v.model_id == model.id and v.version == number:
                return v
        raise NotFound(f"model {model.name!r} has no version {number}")
