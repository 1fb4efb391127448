"""TenantService on the in-memory store: keys, scopes, expiry, revocation, operator rights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aimaas.domain import Scope
from aimaas.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from aimaas.services.tenants import KEY_PREFIX, TenantService, hash_key
from aimaas.storage.memory import MemoryMetadataStore


@pytest.fixture
def service() -> TenantService:
    return TenantService(MemoryMetadataStore())


def test_bootstrap_once_and_authenticate(service: TenantService) -> None:
    secret = service.bootstrap()
    assert secret is not None and secret.startswith(KEY_PREFIX) and len(secret) > 40
    assert service.bootstrap() is None
    principal = service.authenticate(secret)
    assert principal.is_operator and principal.tenant.name == "default"
    assert principal.key.key_hash == hash_key(secret) and secret not in repr(principal)


@pytest.mark.parametrize("secret", [None, "", "Bearer", "amk_wrong", "x" * 500, "amk_" + "a" * 300])
def test_unknown_or_malformed_keys_are_unauthorized(service: TenantService, secret: str | None) -> None:
    service.bootstrap()
    with pytest.raises(Unauthorized):
        service.authenticate(secret)


def test_scopes_expiry_and_revocation(service: TenantService) -> None:
    admin = service.authenticate(service.bootstrap())
    key, secret = service.create_key(admin, name="w", scopes=["write"])
    writer = service.authenticate(secret)
    assert writer.can(Scope.WRITE) and writer.can(Scope.READ)
    assert not writer.can(Scope.ADMIN) and not writer.can(Scope.PREDICT)
    with pytest.raises(Forbidden):
        service.create_key(writer, name="x", scopes=["read"])
    service.revoke_key(admin, key.id)
    with pytest.raises(Unauthorized) as exc:
        service.authenticate(secret)
    assert exc.value.code == "revoked_api_key"
    with pytest.raises(InvalidInput):
        service.create_key(admin, name="x", scopes=["read"], expires_at=datetime.now(UTC) - timedelta(1))
    with pytest.raises(InvalidInput):
        service.create_key(admin, name="x", scopes=["read"], expires_at=datetime(2100, 1, 1))  # no timezone


def test_tenant_admin_is_not_operator(service: TenantService) -> None:
    operator = service.authenticate(service.bootstrap())
    school = service.create_tenant(operator, "school")
    _, secret = service.create_key(operator, name="a", scopes=["admin"], tenant_id=school.id)
    school_admin = service.authenticate(secret)
    assert not school_admin.is_operator and school_admin.tenant_id == school.id
    with pytest.raises(Forbidden):
        service.create_tenant(school_admin, "other")
    with pytest.raises(NotFound):  # other tenants are invisible, not forbidden
        service.create_key(school_admin, name="a", scopes=["read"], tenant_id=operator.tenant_id)
    with pytest.raises(NotFound):
        service.revoke_key(school_admin, operator.key.id)
    assert [k.tenant_id for k in service.list_keys(school_admin, tenant_id=None, limit=10, after=None)] == [school.id]
