"""Tenants, API keys and whoami."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from aimaas.api.deps import Admin, Paging, ServicesDep, authenticated
from aimaas.domain import ApiKey, Principal, Tenant
from aimaas.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Page, TenantCreate, TenantPublic, WhoAmI

router = APIRouter(prefix="/api/v1", tags=["tenants and keys"])


def tenant_public(t: Tenant) -> TenantPublic:
    return TenantPublic(id=t.id, name=t.name, created_at=t.created_at)


def key_public(k: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=k.id,
        tenant_id=k.tenant_id,
        name=k.name,
        prefix=k.prefix,
        scopes=sorted(k.scopes),
        created_at=k.created_at,
        expires_at=k.expires_at,
        revoked_at=k.revoked_at,
    )


@router.get("/whoami", response_model=WhoAmI)
def whoami(principal: Annotated[Principal, Depends(authenticated)]) -> WhoAmI:
    return WhoAmI(tenant=tenant_public(principal.tenant), key=key_public(principal.key))


@router.post("/tenants", status_code=201, response_model=TenantPublic)
def create_tenant(body: TenantCreate, services: ServicesDep, principal: Principal = Admin) -> TenantPublic:
    return tenant_public(services.tenants.create_tenant(principal, body.name))


@router.get("/tenants", response_model=Page[TenantPublic])
def list_tenants(services: ServicesDep, paging: Annotated[Paging, Depends()], principal: Principal = Admin) -> dict:
    items = services.tenants.list_tenants(principal, limit=paging.fetch, after=paging.cursor)
    return paging.page(items, tenant_public)


@router.get("/tenants/{tenant_id}", response_model=TenantPublic)
def get_tenant(
    tenant_id: Annotated[str, Path(max_length=100)], services: ServicesDep, principal: Principal = Admin
) -> TenantPublic:
    return tenant_public(services.tenants.get_tenant(principal, tenant_id))


@router.post("/keys", status_code=201, response_model=ApiKeyCreated)
def create_key(body: ApiKeyCreate, services: ServicesDep, principal: Principal = Admin) -> ApiKeyCreated:
    key, secret = services.tenants.create_key(
        principal, name=body.name, scopes=body.scopes, expires_at=body.expires_at, tenant_id=body.tenant_id
    )
    return ApiKeyCreated(**key_public(key).model_dump(), key=secret)


@router.get("/keys", response_model=Page[ApiKeyPublic])
def list_keys(
    services: ServicesDep,
    paging: Annotated[Paging, Depends()],
    tenant_id: Annotated[str | None, Query(max_length=100)] = None,
    principal: Principal = Admin,
) -> dict:
    items = services.tenants.list_keys(principal, tenant_id=tenant_id, limit=paging.fetch, after=paging.cursor)
    return paging.page(items, key_public)


@router.delete("/keys/{key_id}", response_model=ApiKeyPublic)
def revoke_key(
    key_id: Annotated[str, Path(max_length=100)],
    services: ServicesDep,
    tenant_id: Annotated[str | None, Query(max_length=100)] = None,
    principal: Principal = Admin,
) -> ApiKeyPublic:
    return key_public(services.tenants.revoke_key(principal, key_id, tenant_id=tenant_id))
