"""Tenants, API keys and authentication.

Keys are ``amk_`` + 43 url-safe random characters (256 bits). Only their sha256 is stored: a key
that random needs no slow hash, and lookup by hash keeps authentication one indexed query.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime

from aimaas.domain import ApiKey, Principal, Scope, Tenant, new_id, utcnow
from aimaas.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from aimaas.storage.base import MetadataStore

__all__ = ["KEY_PREFIX", "OPERATOR_TENANT", "TenantService", "hash_key", "system_principal"]

KEY_PREFIX = "amk_"
OPERATOR_TENANT = "default"
_VALID_SCOPES = {s.value for s in Scope}


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class TenantService:
    """Creates tenants and keys and turns a presented key into a :class:`Principal`.

    The tenant named ``default`` is the operator's: its admin keys may manage every tenant.
    """

    def __init__(self, store: MetadataStore, *, auth_cache_s: float = 0.0) -> None:
        self._store = store
        #: Seconds a successful authentication is remembered (0: never). A key revoked through this server is
        #: forgotten at once; one revoked through another server keeps working here for at most this long.
        self.auth_cache_s = auth_cache_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    # -- authentication ----------------------------------------------------------------------
    def cached_principal(self, secret: str | None) -> Principal | None:
        """The principal for ``secret`` if it was authenticated within ``auth_cache_s`` and is still active;
        None otherwise (then call :meth:`authenticate`). Never touches the database."""
        if not self.auth_cache_s or not secret or not secret.startswith(KEY_PREFIX) or len(secret) > 200:
            return None
        entry = self._cache.get(hash_key(secret))
        if entry is None or time.monotonic() - entry[0] > self.auth_cache_s:
            return None
        principal = entry[1]
        return principal if principal.key.is_active(utcnow()) else None

    def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
            raise Unauthorized("invalid API key")
        digest = hash_key(secret)
        key = self._store.find_api_key_by_hash(digest)
        # compare_digest keeps the final check constant-time even though lookup is by index.
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            raise Unauthorized("invalid API key")
        if key.revoked_at is not None:
            raise Unauthorized("this API key was revoked", code="revoked_api_key")
        if not key.is_active(utcnow()):
            raise Unauthorized("this API key has expired", code="expired_api_key")
        tenant = self._store.get_tenant(key.tenant_id)
        principal = Principal(tenant=tenant, key=key, is_operator=tenant.name == OPERATOR_TENANT)
        if self.auth_cache_s:
            if len(self._cache) > 10_000:  # bounded: a flood of distinct valid keys just restarts the cache
                self._cache.clear()
            self._cache[digest] = (time.monotonic(), principal)
        return principal

    # -- tenants -----------------------------------------------------------------------------
    def create_tenant(self, principal: Principal, name: str) -> Tenant:
        self._require_operator(principal)
        return self._store.create_tenant(Tenant(id=new_id("ten"), name=name, created_at=utcnow()))

    def list_tenants(self, principal: Principal, *, limit: int, after: str | None) -> list[Tenant]:
        self._require_operator(principal)
        return self._store.list_tenants(limit=limit, after=after)

    def operator_tenant(self) -> Tenant:
        tenant = self._store.get_tenant_by_name(OPERATOR_TENANT)
        if tenant is None:
            raise NotFound("the operator tenant does not exist yet; start the server once")
        return tenant

    def get_tenant(self, principal: Principal, tenant_id: str) -> Tenant:
        if tenant_id == principal.tenant_id:
            return principal.tenant
        self._require_operator(principal)
        return self._store.get_tenant(tenant_id)

    # -- keys --------------------------------------------------------------------------------
    def create_key(
        self,
        principal: Principal,
        *,
        name: str,
        scopes: list[str],
        expires_at: datetime | None = None,
        tenant_id: str | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key; returns the stored key and its secret (the only time the secret exists)."""
        self._require_admin(principal)
        target = self._target_tenant(principal, tenant_id)
        unknown = sorted(set(scopes) - _VALID_SCOPES)
        if unknown:
            raise InvalidInput(
                f"unknown scope(s) {', '.join(unknown)}; use any of {', '.join(sorted(_VALID_SCOPES))}",
                param="scopes",
            )
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidInput("expires_at needs a timezone, e.g. 2030-01-01T00:00:00Z", param="expires_at")
            if expires_at <= utcnow():
                raise InvalidInput("expires_at is in the past", param="expires_at")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=new_id("key"),
            tenant_id=target,
            name=name,
            prefix=secret[:12],
            key_hash=hash_key(secret),
            scopes=frozenset(scopes),
            created_at=utcnow(),
            expires_at=expires_at,
        )
        return self._store.create_api_key(key), secret

    def list_keys(self, principal: Principal, *, tenant_id: str | None, limit: int, after: str | None) -> list[ApiKey]:
        self._require_admin(principal)
        return self._store.list_api_keys(self._target_tenant(principal, tenant_id), limit=limit, after=after)

    def revoke_key(self, principal: Principal, key_id: str, *, tenant_id: str | None = None) -> ApiKey:
        self._require_admin(principal)
        revoked = self._store.revoke_api_key(self._target_tenant(principal, tenant_id), key_id, utcnow())
        self._cache.clear()  # the revoked key must stop working here at once
        return revoked

    # -- bootstrap ---------------------------------------------------------------------------
    def bootstrap(self) -> str | None:
        """On a fresh database create the operator tenant and an admin key; return its secret.

        Returns None when the operator tenant already exists (the key was shown on first start).
        """
        if self._store.get_tenant_by_name(OPERATOR_TENANT) is not None:
            return None
        try:
            tenant = self._store.create_tenant(Tenant(id=new_id("ten"), name=OPERATOR_TENANT, created_at=utcnow()))
        except Conflict:  # another process bootstrapped at the same moment
            return None
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        self._store.create_api_key(
            ApiKey(
                id=new_id("key"),
                tenant_id=tenant.id,
                name="admin (created at first start)",
                prefix=secret[:12],
                key_hash=hash_key(secret),
                scopes=frozenset({Scope.ADMIN.value}),
                created_at=utcnow(),
            )
        )
        return secret

    # -- helpers -----------------------------------------------------------------------------
    def _target_tenant(self, principal: Principal, tenant_id: str | None) -> str:
        if tenant_id is None or tenant_id == principal.tenant_id:
            return principal.tenant_id
        if not principal.is_operator:
            # Same answer as a missing tenant: no enumeration of other tenants.
            raise NotFound(f"tenant {tenant_id!r} not found", param="tenant_id")
        return self._store.get_tenant(tenant_id).id

    @staticmethod
    def _require_admin(principal: Principal) -> None:
        if not principal.can(Scope.ADMIN):
            raise Forbidden("this action needs a key with the 'admin' scope")

    @staticmethod
    def _require_operator(principal: Principal) -> None:
        if not (principal.is_operator and principal.can(Scope.ADMIN)):
            raise Forbidden(f"managing tenants needs an admin key of the '{OPERATOR_TENANT}' tenant")


def system_principal(tenant: Tenant) -> Principal:
    """An in-process admin principal for ``tenant`` (demo seeding, maintenance); it has no secret and no row."""
    key = ApiKey(
        id="key_system",
        tenant_id=tenant.id,
        name="system",
        prefix="",
        key_hash="",
        scopes=frozenset({Scope.ADMIN.value}),
        created_at=tenant.created_at,
    )
    return Principal(tenant=tenant, key=key, is_operator=tenant.name == OPERATOR_TENANT)
