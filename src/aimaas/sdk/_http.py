"""HTTP plumbing shared by the sync and async clients: errors, streaming bodies, atomic downloads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
from pydantic import ValidationError

from aimaas.errors import AimaasError, ServiceUnavailable, error_class_for
from aimaas.schemas import ErrorBody

__all__ = [
    "CHUNK_SIZE",
    "ProgressCallback",
    "aiter_file",
    "atomic_file",
    "download_target",
    "error_from_response",
    "expected_size",
    "iter_file",
    "read_answer",
    "transport_error",
    "unexpected_answer",
    "user_agent",
]

T = TypeVar("T")

CHUNK_SIZE = 1024 * 1024
ProgressCallback = Callable[[int, int], Any]
"""Called as ``progress(bytes_done, total_bytes)`` while a file moves."""


def user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"aimaas-sdk/{version('aimaas')} httpx/{httpx.__version__}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return f"aimaas-sdk httpx/{httpx.__version__}"


def _annotate(error: AimaasError, status: int | None, request_id: str | None) -> AimaasError:
    # The error tree has no transport fields; the SDK adds them to the instance.
    setattr(error, "status_code", status)  # noqa: B010
    setattr(error, "request_id", request_id)  # noqa: B010
    return error


def _fallback_detail(response: httpx.Response) -> tuple[str, str | None]:
    """A message (and param) for an error answer that lacks the envelope, e.g. from a proxy."""
    with contextlib.suppress(ValueError):
        detail = response.json().get("detail")
        if isinstance(detail, str):
            return detail, None
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            parts = [f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', '')}" for d in detail]
            loc = detail[0].get("loc") or [None]
            return "; ".join(parts), (str(loc[-1]) if loc[-1] is not None else None)
    text = response.text.strip()[:300]
    request = response.request
    where = f"{request.method} {request.url.path}"
    summary = f"HTTP {response.status_code} {response.reason_phrase} from {where}"
    return (f"{summary}: {text}" if text else summary), None


def error_from_response(response: httpx.Response) -> AimaasError:
    """The :mod:`aimaas.errors` exception for a non-2xx answer (its body must have been read)."""
    status = response.status_code
    code: str | None = None
    param: str | None = None
    try:
        detail = ErrorBody.model_validate_json(response.content).error
        message, code, param = detail.message, detail.code, detail.param
    except ValidationError:
        message, param = _fallback_detail(response)
    headers = {k: v for k, v in response.headers.items() if k.lower() == "retry-after"}
    error = error_class_for(status, code)(message, code=code, param=param, headers=headers)
    return _annotate(error, status, response.headers.get("x-request-id"))


def transport_error(url: str, exc: httpx.TransportError) -> ServiceUnavailable:
    """A clear error naming the server when the network fails (nothing answered, or too late)."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        message = f"the aimaas server at {url} did not answer in time ({reason}); try again or raise the timeout"
        code = "timeout"
    else:
        message = (
            f"cannot reach the aimaas server at {url} ({reason}); check the URL "
            "(--url / AIMAAS_URL) and that the server is running (`aimaas serve`)"
        )
        code = "connection_error"
    error = ServiceUnavailable(message, code=code)
    _annotate(error, None, None)
    return error


def unexpected_answer(response: httpx.Response, exc: Exception) -> AimaasError:
    """The server answered 2xx with a body this SDK cannot read (usually a version mismatch)."""
    request = response.request
    error = AimaasError(
        f"unexpected answer to {request.method} {request.url.path}: {exc}; "
        "is the server the same aimaas version as this client?",
        code="unexpected_response",
    )
    return _annotate(error, response.status_code, response.headers.get("x-request-id"))


def iter_file(path: Path, total: int, progress: ProgressCallback | None) -> Iterator[bytes]:
    """Yield the file in 1 MiB chunks (never whole), reporting ``progress(sent, total)`` after each."""
    sent = 0
    if progress is not None:
        progress(0, total)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk
            sent += len(chunk)
            if progress is not None:
                progress(sent, total)


async def aiter_file(path: Path, total: int, progress: ProgressCallback | None) -> AsyncIterator[bytes]:
    """Async twin of :func:`iter_file`; disk reads run in a thread so the event loop keeps going."""
    sent = 0
    if progress is not None:
        progress(0, total)
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
            yield chunk
            sent += len(chunk)
            if progress is not None:
                progress(sent, total)
    finally:
        handle.close()


_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


def download_target(dest: str | os.PathLike[str], response: httpx.Response, default_name: str) -> Path:
    """Where a download goes: ``dest`` itself, or inside it when it is a folder (named by the server)."""
    target = Path(dest).expanduser()
    if str(dest).endswith(("/", os.sep)):  # "out/" names a folder, even one that does not exist yet
        target.mkdir(parents=True, exist_ok=True)
    if not target.is_dir():
        return target
    from urllib.parse import unquote

    match = _FILENAME.search(response.headers.get("content-disposition", ""))
    name = Path(unquote(match.group(1))).name if match else ""
    return target / (name if name not in ("", ".", "..") else default_name)


def expected_size(response: httpx.Response) -> int:
    """The decoded size of a download when the server tells it (0 when unknown or compressed)."""
    if response.headers.get("content-encoding", "identity") != "identity":
        return 0
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else 0


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[IO[bytes]]:
    """Write to a hidden temporary file next to ``target`` and rename it into place only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_answer(response: httpx.Response, parse: Callable[[httpx.Response], T]) -> T:
    """Raise the matching error for a non-2xx answer, else parse the body (the body must have been read)."""
    if response.is_error:
        raise error_from_response(response)
    try:
        return parse(response)
    except ValueError as exc:  # pydantic's ValidationError and JSON decoding errors both are ValueErrors
        raise unexpected_answer(response, exc) from exc
