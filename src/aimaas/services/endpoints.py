"""EndpointService: deploy registered models as endpoints, change and remove them, and report their status.

Everything a deployment could fail on is checked before the endpoint is stored: the model ref resolves, a
runtime serves the version's format and task, the canary names a version of the same model, the settings are
in bounds. The serving controller is told at once, so the first replica starts loading within milliseconds.
"""

from __future__ import annotations

from typing import Any

from aimaas.domain import Endpoint, ModelRef, Principal, new_id, parse_model_ref
from aimaas.domain.endpoints import check_endpoint_name, check_endpoint_settings
from aimaas.errors import InvalidInput
from aimaas.serving.controller import EndpointState, ServingController
from aimaas.serving.runtime import ModelSource, runtime_kind
from aimaas.storage.base import MetadataStore

__all__ = ["SETTING_FIELDS", "EndpointService", "selector_of"]

SETTING_FIELDS = ("min_replicas", "max_replicas", "max_batch_size", "max_wait_ms", "idle_timeout_s",
                  "target_ongoing_requests", "description")


def selector_of(ref: ModelRef) -> str:
    if ref.alias is not None:
        return ref.alias
    return str(ref.version) if ref.version is not None else "latest"


class EndpointService:
    """Owns the endpoints of every tenant; each call is scoped to the caller's tenant."""

    def __init__(self, store: MetadataStore, controller: ServingController) -> None:
        self._store = store
        self.controller = controller

    def create(self, principal: Principal, fields: dict[str, Any]) -> Endpoint:
        name = check_endpoint_name(fields["name"])
        ref = parse_model_ref(fields["model"])
        self._check_servable(principal, ref)
        endpoint = Endpoint(id=new_id("ep"), tenant_id=principal.tenant_id, name=name, model_name=ref.name,
                            selector=selector_of(ref),
                            **{k: fields[k] for k in SETTING_FIELDS if fields.get(k) is not None})
        endpoint = self._with_canary(principal, endpoint, fields.get("canary"))
        created = self._store.create_endpoint(check_endpoint_settings(endpoint))
        self.controller.notify()
        return created

    def list(self, principal: Principal, *, limit: int, after: str | None) -> list[Endpoint]:
        return self._store.list_endpoints(principal.tenant_id, limit=limit, after=after)

    def get(self, principal: Principal, name: str) -> Endpoint:
        return self._store.get_endpoint(principal.tenant_id, name)

    def update(self, principal: Principal, name: str, fields: dict[str, Any]) -> Endpoint:
        current = self._store.get_endpoint(principal.tenant_id, name)
        changes: dict[str, Any] = {k: fields[k] for k in SETTING_FIELDS if fields.get(k) is not None}
        if fields.get("model") is not None:
            ref = parse_model_ref(fields["model"])
            if ref.name != current.model_name:
                raise InvalidInput(f"endpoint {name!r} serves model {current.model_name!r}; deploy "
                                   f"{ref.name!r} as another endpoint", param="model")
            self._check_servable(principal, ref)
            changes["selector"] = selector_of(ref)
        updated = current.with_changes(**changes)
        if fields.get("clear_canary"):
            updated = updated.with_changes(canary_selector=None, canary_weight=0.0)
        elif fields.get("canary") is not None:
            updated = self._with_canary(principal, updated, fields["canary"])
        stored = self._store.update_endpoint(check_endpoint_settings(updated))
        self.controller.notify()
        return stored

    def delete(self, principal: Principal, name: str) -> None:
        self._store.delete_endpoint(principal.tenant_id, name)
        self.controller.notify()

    def status(self, endpoint: Endpoint) -> EndpointState | None:
        return self.controller.state_of(endpoint.tenant_id, endpoint.name)

    def task_of(self, principal: Principal, endpoint: Endpoint) -> str | None:
        state = self.status(endpoint)
        if state is not None and state.main is not None:
            return state.main.version.task
        try:
            return self._store.resolve_model_ref(principal.tenant_id, parse_model_ref(endpoint.ref)).task
        except Exception:  # a missing alias shows up in the status; the task is just unknown then
            return None

    # -- helpers -------------------------------------------------------------------------------
    def _check_servable(self, principal: Principal, ref: ModelRef) -> None:
        version = self._store.resolve_model_ref(principal.tenant_id, ref)
        source = ModelSource(path=None, format=version.format, task=version.task)  # type: ignore[arg-type]
        runtime_kind(source)  # InvalidInput when nothing serves this format and task

    def _with_canary(self, principal: Principal, endpoint: Endpoint, canary: dict[str, Any] | None) -> Endpoint:
        if canary is None:
            return endpoint
        ref = parse_model_ref(canary["model"], param="canary.model")
        if ref.name != endpoint.model_name:
            raise InvalidInput(f"a canary must be a version of {endpoint.model_name!r}, not of {ref.name!r}",
                               param="canary.model")
        self._check_servable(principal, ref)
        return endpoint.with_changes(canary_selector=selector_of(ref), canary_weight=float(canary["weight"]))
