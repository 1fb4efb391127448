"""Endpoints in the SDK: ``client.endpoints`` (sync) and ``aclient.endpoints`` (async).

An endpoint serves a model ref (``name``, ``name/3`` or ``name@alias``; an alias is followed when it moves)
under a name of your choosing, optionally with a canary (a second version of the same model taking a share of
the requests). ``predict`` sends rows to it; the OpenAI-compatible routes (``/v1``) take the endpoint name as
``model`` (see :func:`openai_client`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from aimaas.errors import InvalidInput, ServiceUnavailable
from aimaas.schemas import CanarySpec, EndpointCreate, EndpointPublic, EndpointUpdate, Page, PredictResponse
from aimaas.sdk import _routes as r
from aimaas.sdk._common import aiterate_pages, iterate_pages
from aimaas.sdk._inputs import predict_inputs

if TYPE_CHECKING:
    from aimaas.sdk._async import AsyncClient
    from aimaas.sdk._sync import Client

__all__ = ["AsyncEndpoints", "Canary", "Endpoints", "endpoint_ready", "openai_client"]

Canary = CanarySpec | Mapping[str, Any] | tuple[str, float]
"""A canary: ``CanarySpec``, ``{"model": "iris/4", "weight": 0.1}`` or ``("iris/4", 0.1)``."""
StatusCallback = Callable[[EndpointPublic], Any]

_FIRST_POLL_S, _MAX_POLL_S = 0.1, 1.0
DEFAULT_READY_TIMEOUT_S = 300.0


# -- request bodies ----------------------------------------------------------------------------------------
def _checked(schema: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` (None: left out, so the server decides) checked against the wire model, as JSON.

    The bounds live in the schema shared with the server, so a value it would refuse fails here first, with
    ``param`` naming the argument.
    """
    try:
        body = schema.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidInput(f"invalid {param or 'endpoint settings'}: {first['msg']}", param=param) from None
    return body.model_dump(mode="json", exclude_defaults=True)


def _canary(canary: Canary | None) -> dict[str, Any] | None:
    if canary is None:
        return None
    if isinstance(canary, CanarySpec):
        spec: dict[str, Any] = canary.model_dump()
    elif isinstance(canary, Mapping):
        spec = dict(canary)
    elif isinstance(canary, tuple) and len(canary) == 2:
        spec = {"model": canary[0], "weight": canary[1]}
    else:
        raise InvalidInput(
            "give the canary as ('iris/4', 0.1), {'model': 'iris/4', 'weight': 0.1} or a CanarySpec", param="canary"
        )
    r.split_ref(spec.get("model", ""), param="canary.model")  # a malformed ref fails before any request
    return spec


def create_body(name: str, model: str, canary: Canary | None, settings: dict[str, Any]) -> dict[str, Any]:
    """The ``EndpointCreate`` JSON for :meth:`Endpoints.create` (checked: InvalidInput names the argument)."""
    r.split_ref(model, param="model")
    return _checked(EndpointCreate, {"name": name, "model": model, "canary": _canary(canary), **settings})


def update_body(
    model: str | None, canary: Canary | None, clear_canary: bool, settings: dict[str, Any]
) -> dict[str, Any]:
    """The ``EndpointUpdate`` JSON: only the fields to change."""
    if model is not None:
        r.split_ref(model, param="model")
    if clear_canary and canary is not None:
        raise InvalidInput("give either a new canary or clear_canary=True, not both", param="canary")
    fields = {"model": model, "canary": _canary(canary), "clear_canary": clear_canary or None, **settings}
    return _checked(EndpointUpdate, fields)


# -- readiness ---------------------------------------------------------------------------------------------
def endpoint_ready(endpoint: EndpointPublic) -> bool:
    """Whether the endpoint can answer now: ``ready``, ``scaling`` with a ready replica, or ``idle`` (scaled to
    zero: the next request starts a replica). Raises ``ServiceUnavailable`` (code ``endpoint_failed``) when it
    failed. The server's ``state`` decides, not the replica list alone, so the state shown afterwards agrees."""
    status = endpoint.status
    if status.state == "failed":
        raise ServiceUnavailable(
            f"endpoint {endpoint.name!r} failed: {status.reason or 'no reason given'}; fix the model or the "
            "settings with an update, or delete the endpoint",
            code="endpoint_failed",
        )
    if status.state == "scaling":
        return any(replica.state == "ready" for replica in status.replicas)
    return status.state in ("ready", "idle")


def _next_poll(delay: float, deadline: float | None, name: str, timeout: float | None) -> float:
    if deadline is None:
        return delay
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"endpoint {name} is not ready after {timeout:g} s")
    return min(delay, left)


# -- OpenAI-compatible routes ------------------------------------------------------------------------------
def openai_client(url: str, api_key: str | None, timeout: float, *, asynchronous: bool, **options: Any) -> Any:
    """An ``openai.OpenAI`` (or ``AsyncOpenAI``) for the server's ``/v1`` routes with the same key.

    Raises ``ModuleNotFoundError`` saying how to install the package when ``openai`` is missing.
    """
    try:
        import openai
    except ImportError as exc:
        raise ModuleNotFoundError(
            "client.openai() needs the openai package: pip install openai (or call the /v1 routes directly)",
            name="openai",
        ) from exc
    if not api_key:
        raise InvalidInput("the OpenAI client needs an API key: pass api_key=, set AIMAAS_API_KEY or run "
                           "`aimaas login`", param="api_key")
    factory = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return factory(base_url=f"{url.rstrip('/')}/v1", api_key=api_key, timeout=timeout, **options)


