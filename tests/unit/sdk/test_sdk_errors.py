"""The SDK's own error plumbing: error envelopes and network failures become aimaas.errors classes.

``httpx.MockTransport`` fakes the network here, never the server's behaviour (that is tested for real in
tests/integration/test_sdk.py).
"""

from __future__ import annotations

import socket

import httpx
import pytest

from aimaas import errors
from aimaas.sdk import AsyncClient, Client

URL = "http://aimaas.test:8000"


def envelope(status: int, code: str, message: str = "it went wrong", param: str | None = None) -> httpx.Response:
    body = {"error": {"message": message, "type": "whatever", "code": code, "param": param}}
    return httpx.Response(status, json=body, headers={"x-request-id": "req-123"})


CASES = [
    (400, "bad_request", errors.BadRequest),
    (401, "invalid_api_key", errors.Unauthorized),
    (403, "insufficient_scope", errors.Forbidden),
    (404, "not_found", errors.NotFound),
    (409, "dataset_in_use", errors.Conflict),
    (413, "payload_too_large", errors.PayloadTooLarge),
    (415, "unsupported_format", errors.UnsupportedMediaType),
    (422, "malformed_csv", errors.InvalidInput),
    (429, "rate_limit_exceeded", errors.RateLimited),
    (429, "insufficient_quota", errors.QuotaExceeded),
    (503, "storage_error", errors.ServiceUnavailable),
    (503, "schema_too_new", errors.SchemaTooNew),
    (500, "internal_error", errors.AimaasError),
]


@pytest.mark.parametrize(("status", "code", "expected"), CASES)
def test_error_envelope_maps_to_the_error_class(status: int, code: str, expected: type[errors.AimaasError]) -> None:
    transport = httpx.MockTransport(lambda request: envelope(status, code, "bad rows", param="file"))
    with Client(URL, api_key="k", transport=transport) as client, pytest.raises(expected) as caught:
        client.datasets.get("answers")
    error = caught.value
    assert type(error) is expected
    assert (error.message, error.code, error.param) == ("bad rows", code, "file")
    assert getattr(error, "status_code") == status  # noqa: B009
    assert getattr(error, "request_id") == "req-123"  # noqa: B009


async def test_async_client_maps_errors_the_same_way() -> None:
    transport = httpx.MockTransport(lambda request: envelope(404, "not_found", "no dataset 'x'"))
    async with AsyncClient(URL, api_key="k", transport=transport) as client:
        with pytest.raises(errors.NotFound, match="no dataset 'x'") as caught:
            await client.datasets.stats("x")
    assert caught.value.code == "not_found"


def test_retry_after_is_kept_in_headers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        response = envelope(429, "rate_limit_exceeded")
        response.headers["Retry-After"] = "7"
        return response

    client = Client(URL, api_key="k", transport=httpx.MockTransport(handler))
    with client, pytest.raises(errors.RateLimited) as caught:
        client.whoami()
    assert caught.value.headers == {"retry-after": "7"}


def test_an_answer_without_the_envelope_still_raises_a_clear_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="Bad gateway from the proxy"))
    with Client(URL, api_key="k", transport=transport) as client, pytest.raises(errors.AimaasError) as caught:
        client.datasets.list()
    assert "HTTP 502" in caught.value.message
    assert "Bad gateway from the proxy" in caught.value.message


def test_a_validation_detail_without_the_envelope_names_the_field() -> None:
    detail = {"detail": [{"loc": ["query", "limit"], "msg": "too big", "type": "x"}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(422, json=detail))
    with Client(URL, api_key="k", transport=transport) as client, pytest.raises(errors.InvalidInput) as caught:
        client.datasets.list(limit=5000)
    assert caught.value.param == "limit"
    assert "too big" in caught.value.message


def test_an_unreadable_success_answer_is_reported_not_crashed_on() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"unexpected": True}))
    with Client(URL, api_key="k", transport=transport) as client, pytest.raises(errors.AimaasError) as caught:
        client.whoami()
    assert caught.value.code == "unexpected_response"


def test_connection_failure_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client = Client(URL, api_key="k", transport=httpx.MockTransport(refuse))
    with client, pytest.raises(errors.ServiceUnavailable) as caught:
        client.health()
    assert URL in caught.value.message
    assert caught.value.code == "connection_error"
    assert caught.value.__cause__ is None  # no httpx traceback chained in front of the user


def test_a_real_closed_port_raises_service_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with Client(url, api_key="k", timeout=5) as client, pytest.raises(errors.ServiceUnavailable, match=url):
        client.whoami()


async def test_async_timeout_raises_service_unavailable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with AsyncClient(URL, api_key="k", transport=httpx.MockTransport(slow)) as client:
        with pytest.raises(errors.ServiceUnavailable) as caught:
            await client.whoami()
    assert caught.value.code == "timeout"
    assert URL in caught.value.message


def test_requests_carry_the_key_and_a_user_agent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok"})

    with Client(URL, api_key="secret", transport=httpx.MockTransport(handler)) as client:
        assert client.health() == {"status": "ok"}
    assert seen[0].headers["authorization"] == "Bearer secret"
    assert seen[0].headers["user-agent"].startswith("aimaas-sdk")
    assert "secret" not in repr(client)


def test_path_segments_are_quoted() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return envelope(404, "not_found")

    client = Client(URL, api_key="k", transport=httpx.MockTransport(handler))
    with client, pytest.raises(errors.NotFound):
        client.datasets.preview("a/b", version=3, offset=5, limit=7)
    assert seen == ["/api/v1/datasets/a%2Fb/versions/3/preview?offset=5&limit=7"]


def test_a_bad_url_is_invalid_input() -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        Client("ftp://example.com", api_key="k")
    assert caught.value.param == "url"
