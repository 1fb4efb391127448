"""Tenants and API keys on the wire."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

__all__ = ["ApiKeyCreate", "ApiKeyCreated", "ApiKeyPublic", "TenantCreate", "TenantPublic", "WhoAmI"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class TenantCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, description="lower-case letters, digits, '.', '_' or '-'")


class TenantPublic(BaseModel):
    id: str
    name: str
    created_at: datetime


class ApiKeyCreate(BaseModel):
    name: str = Field(default="key", min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=lambda: ["read"], min_length=1)
    expires_at: datetime | None = None
    tenant_id: str | None = Field(
        default=None, description="admin only: create the key in another tenant (defaults to your own)"
    )


class ApiKeyPublic(BaseModel):
    id: str
    tenant_id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyPublic):
    """Returned once, at creation: ``key`` is the secret and is never shown again."""

    key: str


class WhoAmI(BaseModel):
    tenant: TenantPublic
    key: ApiKeyPublic
