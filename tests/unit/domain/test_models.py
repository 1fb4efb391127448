from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aimaas.domain import ApiKey, Scope, new_id


def test_ids_sort_by_creation_and_are_unique() -> None:
    ids = [new_id("ds") for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert all(i.startswith("ds_") and len(i) == 3 + 25 for i in ids)
    assert ids[0] <= ids[-1]


def test_scope_implications() -> None:
    assert Scope.grants(frozenset({"admin"}), Scope.PREDICT)
    assert Scope.grants(frozenset({"write"}), Scope.READ)
    assert not Scope.grants(frozenset({"read"}), Scope.WRITE)
    assert not Scope.grants(frozenset({"predict"}), Scope.READ)


def test_key_activity() -> None:
    now = datetime.now(UTC)
    key = ApiKey(id="k", tenant_id="t", name="n", prefix="p", key_hash="h", scopes=frozenset(), created_at=now,
                 expires_at=now + timedelta(seconds=1))
    assert key.is_active(now) and not key.is_active(now + timedelta(seconds=2))
