"""Endpoints: deploy a model version (or an alias that is followed), change, remove, watch; and predict."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from aimaas.api.deps import Paging, Predict, Read, ServicesDep, Write
from aimaas.domain import Endpoint, Principal
from aimaas.schemas import (
    CanarySpec,
    EndpointCreate,
    EndpointPublic,
    EndpointStatus,
    EndpointUpdate,
    Page,
    PredictRequest,
    ReplicaStatus,
)
from aimaas.services.container import Services
from aimaas.services.inference import rows_from

router = APIRouter(prefix="/api/v1/endpoints", tags=["endpoints"])

Name = Annotated[str, Path(max_length=63, description="endpoint name")]
VERSION_HEADER = "x-aimaas-model-version"


def endpoint_public(services: Services, principal: Principal, endpoint: Endpoint) -> EndpointPublic:
    state = services.endpoints.status(endpoint)
    if state is None:
        status = EndpointStatus(state="loading")
    else:
        replicas = [ReplicaStatus(id=r.id, version=r.version, state=r.state, ongoing=r.ongoing,  # type: ignore[arg-type]
                                  served=r.served)
                    for g in state.groups() for r in g.replicas]
        status = EndpointStatus(state=state.state, reason=state.reason,  # type: ignore[arg-type]
                                version=state.main.version.version if state.main else None,
                                canary_version=state.canary.version.version if state.canary else None,
                                replicas=replicas)
    canary = (CanarySpec(model=endpoint.canary_ref, weight=endpoint.canary_weight)
              if endpoint.canary_ref is not None else None)
    return EndpointPublic(
        name=endpoint.name, model=endpoint.ref, canary=canary, task=services.endpoints.task_of(principal, endpoint),
        min_replicas=endpoint.min_replicas, max_replicas=endpoint.max_replicas,
        max_batch_size=endpoint.max_batch_size, max_wait_ms=endpoint.max_wait_ms,
        idle_timeout_s=endpoint.idle_timeout_s, target_ongoing_requests=endpoint.target_ongoing_requests,
        description=endpoint.description, status=status, created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


@router.post("", status_code=201, response_model=EndpointPublic, summary="Deploy a model as an endpoint")
def create_endpoint(body: EndpointCreate, services: ServicesDep, principal: Principal = Write) -> EndpointPublic:
    endpoint = services.endpoints.create(principal, body.model_dump())
    return endpoint_public(services, principal, endpoint)


@router.get("", response_model=Page[EndpointPublic])
def list_endpoints(services: ServicesDep, paging: Annotated[Paging, Depends()], principal: Principal = Read) -> dict:
    items = services.endpoints.list(principal, limit=paging.fetch, after=paging.cursor)
    return paging.page(items, lambda e: endpoint_public(services, principal, e))


@router.get("/{name}", response_model=EndpointPublic)
def get_endpoint(name: Name, services: ServicesDep, principal: Principal = Read) -> EndpointPublic:
    return endpoint_public(services, principal, services.endpoints.get(principal, name))


@router.patch("/{name}", response_model=EndpointPublic, summary="Change the version, canary or settings")
def update_endpoint(name: Name, body: EndpointUpdate, services: ServicesDep,
                    principal: Principal = Write) -> EndpointPublic:
    endpoint = services.endpoints.update(principal, name, body.model_dump())
    return endpoint_public(services, principal, endpoint)


@router.delete("/{name}", status_code=204, response_class=Response)
def delete_endpoint(name: Name, services: ServicesDep, principal: Principal = Write) -> Response:
    services.endpoints.delete(principal, name)
    return Response(status_code=204)


@router.post("/{name}/predict", summary="Predict rows with the endpoint's model",
             responses={200: {"description": "`{predictions, model, version, endpoint}`; header "
                              "`x-aimaas-model-version` names the version that answered"}})
async def predict(name: Name, body: PredictRequest, services: ServicesDep, principal: Principal = Predict) -> Response:
    rows = rows_from(body.inputs)
    predictions, answered = await services.inference.predict(principal, name, rows)
    # Built by hand: this is the hot path, and the dicts are plain JSON already (no response model to validate).
    payload = json.dumps({"predictions": [p.to_dict() for p in predictions], "model": answered.model,
                          "version": answered.version, "endpoint": name}, separators=(",", ":"))
    return Response(payload, media_type="application/json", headers={VERSION_HEADER: answered.ref})

