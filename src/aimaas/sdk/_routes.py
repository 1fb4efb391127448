"""The REST API (docs/api.md) as data: each function returns the request to send and how to read the answer.

The sync and async clients both execute these, so every path, parameter and model is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from aimaas.errors import InvalidInput
from aimaas.schemas import (
    ApiKeyCreated,
    ApiKeyPublic,
    DatasetDetail,
    DatasetPublic,
    DatasetStats,
    DatasetVersionPublic,
    EndpointPublic,
    JobEventList,
    JobPublic,
    ModelComparison,
    ModelDetail,
    ModelPublic,
    ModelVersionPublic,
    Page,
    PredictResponse,
    PreviewPage,
    SplitPublic,
    TenantPublic,
    WhoAmI,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Version = int | str

API = "/api/v1"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the parser of its (2xx) answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None


def _seg(value: object) -> str:
    return quote(str(value), safe="")


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _json(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    return data if isinstance(data, dict) else {"value": data}


def _nothing(response: httpx.Response) -> None:
    return None


def dataset_path(name: str) -> str:
    return f"{API}/datasets/{_seg(name)}"


def version_path(name: str, version: Version) -> str:
    return f"{dataset_path(name)}/versions/{_seg(version)}"


# -- service -----------------------------------------------------------------------------------------------
def health() -> Call[dict[str, Any]]:
    return Call("GET", "/healthz", _json)


def ready() -> Call[dict[str, Any]]:
    return Call("GET", "/readyz", _json)


def whoami() -> Call[WhoAmI]:
    return Call("GET", f"{API}/whoami", _model(WhoAmI))


# -- tenants and keys --------------------------------------------------------------------------------------
def tenant_create(name: str) -> Call[TenantPublic]:
    return Call("POST", f"{API}/tenants", _model(TenantPublic), json={"name": name})


def tenant_list(limit: int | None, cursor: str | None) -> Call[Page[TenantPublic]]:
    return Call("GET", f"{API}/tenants", _model(Page[TenantPublic]), _params(limit=limit, cursor=cursor))


def tenant_get(tenant_id: str) -> Call[TenantPublic]:
    return Call("GET", f"{API}/tenants/{_seg(tenant_id)}", _model(TenantPublic))


def key_create(
    name: str, scopes: list[str] | None, expires_at: datetime | str | None, tenant_id: str | None
) -> Call[ApiKeyCreated]:
    body: dict[str, Any] = {"name": name, "scopes": list(scopes) if scopes else ["read"]}
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat() if isinstance(expires_at, datetime) else expires_at
    if tenant_id is not None:
        body["tenant_id"] = tenant_id
    return Call("POST", f"{API}/keys", _model(ApiKeyCreated), json=body)


def key_list(tenant_id: str | None, limit: int | None, cursor: str | None) -> Call[Page[ApiKeyPublic]]:
    params = _params(tenant_id=tenant_id, limit=limit, cursor=cursor)
    return Call("GET", f"{API}/keys", _model(Page[ApiKeyPublic]), params)


def key_revoke(key_id: str, tenant_id: str | None) -> Call[ApiKeyPublic]:
    return Call("DELETE", f"{API}/keys/{_seg(key_id)}", _model(ApiKeyPublic), _params(tenant_id=tenant_id))


# -- datasets ----------------------------------------------------------------------------------------------
def upload_params(filename: str, format: str | None) -> dict[str, Any]:
    return _params(filename=filename, format=format)


parse_version = _model(DatasetVersionPublic)


def dataset_list(limit: int | None, cursor: str | None) -> Call[Page[DatasetPublic]]:
    return Call("GET", f"{API}/datasets", _model(Page[DatasetPublic]), _params(limit=limit, cursor=cursor))


def dataset_get(name: str) -> Call[DatasetDetail]:
    return Call("GET", dataset_path(name), _model(DatasetDetail))


def dataset_versions(name: str, limit: int | None, cursor: str | None) -> Call[Page[DatasetVersionPublic]]:
    params = _params(limit=limit, cursor=cursor)
    return Call("GET", f"{dataset_path(name)}/versions", _model(Page[DatasetVersionPublic]), params)


def dataset_version(name: str, version: Version) -> Call[DatasetVersionPublic]:
    return Call("GET", version_path(name, version), parse_version)


def dataset_preview(name: str, version: Version, offset: int, limit: int) -> Call[PreviewPage]:
    params = {"offset": offset, "limit": limit}
    return Call("GET", f"{version_path(name, version)}/preview", _model(PreviewPage), params)


def dataset_stats(name: str, version: Version) -> Call[DatasetStats]:
    return Call("GET", f"{version_path(name, version)}/stats", _model(DatasetStats))


def dataset_split(
    name: str,
    *,
    train: float,
    validation: float,
    test: float,
    seed: int,
    stratify_by: str | None,
    version: int | None,
) -> Call[SplitPublic]:
    body = _params(version=version, train=train, validation=validation, test=test, seed=seed, stratify_by=stratify_by)
    return Call("POST", f"{dataset_path(name)}/splits", _model(SplitPublic), json=body)


def dataset_splits(name: str, version: Version, limit: int | None, cursor: str | None) -> Call[Page[SplitPublic]]:
    params = _params(limit=limit, cursor=cursor)
    return Call("GET", f"{version_path(name, version)}/splits", _model(Page[SplitPublic]), params)


def dataset_delete(name: str) -> Call[None]:
    return Call("DELETE", dataset_path(name), _nothing)


def download_path(name: str, version: Version) -> str:
    return f"{version_path(name, version)}/download"


def split_download_path(name: str, version: Version, split_id: str) -> str:
    return f"{version_path(name, version)}/splits/{_seg(split_id)}/download"


# -- jobs --------------------------------------------------------------------------------------------------
def job_path(job_id: str) -> str:
    return f"{API}/jobs/{_seg(job_id)}"


def job_create(
    kind: str,
    entrypoint: str,
    params: dict[str, Any] | None,
    priority: int,
    resume_from: str | None,
) -> Call[JobPublic]:
    body = {"kind": kind, "entrypoint": entrypoint, "params": params or {}, "priority": priority}
    body |= _params(resume_from=resume_from)
    return Call("POST", f"{API}/jobs", _model(JobPublic), json=body)


def job_list(state: str | None, limit: int | None, cursor: str | None) -> Call[Page[JobPublic]]:
    params = _params(state=state, limit=limit, cursor=cursor)
    return Call("GET", f"{API}/jobs", _model(Page[JobPublic]), params)


def job_get(job_id: str) -> Call[JobPublic]:
    return Call("GET", job_path(job_id), _model(JobPublic))


def job_events(job_id: str, after_seq: int, limit: int | None) -> Call[JobEventList]:
    params = _params(after_seq=after_seq, limit=limit)
    return Call("GET", f"{job_path(job_id)}/events", _model(JobEventList), params)


def job_cancel(job_id: str) -> Call[JobPublic]:
    return Call("POST", f"{job_path(job_id)}/cancel", _model(JobPublic))


def job_retry(job_id: str) -> Call[JobPublic]:
    return Call("POST", f"{job_path(job_id)}/retry", _model(JobPublic))


def idempotency_headers(idempotency_key: str | None) -> dict[str, str]:
    """The ``Idempotency-Key`` header of a create call (none without a key): a retry returns the first answer."""
    return {"Idempotency-Key": idempotency_key} if idempotency_key else {}


# -- training ----------------------------------------------------------------------------------------------
def train_create(body: dict[str, Any]) -> Call[JobPublic]:
    """``body`` is a ``TrainCreate`` as JSON; keys whose value is None are left out (server defaults)."""
    return Call("POST", f"{API}/train", _model(JobPublic), json={k: v for k, v in body.items() if v is not None})


# -- model registry ----------------------------------------------------------------------------------------
LATEST = "latest"


def split_ref(ref: str, sel: int | str | None = None, *, param: str = "ref") -> tuple[str, str]:
    """``(name, selector)`` of a model ref: ``name`` → latest, ``name/3`` → ``"3"``, ``name@prod`` → ``"prod"``.

    With ``sel`` given, ``ref`` is a bare model name and ``sel`` the version number or alias. The server checks
    the characters of names and aliases; this only splits, so a bad ref fails before any request is sent.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput("a model reference is required: NAME, NAME/VERSION or NAME@ALIAS", param=param)
    if sel is not None:
        if "/" in ref or "@" in ref:
            raise InvalidInput(f"give either a ref ({ref!r}) or a name and a version, not both", param=param)
        selector = str(sel).strip()
        if not selector:
            raise InvalidInput("the version or alias is empty; use a number, an alias or 'latest'", param=param)
        return ref, selector
    if "@" in ref and "/" in ref:
        raise InvalidInput(
            f"invalid model reference {ref[:80]!r}: give a version (NAME/3) or an alias (NAME@prod), not both",
            param=param,
        )
    for mark, what in (("/", "a version number"), ("@", "an alias")):
        if mark in ref:
            name, _, selector = ref.partition(mark)
            if not name or not selector or mark in selector:
                raise InvalidInput(
                    f"invalid model reference {ref[:80]!r}: write NAME{mark}… with {what} after {mark!r}",
                    param=param,
                )
            if mark == "/" and not (selector.isdigit() and int(selector) > 0):
                raise InvalidInput(
                    f"invalid model reference {ref[:80]!r}: the version after '/' must be a positive integer "
                    "(use NAME@ALIAS for an alias)",
                    param=param,
                )
            return name, selector
    return ref, LATEST


