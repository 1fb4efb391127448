"""The synchronous client."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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
from aimaas.sdk._common import base_headers, iterate_pages, make_client_args, upload_timeout
from aimaas.sdk._endpoints import Canary, Endpoints, openai_client
from aimaas.sdk._http import (
    CHUNK_SIZE,
    ProgressCallback,
    atomic_file,
    download_target,
    error_from_response,
    expected_size,
    iter_file,
    read_answer,
    transport_error,
)
from aimaas.sdk._jobs import Jobs
from aimaas.sdk._models import Models

__all__ = ["Client"]

T = TypeVar("T")
PathLike = str | os.PathLike[str]




class Datasets:
    """Datasets of your tenant: upload versions, look at them, split them, download them."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def upload(
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
        return self._c._send(
            "POST",
            f"{r.dataset_path(name)}/versions",
            r.parse_version,
            params=r.upload_params(file.name, format),
            content=iter_file(file, total, progress),
            headers=headers,
            timeout=upload_timeout(self._c.timeout),
        )

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[DatasetPublic]:
        """One page of datasets; pass ``page.next_cursor`` back as ``cursor`` for the next one."""
        return self._c._run(r.dataset_list(limit, cursor))

    def iter_all(self, *, page_size: int = 100) -> Iterator[DatasetPublic]:
        """Every dataset, following cursors page after page."""
        return iterate_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def get(self, name: str) -> DatasetDetail:
        return self._c._run(r.dataset_get(name))

    def versions(self, name: str, *, limit: int | None = None, cursor: str | None = None) -> Page[DatasetVersionPublic]:
        return self._c._run(r.dataset_versions(name, limit, cursor))

    def version(self, name: str, version: int | str = "latest") -> DatasetVersionPublic:
        return self._c._run(r.dataset_version(name, version))

    def preview(self, name: str, version: int | str = "latest", offset: int = 0, limit: int = 20) -> PreviewPage:
        return self._c._run(r.dataset_preview(name, version, offset, limit))

    def stats(self, name: str, version: int | str = "latest") -> DatasetStats:
        return self._c._run(r.dataset_stats(name, version))

    def split(
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
        return self._c._run(call)

    def splits(
        self, name: str, version: int | str = "latest", *, limit: int | None = None, cursor: str | None = None
    ) -> Page[SplitPublic]:
        return self._c._run(r.dataset_splits(name, version, limit, cursor))

    def download(
        self,
        name: str,
        version: int | str = "latest",
        *,
        dest: PathLike,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Stream the stored file to ``dest`` (a file, or a folder to put it in) and return its path."""
        return self._c._download(r.download_path(name, version), dest, f"{name}-v{version}", progress)

    def download_split(self, name: str, split_id: str, version: int | str = "latest", *, dest: PathLike) -> Path:
        """Save a split's assignment (CSV ``row,part``) to ``dest``."""
        path = r.split_download_path(name, version, split_id)
        return self._c._download(path, dest, f"{name}-v{version}-split-{split_id}.csv", None)

    def delete(self, name: str) -> None:
        """Delete the dataset and all its versions (409 ``dataset_in_use`` while something refers to it)."""
        self._c._run(r.dataset_delete(name))


class Tenants:
    """Tenants (needs an admin key of the operator tenant)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, name: str) -> TenantPublic:
        return self._c._run(r.tenant_create(name))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[TenantPublic]:
        return self._c._run(r.tenant_list(limit, cursor))

    def iter_all(self, *, page_size: int = 100) -> Iterator[TenantPublic]:
        return iterate_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def get(self, tenant_id: str) -> TenantPublic:
        return self._c._run(r.tenant_get(tenant_id))


class Keys:
    """API keys (needs an admin key)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        *,
        name: str = "key",
        scopes: list[str] | None = None,
        expires_at: datetime | str | None = None,
        tenant_id: str | None = None,
    ) -> ApiKeyCreated:
        """Create a key; ``.key`` of the answer is the secret and is never shown again."""
        return self._c._run(r.key_create(name, scopes, expires_at, tenant_id))

    def list(
        self, tenant_id: str | None = None, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[ApiKeyPublic]:
        return self._c._run(r.key_list(tenant_id, limit, cursor))

    def iter_all(self, tenant_id: str | None = None, *, page_size: int = 100) -> Iterator[ApiKeyPublic]:
        return iterate_pages(lambda cursor: self.list(tenant_id, limit=page_size, cursor=cursor))

    def revoke(self, key_id: str, *, tenant_id: str | None = None) -> ApiKeyPublic:
        """Revoke a key; it stops working at once (``tenant_id``: a key of another tenant, operator admin)."""
        return self._c._run(r.key_revoke(key_id, tenant_id))


class Client:
    """A synchronous client of an aimaas server.

    ``url`` and ``api_key`` default to ``AIMAAS_URL``/``AIMAAS_API_KEY``, then to the file written by
    ``aimaas login``. Every failure raises an :mod:`aimaas.errors` exception. Use it as a context manager
    or call :meth:`close`.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url, api_key = make_client_args(url, api_key)
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.url, headers=base_headers(api_key), timeout=timeout, transport=transport
        )
        self.datasets = Datasets(self)
        self.tenants = Tenants(self)
        self.keys = Keys(self)
        self.jobs = Jobs(self)
        self.models = Models(self)
        self.endpoints = Endpoints(self)
        self._api_key = api_key  # for openai(); never shown

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def whoami(self) -> WhoAmI:
        """The tenant and key this client authenticates as."""
        return self._run(r.whoami())

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"}`` while the server process is alive (no key needed)."""
        return self._run(r.health())

    def ready(self) -> dict[str, Any]:
        """``{"status": "ready"}`` once the server can serve; raises ServiceUnavailable otherwise."""
        return self._run(r.ready())

    def train(
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
        return self._send(
            call.method, call.path, call.parse, json=call.json, headers=r.idempotency_headers(idempotency_key)
        )

    def deploy(
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
        return self.endpoints.create(
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
        """An ``openai.OpenAI`` for this server's OpenAI-compatible routes (``/v1``), with this client's key and
        timeout; ``model`` is an endpoint name. ``options`` go to its constructor (e.g. ``max_retries=0``).
        Needs ``pip install openai`` (ModuleNotFoundError saying so otherwise)."""
        return openai_client(self.url, self._api_key, self.timeout, asynchronous=False, **options)

    # -- plumbing ----------------------------------------------------------------------------------------
    def _run(self, call: r.Call[T]) -> T:
        return self._send(call.method, call.path, call.parse, params=call.params, json=call.json)

    def _send(self, method: str, path: str, parse: Callable[[httpx.Response], T], **kwargs: Any) -> T:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc) from None
        return read_answer(response, parse)

    def _download(
        self,
        path: str,
        dest: PathLike,
        default_name: str,
        progress: ProgressCallback | None,
        params: dict[str, Any] | None = None,
    ) -> Path:
        try:
            with self._http.stream("GET", path, params=params) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                target = download_target(dest, response, default_name)
                total, done = expected_size(response), 0
                with atomic_file(target) as handle:
                    for chunk in response.iter_bytes(CHUNK_SIZE):
                        handle.write(chunk)
                        if progress is not None:
                            done += len(chunk)
                            progress(done, max(total, done))
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc) from None
        return target
