"""Construction details shared by :class:`Client` and :class:`AsyncClient`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import httpx

from aimaas.errors import InvalidInput
from aimaas.schemas import Page
from aimaas.sdk._http import user_agent
from aimaas.sdk._login import resolve_connection

__all__ = ["aiterate_pages", "base_headers", "iterate_pages", "make_client_args", "upload_timeout"]

T = TypeVar("T")


def iterate_pages(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a paged listing: ``fetch(cursor)`` returns one page; cursors are followed to the end."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


async def aiterate_pages(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    """:func:`iterate_pages` for the async client."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for item in page.items:
            yield item
        if not page.next_cursor:
            return
        cursor = page.next_cursor

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
