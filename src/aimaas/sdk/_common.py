"""Construction details shared by :class:`Client` and :class:`AsyncClient`."""

from __future__ import annotations

import httpx

from aimaas.errors import InvalidInput
from aimaas.sdk._http import user_agent
from aimaas.sdk._login import resolve_connection

__all__ = ["base_headers", "make_client_args", "upload_timeout"]

# Uploads wait for the server to check the whole file before it answers; give that time.
_MIN_UPLOAD_READ_TIMEOUT = 600.0


def make_client_args(url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The server URL (checked) and API key a new client uses."""
    resolved, key = resolve_connection(url, api_key)
    try:
        parsed = httpx.URL(resolved)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"invalid server URL {resolved!r}: {exc}", param="url") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput(f"invalid server URL {resolved!r}: use http(s)://host[:port]", param="url")
    return resolved, key


def base_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": user_agent(), "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def upload_timeout(timeout: float) -> httpx.Timeout:
    return httpx.Timeout(timeout, read=max(timeout, _MIN_UPLOAD_READ_TIMEOUT))
