"""InferenceService: the one path every inference takes (predict, embeddings, text generation).

Routes (the predict API, the OpenAI-compatible API, and later the playground and the education apps) call
this service and nothing below it, so the checks that must hold for every inference (the endpoint belongs to
the caller's tenant, the request fits the model, and, with metering, quotas and usage) live in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from aimaas.domain import Principal
from aimaas.errors import InvalidInput, ServiceUnavailable
from aimaas.serving.controller import ServingController
from aimaas.serving.replica import Replica
from aimaas.serving.runtime import Generation, GenerationChunk, Prediction

__all__ = ["MAX_ROWS", "MAX_TEXTS", "Answered", "InferenceService", "rows_from"]

MAX_ROWS = 10_000
MAX_TEXTS = 2_048


@dataclass(frozen=True)
class Answered:
    """Who answered: the model name and version number (the canary's when it served)."""

    model: str
    version: int

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"


def rows_from(inputs: list[dict[str, Any]] | dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Rows from a list of rows or a dict of equally long columns (InvalidInput otherwise)."""
    if isinstance(inputs, dict):
        lengths = {len(v) for v in inputs.values() if isinstance(v, list)}
        if len(lengths) != 1 or any(not isinstance(v, list) for v in inputs.values()):
            raise InvalidInput("inputs as columns must map each column to a list, all of the same length",
                               param="inputs")
        n = lengths.pop()
        rows = [{k: v[i] for k, v in inputs.items()} for i in range(n)]
    else:
        rows = inputs
    if not rows:
        raise InvalidInput("inputs is empty; send at least one row", param="inputs")
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS} rows per request; got {len(rows)}", param="inputs")
    return rows


class InferenceService:
    """Serves inference requests on the caller's endpoints through the serving controller."""

    def __init__(self, controller: ServingController) -> None:
        self.controller = controller

    async def _replica(self, principal: Principal, endpoint: str) -> tuple[Replica, str]:
        replica = await self.controller.acquire(principal.tenant_id, endpoint)
        state = self.controller.state_of(principal.tenant_id, endpoint)
        model = state.endpoint.model_name if state is not None else endpoint
        return replica, model

    async def predict(self, principal: Principal, endpoint: str,
                      rows: Sequence[dict[str, Any]]) -> tuple[list[Prediction], Answered]:
        for attempt in range(2):  # a replica may start draining between acquire and submit: take another
            replica, model = await self._replica(principal, endpoint)
            try:
                return await replica.predict(rows), Answered(model, replica.version)
            except ServiceUnavailable:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def embed(self, principal: Principal, endpoint: str,
                    texts: Sequence[str]) -> tuple[list[list[float]], int, Answered]:
        if not texts:
            raise InvalidInput("input is empty; send a string or a list of strings", param="input")
        if len(texts) > MAX_TEXTS:
            raise InvalidInput(f"at most {MAX_TEXTS} inputs per request; got {len(texts)}", param="input")
        for attempt in range(2):
            replica, model = await self._replica(principal, endpoint)
            try:
                out = await replica.embed(texts)
                return [v for v, _ in out], sum(t for _, t in out), Answered(model, replica.version)
            except ServiceUnavailable:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def generate(self, principal: Principal, endpoint: str,
                       request: Generation) -> tuple[AsyncIterator[GenerationChunk], Answered]:
        """The chunk stream and who answers. Closing the stream (client gone) stops generation."""
        replica, model = await self._replica(principal, endpoint)
        if "generate" not in replica.runtime.capabilities:
            raise InvalidInput(f"endpoint {endpoint!r} serves a {replica.runtime.source.task} model, which does not "
                               "generate text", param="model")
        return replica.generate(request), Answered(model, replica.version)

    def capabilities(self, principal: Principal, endpoint: str) -> frozenset[str]:
        state = self.controller.state_of(principal.tenant_id, endpoint)
        if state is None or state.main is None or not state.main.replicas:
            return frozenset()
        return state.main.replicas[0].runtime.capabilities
