"""The endpoints part of :class:`~aimaas.storage.memory.MemoryMetadataStore`, as a mixin.

Mirrors :class:`aimaas.storage.sql.endpoints.SqlEndpointsMixin` observably: same errors and their order
(InvalidInput, then NotFound for the model, then Conflict ``endpoint_exists``), id ordering, UTC timestamps
and float settings; the model reference is written with the endpoint under the store's one lock, so every
method is one transaction.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

from aimaas.domain import Endpoint, ModelReference, RegisteredModel, check_endpoint_settings, check_model_name
from aimaas.errors import Conflict, InvalidInput, NotFound
from aimaas.storage.base import MetadataStore

__all__ = ["MemoryEndpointsMixin"]

ENDPOINT_HOLDER = "endpoint"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check(endpoint: Endpoint) -> Endpoint:
    if not isinstance(endpoint, Endpoint):
        raise InvalidInput("endpoint must be an Endpoint", param="endpoint")
    if endpoint.description is not None and not isinstance(endpoint.description, str):
        raise InvalidInput("description must be text or null", param="description")
    return check_endpoint_settings(endpoint)


def _normalised(endpoint: Endpoint) -> Endpoint:
    """What the SQL store hands back: float columns as floats, timestamps in UTC."""
    return replace(
        endpoint,
        canary_weight=float(endpoint.canary_weight),
        max_wait_ms=float(endpoint.max_wait_ms),
        idle_timeout_s=float(endpoint.idle_timeout_s),
        created_at=_utc(endpoint.created_at),
        updated_at=_utc(endpoint.updated_at),
    )


class MemoryEndpointsMixin(MetadataStore):
    """Endpoint methods of the memory store; the concrete class provides the attributes below."""

    _lock: threading.RLock
    _models: dict[str, RegisteredModel]
    _model_refs: dict[tuple[str, str, str], ModelReference]

    def _init_endpoints(self) -> None:
        self._endpoints: dict[str, Endpoint] = {}
        self._endpoint_models: dict[str, str] = {}  # endpoint id -> model id (the SQL row's model_id)

    def create_endpoint(self, endpoint: Endpoint) -> Endpoint:
        _check(endpoint)
        check_model_name(endpoint.model_name, param="model_name")
        with self._lock:
            model = next(
                (
                    m
                    for m in self._models.values()
                    if m.tenant_id == endpoint.tenant_id and m.name == endpoint.model_name
                ),
                None,
            )
            if model is None:
                raise NotFound(f"model {endpoint.model_name!r} not found")
            if self._find_endpoint(endpoint.tenant_id, endpoint.name) is not None:
                raise Conflict(
                    f"an endpoint named {endpoint.name!r} already exists; choose another name or update that one",
                    code="endpoint_exists",
                )
            if endpoint.id in self._endpoints:
                raise Conflict("the record conflicts with an existing one")
            stored = self._endpoints[endpoint.id] = _normalised(endpoint)
            self._endpoint_models[endpoint.id] = model.id
            key = (model.id, ENDPOINT_HOLDER, endpoint.id)
            self._model_refs.setdefault(
                key, ModelReference(model.id, endpoint.tenant_id, ENDPOINT_HOLDER, endpoint.id, stored.created_at)
            )
            return stored

    def get_endpoint(self, tenant_id: str, name: str) -> Endpoint:
        with self._lock:
            found = self._find_endpoint(tenant_id, name)
            if found is None:
                raise NotFound(f"endpoint {name!r} not found")
            return found

    def list_endpoints(self, tenant_id: str, *, limit: int = 100, after: str | None = None) -> list[Endpoint]:
        if limit < 0:
            raise InvalidInput("limit must be zero or more", param="limit")
        with self._lock:
            mine = sorted((e for e in self._endpoints.values() if e.tenant_id == tenant_id), key=lambda e: e.id)
        return [e for e in mine if after is None or e.id > after][:limit]

    def list_all_endpoints(self) -> list[Endpoint]:
        with self._lock:
            return sorted(self._endpoints.values(), key=lambda e: e.id)

    def update_endpoint(self, endpoint: Endpoint) -> Endpoint:
        _check(endpoint)
        with self._lock:
            current = self.get_endpoint(endpoint.tenant_id, endpoint.name)
            kept = replace(endpoint, id=current.id, model_name=current.model_name, created_at=current.created_at)
            stored = self._endpoints[current.id] = _normalised(kept)
            return stored

    def delete_endpoint(self, tenant_id: str, name: str) -> None:
        with self._lock:
            current = self.get_endpoint(tenant_id, name)
            model_id = self._endpoint_models.pop(current.id)
            self._model_refs.pop((model_id, ENDPOINT_HOLDER, current.id), None)
            del self._endpoints[current.id]

    def _find_endpoint(self, tenant_id: str, name: str) -> Endpoint | None:
        return next((e for e in self._endpoints.values() if e.tenant_id == tenant_id and e.name == name), None)