def model_path(name: str) -> str:
    return f"{API}/models/{_seg(name)}"


def model_version_path(name: str, sel: str) -> str:
    return f"{model_path(name)}/versions/{_seg(sel)}"


def model_list(limit: int | None, cursor: str | None) -> Call[Page[ModelPublic]]:
    return Call("GET", f"{API}/models", _model(Page[ModelPublic]), _params(limit=limit, cursor=cursor))


def model_get(name: str) -> Call[ModelDetail]:
    return Call("GET", model_path(name), _model(ModelDetail))


def model_delete(name: str) -> Call[None]:
    return Call("DELETE", model_path(name), _nothing)


def model_version(name: str, sel: str) -> Call[ModelVersionPublic]:
    return Call("GET", model_version_path(name, sel), _model(ModelVersionPublic))


def model_status(name: str, sel: str, status: str) -> Call[ModelVersionPublic]:
    path = model_version_path(name, sel)
    return Call("PATCH", path, _model(ModelVersionPublic), json={"status": status})


def _text(response: httpx.Response) -> str:
    return response.text


def model_card(name: str, sel: str) -> Call[str]:
    return Call("GET", f"{model_version_path(name, sel)}/card", _text)


def model_report(name: str, sel: str) -> Call[dict[str, Any]]:
    return Call("GET", f"{model_version_path(name, sel)}/report", _json)