# -- the resources -----------------------------------------------------------------------------------------
class Endpoints:
    """Endpoints of your tenant: deploy a model under a name, change or scale it, send it rows to predict."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
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
        """Deploy ``model`` (``iris``, ``iris/3``, ``iris@prod``) as endpoint ``name`` and return it at once
        (usually still ``loading``: see :meth:`wait_ready`). Settings left at None take the server's defaults
        (1 to 4 replicas, batches of 64 waiting 5 ms, 300 s idle before scaling to zero when min_replicas=0).
        ``canary`` sends a share of the requests to another version of the same model. 409 if the name is taken.
        """
        settings = dict(locals())
        for key in ("self", "name", "model", "canary"):
            settings.pop(key)
        return self._c._run(r.endpoint_create(create_body(name, model, canary, settings)))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[EndpointPublic]:
        """One page of endpoints; pass ``page.next_cursor`` back as ``cursor`` for the next one."""
        return self._c._run(r.endpoint_list(limit, cursor))

    def iter_all(self, *, page_size: int = 100) -> Iterator[EndpointPublic]:
        """Every endpoint, following cursors page after page."""
        return iterate_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def get(self, name: str) -> EndpointPublic:
        """The endpoint with its live ``status`` (state, reason, version, canary_version, replicas)."""
        return self._c._run(r.endpoint_get(name))

    def update(
        self,
        name: str,
        *,
        model: str | None = None,
        canary: Canary | None = None,
        clear_canary: bool = False,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        max_batch_size: int | None = None,
        max_wait_ms: float | None = None,
        idle_timeout_s: float | None = None,
        target_ongoing_requests: int | None = None,
        description: str | None = None,
    ) -> EndpointPublic:
        """Change what the endpoint serves (``model``, ``canary``; ``clear_canary=True`` removes the canary) or
        how (the settings); arguments left at None stay as they are. The new version takes over once ready."""
        settings = dict(locals())
        for key in ("self", "name", "model", "canary", "clear_canary"):
            settings.pop(key)
        return self._c._run(r.endpoint_update(name, update_body(model, canary, clear_canary, settings)))

    def delete(self, name: str) -> None:
        """Delete the endpoint and stop its replicas (the model stays registered)."""
        self._c._run(r.endpoint_delete(name))

    def predict(self, name: str, inputs: Any) -> PredictResponse:
        """Predict rows: ``inputs`` is a list of dicts, a dict of columns, one row as a dict, or a pandas
        DataFrame (see :func:`predict_inputs`). ``predictions`` holds one dict per row (``label`` and
        ``probabilities``, ``value`` or ``cluster``), in order; ``model``/``version`` say which version
        answered. Raises ``ServiceUnavailable`` (with ``Retry-After``) when no replica became ready in time."""
        return self._c._run(r.endpoint_predict(name, predict_inputs(inputs)))

    def wait_ready(
        self, name: str, timeout: float | None = DEFAULT_READY_TIMEOUT_S, *, on_status: StatusCallback | None = None
    ) -> EndpointPublic:
        """Poll (every 0.1-1 s) until the endpoint can answer (see :func:`endpoint_ready`) and return it;
        ``on_status(endpoint)`` sees every look. Raises ``ServiceUnavailable`` (code ``endpoint_failed``) if
        it failed, ``TimeoutError`` after ``timeout`` seconds (None: no limit), ``NotFound`` if it is gone."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _FIRST_POLL_S
        while True:
            endpoint = self.get(name)
            if on_status is not None:
                on_status(endpoint)
            if endpoint_ready(endpoint):
                return endpoint
            time.sleep(_next_poll(delay, deadline, name, timeout))
            delay = min(delay * 1.5, _MAX_POLL_S)


class AsyncEndpoints:
    """Endpoints of your tenant (async twin of :class:`Endpoints`)."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
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
        """See :meth:`Endpoints.create`."""
        settings = dict(locals())
        for key in ("self", "name", "model", "canary"):
            settings.pop(key)
        return await self._c._run(r.endpoint_create(create_body(name, model, canary, settings)))

    async def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[EndpointPublic]:
        return await self._c._run(r.endpoint_list(limit, cursor))

    def iter_all(self, *, page_size: int = 100) -> AsyncIterator[EndpointPublic]:
        return aiterate_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    async def get(self, name: str) -> EndpointPublic:
        return await self._c._run(r.endpoint_get(name))

    async def update(
        self,
        name: str,
        *,
        model: str | None = None,
        canary: Canary | None = None,
        clear_canary: bool = False,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        max_batch_size: int | None = None,
        max_wait_ms: float | None = None,
        idle_timeout_s: float | None = None,
        target_ongoing_requests: int | None = None,
        description: str | None = None,
    ) -> EndpointPublic:
        """See :meth:`Endpoints.update`."""
        settings = dict(locals())
        for key in ("self", "name", "model", "canary", "clear_canary"):
            settings.pop(key)
        return await self._c._run(r.endpoint_update(name, update_body(model, canary, clear_canary, settings)))

    async def delete(self, name: str) -> None:
        await self._c._run(r.endpoint_delete(name))

    async def predict(self, name: str, inputs: Any) -> PredictResponse:
        """See :meth:`Endpoints.predict`."""
        return await self._c._run(r.endpoint_predict(name, predict_inputs(inputs)))

    async def wait_ready(
        self, name: str, timeout: float | None = DEFAULT_READY_TIMEOUT_S, *, on_status: StatusCallback | None = None
    ) -> EndpointPublic:
        """See :meth:`Endpoints.wait_ready`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _FIRST_POLL_S
        while True:
            endpoint = await self.get(name)
            if on_status is not None:
                on_status(endpoint)
            if endpoint_ready(endpoint):
                return endpoint
            await asyncio.sleep(_next_poll(delay, deadline, name, timeout))
            delay = min(delay * 1.5, _MAX_POLL_S)
