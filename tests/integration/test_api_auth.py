"""Auth, tenants, keys, probes and the error envelope against a real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import LiveServer


def assert_envelope(resp: httpx.Response, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "code", "param"}
    assert err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err


def test_probes_need_no_key(live_server: LiveServer) -> None:
    assert httpx.get(f"{live_server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{live_server.url}/readyz").json() == {"status": "ready"}


def test_every_api_route_needs_a_key(live_server: LiveServer) -> None:
    spec = httpx.get(f"{live_server.url}/openapi.json").status_code
    assert spec == 401  # even the spec: it lists the tenant-facing surface
    for path in ("/api/v1/datasets", "/api/v1/whoami", "/api/v1/keys", "/metrics", "/api/v1/tenants"):
        err = assert_envelope(httpx.get(f"{live_server.url}{path}"), 401, "invalid_api_key")
        assert "Bearer" in err["message"]


def test_bad_key_is_401_and_never_echoed(live_server: LiveServer) -> None:
    bogus = "amk_" + "x" * 43
    resp = httpx.get(f"{live_server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {bogus}"})
    assert_envelope(resp, 401, "invalid_api_key")
    assert bogus not in resp.text
    assert bogus not in live_server.log()


def test_whoami_and_request_id(admin: httpx.Client) -> None:
    resp = admin.get("/api/v1/whoami", headers={"x-request-id": "my-trace-1"})
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "my-trace-1"
    body = resp.json()
    assert body["tenant"]["name"] == "default"
    assert body["key"]["scopes"] == ["admin"]
    assert "key_hash" not in resp.text
    generated = admin.get("/api/v1/whoami", headers={"x-request-id": "bad id\twith tab"}).headers["x-request-id"]
    assert generated != "bad id\twith tab" and len(generated) == 16


def test_admin_key_file_is_private(live_server: LiveServer) -> None:
    mode = (live_server.home / "admin.key").stat().st_mode & 0o777
    assert mode == 0o600


def test_key_lifecycle_scopes_and_revocation(live_server: LiveServer, admin: httpx.Client) -> None:
    created = admin.post("/api/v1/keys", json={"name": "reader", "scopes": ["read"]})
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    key_id = created.json()["id"]
    listed = admin.get("/api/v1/keys").json()["items"]
    assert any(k["id"] == key_id for k in listed)
    assert all("key" not in k for k in listed)  # the secret is shown once only
    with live_server.client(secret) as reader:
        assert reader.get("/api/v1/datasets").status_code == 200
        err = assert_envelope(reader.post("/api/v1/keys", json={"scopes": ["read"]}), 403, "insufficient_scope")
        assert "admin" in err["message"]
        assert_envelope(reader.get("/metrics"), 403)
        revoked = admin.delete(f"/api/v1/keys/{key_id}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert_envelope(reader.get("/api/v1/datasets"), 401, "revoked_api_key")


def test_expired_key_and_bad_scope(live_server: LiveServer, admin: httpx.Client) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert_envelope(admin.post("/api/v1/keys", json={"scopes": ["read"], "expires_at": past}), 422)
    err = assert_envelope(admin.post("/api/v1/keys", json={"scopes": ["root"]}), 422)
    assert err["param"] == "scopes" and "root" in err["message"]
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    secret = admin.post("/api/v1/keys", json={"scopes": ["read"], "expires_at": soon}).json()["key"]
    with live_server.client(secret) as c:
        assert c.get("/api/v1/whoami").status_code == 200
        import time

        time.sleep(2.2)
        assert_envelope(c.get("/api/v1/whoami"), 401, "expired_api_key")


def test_tenants_are_isolated(live_server: LiveServer, admin: httpx.Client, unique_name: str) -> None:
    tenant = admin.post("/api/v1/tenants", json={"name": unique_name.lower()[:60]})
    assert tenant.status_code == 201, tenant.text
    tid = tenant.json()["id"]
    assert_envelope(admin.post("/api/v1/tenants", json={"name": unique_name.lower()[:60]}), 409)
    other = admin.post("/api/v1/keys", json={"scopes": ["admin"], "tenant_id": tid}).json()["key"]
    upload = admin.post(
        f"/api/v1/datasets/{unique_name}/versions",
        params={"filename": "a.csv"},
        content=b"x,y\n1,2\n3,4\n",
        headers={"content-type": "application/octet-stream"},
    )
    assert upload.status_code == 201, upload.text
    with live_server.client(other) as c:
        # another tenant's dataset answers 404, exactly like a missing one
        missing = c.get("/api/v1/datasets/no-such-dataset")
        foreign = c.get(f"/api/v1/datasets/{unique_name}")
        assert foreign.status_code == missing.status_code == 404
        assert c.get("/api/v1/datasets").json()["items"] == []
        assert_envelope(c.delete(f"/api/v1/datasets/{unique_name}"), 404)
        # a tenant admin is not the operator: no tenant management, no keys elsewhere
        assert_envelope(c.get("/api/v1/tenants"), 403)
        assert_envelope(c.post("/api/v1/keys", json={"scopes": ["read"], "tenant_id": "ten_other"}), 404)
        assert c.get("/api/v1/whoami").json()["tenant"]["id"] == tid
    assert admin.get(f"/api/v1/datasets/{unique_name}").status_code == 200


def test_paging_with_cursor(admin: httpx.Client, unique_name: str) -> None:
    for i in range(3):
        admin.post("/api/v1/tenants", json={"name": f"{unique_name.lower()[:50]}-{i}"})
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = admin.get("/api/v1/tenants", params=params).json()
        assert len(page["items"]) <= 2
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 4
    assert seen == sorted(seen)
    err = assert_envelope(admin.get("/api/v1/tenants", params={"limit": 5000}), 422, "invalid_input")
    assert err["param"] == "limit"


def test_unknown_route_and_metrics(admin: httpx.Client) -> None:
    assert_envelope(admin.get("/api/v1/nope"), 404, "route_not_found")
    text = admin.get("/metrics").text
    assert "aimaas_http_requests_total" in text
    assert 'route="/api/v1/whoami"' in text or 'route="/api/v1/datasets"' in text


def test_openapi_and_docs(admin: httpx.Client) -> None:
    spec = admin.get("/openapi.json").json()
    assert "/api/v1/datasets/{name}/versions" in spec["paths"]
    assert admin.get("/docs").status_code == 200