def plot_path(name: str, sel: str, plot: str) -> str:
    return f"{model_version_path(name, sel)}/plots/{_seg(plot)}.png"


def model_download_path(name: str, sel: str) -> str:
    return f"{model_version_path(name, sel)}/download"


def alias_set(name: str, alias: str, version: int) -> Call[ModelPublic]:
    path = f"{model_path(name)}/aliases/{_seg(alias)}"
    return Call("PUT", path, _model(ModelPublic), json={"version": version})


def alias_delete(name: str, alias: str) -> Call[None]:
    return Call("DELETE", f"{model_path(name)}/aliases/{_seg(alias)}", _nothing)


def model_compare(refs: list[str]) -> Call[ModelComparison]:
    return Call("GET", f"{API}/compare", _model(ModelComparison), {"ref": list(refs)})


def model_import_path(name: str) -> str:
    return f"{model_path(name)}/import"


def import_params(filename: str, task: str | None, description: str | None) -> dict[str, Any]:
    return _params(filename=filename, task=task, description=description)


parse_model_version = _model(ModelVersionPublic)


# -- endpoints and predictions -----------------------------------------------------------------------------
def endpoint_path(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("an endpoint name is required, e.g. 'iris'", param="name")
    return f"{API}/endpoints/{_seg(name)}"


def endpoint_create(body: dict[str, Any]) -> Call[EndpointPublic]:
    """``body`` is an ``EndpointCreate`` as JSON."""
    return Call("POST", f"{API}/endpoints", _model(EndpointPublic), json=body)


def endpoint_list(limit: int | None, cursor: str | None) -> Call[Page[EndpointPublic]]:
    return Call("GET", f"{API}/endpoints", _model(Page[EndpointPublic]), _params(limit=limit, cursor=cursor))


def endpoint_get(name: str) -> Call[EndpointPublic]:
    return Call("GET", endpoint_path(name), _model(EndpointPublic))


def endpoint_update(name: str, body: dict[str, Any]) -> Call[EndpointPublic]:
    """``body`` is an ``EndpointUpdate`` as JSON (only the fields to change)."""
    return Call("PATCH", endpoint_path(name), _model(EndpointPublic), json=body)


def endpoint_delete(name: str) -> Call[None]:
    return Call("DELETE", endpoint_path(name), _nothing)


def endpoint_predict(name: str, inputs: list[dict[str, Any]] | dict[str, list[Any]]) -> Call[PredictResponse]:
    return Call("POST", f"{endpoint_path(name)}/predict", _model(PredictResponse), json={"inputs": inputs})
