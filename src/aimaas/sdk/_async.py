"""The asynchronous client: the same surface as :class:`aimaas.sdk.Client`, awaited."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from aimaas.schemas import (
    ApiKeyCreated,
    ApiKeyPublic,
    DatasetDetail,
    DatasetPublic,
    DatasetStats,
    DatasetVersionPublic,
    EndpointPublic,
    JobPublic,
    Page,
    PreviewPage,
    SplitPublic,
    TenantPublic,
    WhoAmI,
)
from aimaas.sdk import _routes as r
from aimaas.sdk._common import aiterate_pages, base_headers, make_client_args, upload_timeout
from aimaas.sdk._endpoints import AsyncEndpoints, Canary, openai_client
from aimaas.sdk._http import (
    CHUNK_SIZE,
    ProgressCallback,
    aiter_file,
    atomic_file,
    download_target,
    error_from_response,
    expected_size,
    read_answer,
    transport_error,
)
from aimaas.sdk._jobs import AsyncJobs
from aimaas.sdk._models import AsyncModels

__all__ = ["AsyncClient"]

T = TypeVar("T")
PathLike = str | os.PathLike[str]




class Datasets:
    """Datasets of your tenant: upload versions, look at them, split them, download them."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def upload(
        self,
        path: PathLike,
        *,
        name: str,
        format: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> DatasetVersionPublic:
        """Stream a file (1 MiB at a time) as a new version of dataset ``name``; ``progress(sent, total)``."""
        file = Path(path)
        total = file.stat().st_size
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(total)}
        return await self._c._send(
            "POST",
            f"{r.dataset_path(name)}/versions",
            r.parse_version,
            params=r.upload_params(file.name, format),
            content=aiter_file(file, total, progress),
            headers=headers,
            timeout=upload_timeout(self._c.timeout),
        )

    async def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[DatasetPublic]:
        """One page of datasets; pass ``page.next_cursor`` back as ``cursor`` for the next one."""
        return await self._c._run(r.dataset_list(limit, cursor))

    def iter_all(self, *, page_size: int = 100) -> AsyncIterator[DatasetPublic]:
        """Every dataset, following cursors page after page."""
        return aiterate_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    async def get(self, name: str) -> DatasetDetail:
        return await self._c._run(r.dataset_get(name))

    async def versions(
        self, name: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[DatasetVersionPublic]:
        return await self._c._run(r.dataset_versions(name, limit, cursor))

    async def version(self, name: str, version: int | str = "latest") -> DatasetVersionPublic:
        return await self._c._run(r.dataset_version(name, version))

    async def preview(self, name: str, version: int | str = "latest", offset: int = 0, limit: int = 20) -> PreviewPage:
        return await self._c._run(r.dataset_preview(name, version, offset, limit))

    async def stats(self, name: str, version: int | str = "latest") -> DatasetStats:
        return await self._c._run(r.dataset_stats(name, version))

    async def split(
        self,
        name: str,
        *,
        train: float = 0.7,
        validation: float = 0.15,
        test: float = 0.15,
        seed: int = 0,
        stratify_by: str | None = None,
        version: int | None = None,
    ) -> SplitPublic:
        """Split a version (default: the latest) into train/validation/test; the same split is reused."""
        call = r.dataset_split(
            name,
            train=train,
            validation=validation,
            test=test,
            seed=seed,
            stratify_by=stratify_by,
            version=version,
        )
        return await self._c._run(call)

    async def splits(
        self, name: str, version: int | str = "latest", *, limit: int | None = None, cursor: str | None = None
    ) -> Page[SplitPublic]:
        return await self._c._run(r.dataset_splits(name, version, limit, cursor))

    async def download(
        self,
        name: str,
        version: int | str = "latest",
        *,
        dest: PathLike,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Stream the stored file to ``dest`` (a file, or a folder to put it in) and return its path."""
        return await self._c._download(r.download_path(name, version), dest, f"{name}-v{version}", progress)

    async def download_split(self, name: str, split_id: str, version: int | str = "latest", *, dest: PathLike) -> Path:
        """Save a split's assignment (CSV ``row,part``) to ``dest``."""
        path = r.split_download_path(name, version, split_id)
        return await self._c._download(path, dest, f"{name}-v{version}-split-{split_id}.csv", None)

    async def delete(self, name: str) -> None:
        """Delete the dataset and all its versions (409 ``dataset_in_use`` while something refers to it)."""
        await self._c._run(r.dataset_delete(name))


class Tenants:
    """Tenants (needs an admin key of the operator tenant)."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str) -> TenantPublic:
        return await self._c._run(r.tenant_create(name))

    async def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[TenantPublic]:
        return await self._c._run(r.tenant_list(limit, cursor))

    def iter_all(self, *, page_size: int = 100) -> AsyncIterator[TenantPublic]:
        return aiterate_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    async def get(self, tenant_id: str) -> TenantPublic:
        return await self._c._run(r.tenant_get(tenant_id))


class Keys:
    """API keys (needs an admin key)."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
        self,
        *,
        name: str = "key",
        scopes: list[str] | None = None,
        expires_at: datetime | str | None = None,
        tenant_id: str | None = None,
    ) -> ApiKeyCreated:
        """Create a key; ``.key`` of the answer is the secret and is never shown again."""
        return await self._c._run(r.key_create(name, scopes, expires_at, tenant_id))

    async def list(
        self, tenant_id: str | None = None, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[ApiKeyPublic]:
        return await self._c._run(r.key_list(tenant_id, limit, cursor))

    def iter_all(self, tenant_id: str | None = None, *, page_size: int = 100) -> AsyncIterator[ApiKeyPublic]:
        return aiterate_pages(lambda cursor: self.list(tenant_id, limit=page_size, cursor=cursor))

    async def revoke(self, key_id: str, *, tenant_id: str | None = None) -> ApiKeyPublic:
        """Revoke a key; it stops working at once (``tenant_id``: a key of another tenant, operator admin)."""
        return await self._c._run(r.key_revoke(key_id, tenant_id))


class AsyncClient:
    """An asyncio client of an aimaas server (the same methods as :class:`Client`, awaited).

    ``url`` and ``api_key`` default to ``AIMAAS_URL``/``AIMAAS_API_KEY``, then to the file written by
    ``aimaas login``. Every failure raises an :mod:`aimaas.errors` exception. Use it as an async context
    manager or ``await client.close()``.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url, api_key = make_client_args(url, api_key)
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=base_headers(api_key), timeout=timeout, transport=transport
        )
        self.datasets = Datasets(self)
        self.tenants = Tenants(self)
        self.keys = Keys(self)
        self.jobs = AsyncJobs(self)
        self.models = AsyncModels(self)
        self.endpoints = AsyncEndpoints(self)
        self._api_key = api_key  # for openai(); never shown

    def __repr__(self) -> str:
        return f"AsyncClient(url={self.url!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    aclose = close

    async def whoami(self) -> WhoAmI:
        """The tenant and key this client authenticates as."""
        return await self._run(r.whoami())

    async def health(self) -> dict[str, Any]:
        """``{"status": "ok"}`` while the server process is alive (no key needed)."""
        return await self._run(r.health())

    async def ready(self) -> dict[str, Any]:
        """``{"status": "ready"}`` once the server can serve; raises ServiceUnavailable otherwise."""
        return await self._run(r.ready())

    async def train(
        self,
        dataset: str,
        target: str | None = None,
        *,
        task: str = "auto",
        budget_s: float | None = None,
        max_trials: int | None = None,
        metric: str | None = None,
        trainer: str | None = None,
        trainers: list[str] | None = None,
        params: dict[str, Any] | None = None,
        model: str | None = None,
        dataset_version: int | None = None,
        split_id: str | None = None,
        seed: int = 0,
        text_column: str | None = None,
        parallel_trials: int = 1,
        priority: int = 0,
        idempotency_key: str | None = None,
    ) -> JobPublic:
        """Queue a training job on a dataset version and return it (follow it with ``jobs.stream(job.id)`` or
        ``jobs.wait(job.id)``; the finished job's ``result`` names the registered model version).

        Without ``trainer`` the server searches trainers and hyperparameters within ``budget_s`` seconds and
        ``max_trials`` trials, scoring by ``metric``; ``trainer`` with ``params`` trains one configuration.
        ``task="auto"`` decides from the data; ``model`` names the registered model (default: from the
        dataset). A retry with the same ``idempotency_key`` returns the same job. See docs/training.md.
        """
        arguments = dict(locals())  # the first statement: exactly the arguments
        # Every argument but the key is the TrainCreate field of the same name (None: the server's default).
        call = r.train_create({k: v for k, v in arguments.items() if k not in ("self", "idempotency_key")})
        return await self._send(
            call.method, call.path, call.parse, json=call.json, headers=r.idempotency_headers(idempotency_key)
        )

    async def deploy(
        self,
        name: str,
        model: str,
        *,
        canary: Canary | None = None,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        max_batch_size: int | None = None,
        max_wait_ms: float | None = None,
        idle_timeout_s: float | None = None,
        target_ongoing_requests: int | None = None,
        description: str | None = None,
    ) -> EndpointPublic:
        """Deploy ``model`` as endpoint ``name``: the same as ``endpoints.create`` (see there)."""
        return await self.endpoints.create(
            name,
            model,
            canary=canary,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            idle_timeout_s=idle_timeout_s,
            target_ongoing_requests=target_ongoing_requests,
            description=description,
        )

    def openai(self, **options: Any) -> Any:
        """An ``openai.AsyncOpenAI`` for this server's OpenAI-compatible routes (``/v1``), with this client's key and
        timeout; ``model`` is an endpoint name. ``options`` go to its constructor (e.g. ``max_retries=0``).
        Needs ``pip install openai`` (ModuleNotFoundError saying so otherwise)."""
        return openai_client(self.url, self._api_key, self.timeout, asynchronous=True, **options)

    # -- plumbing ----------------------------------------------------------------------------------------
    async def _run(self, call: r.Call[T]) -> T:
        return await self._send(call.method, call.path, call.parse, params=call.params, json=call.json)

    async def _send(self, method: str, path: str, parse: Callable[[httpx.Response], T], **kwargs: Any) -> T:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc) from None
        return read_answer(response, parse)

    async def _download(
        self,
        path: str,
        dest: PathLike,
        default_name: str,
        progress: ProgressCallback | None,
        params: dict[str, Any] | None = None,
    ) -> Path:
        try:
            async with self._http.stream("GET", path, params=params) as response:
                if response.is_error:
                    await response.aread()
                    raise error_from_response(response)
                target = download_target(dest, response, default_name)
                total, done = expected_size(response), 0
                with atomic_file(target) as handle:
                    async for chunk in response.aiter_bytes(CHUNK_SIZE):
                        handle.write(chunk)
                        if progress is not None:
                            done += len(chunk)
                            progress(done, max(total, done))
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc) from None
        return target
