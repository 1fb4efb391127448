"""The OpenAI-compatible API: ``/v1/models``, ``/v1/embeddings``, ``/v1/chat/completions``, ``/v1/completions``.

Any OpenAI SDK is a client: ``base_url`` is the server's ``/v1``, ``api_key`` an aimaas key (predict scope), and
``model`` names one of the caller's endpoints. Errors use the OpenAI error shape (our one envelope). Streams
are Server-Sent Events ending with ``data: [DONE]``; a client that disconnects stops generation.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, StreamingResponse

from aimaas.api.deps import Predict, ServicesDep
from aimaas.domain import Principal
from aimaas.errors import AimaasError, InvalidInput
from aimaas.schemas.openai import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from aimaas.services.inference import Answered
from aimaas.serving.runtime import Generation, GenerationChunk

router = APIRouter(prefix="/v1", tags=["openai"])

DEFAULT_MAX_TOKENS = 256


def _model_entry(name: str, created: float, owner: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": int(created), "owned_by": owner}


@router.get("/models", summary="The caller's endpoints, as OpenAI models")
def list_models(services: ServicesDep, principal: Principal = Predict) -> dict[str, Any]:
    endpoints = services.endpoints.list(principal, limit=1000, after=None)
    return {"object": "list", "data": [_model_entry(e.name, e.created_at.timestamp(), principal.tenant.name)
                                       for e in endpoints]}


@router.get("/models/{model}")
def get_model(model: Annotated[str, Path(max_length=63)], services: ServicesDep,
              principal: Principal = Predict) -> dict[str, Any]:
    endpoint = services.endpoints.get(principal, model)
    return _model_entry(endpoint.name, endpoint.created_at.timestamp(), principal.tenant.name)


@router.post("/embeddings")
async def embeddings(body: EmbeddingRequest, services: ServicesDep, principal: Principal = Predict) -> JSONResponse:
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    vectors, tokens, answered = await services.inference.embed(principal, body.model, texts)
    if body.dimensions is not None and vectors and body.dimensions != len(vectors[0]):
        raise InvalidInput(f"this model makes {len(vectors[0])}-dimensional embeddings; leave dimensions out",
                           param="dimensions")
    data = [{"object": "embedding", "index": i,
             "embedding": _b64(v) if body.encoding_format == "base64" else v} for i, v in enumerate(vectors)]
    return JSONResponse({"object": "list", "data": data, "model": body.model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                        headers={"x-aimaas-model-version": answered.ref})


def _b64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _generation(body: ChatCompletionRequest | CompletionRequest, **text: Any) -> Generation:
    max_tokens = getattr(body, "max_completion_tokens", None) or body.max_tokens or DEFAULT_MAX_TOKENS
    return Generation(max_tokens=max_tokens, temperature=body.temperature, top_p=body.top_p, stop=body.stop_list(),
                      n=body.n, seed=body.seed, **text)


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, services: ServicesDep,
                           principal: Principal = Predict) -> Any:
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
    stream, answered = await services.inference.generate(principal, body.model, _generation(body, messages=messages))
    return await _respond(body, stream, answered, chat=True)


@router.post("/completions")
async def completions(body: CompletionRequest, services: ServicesDep, principal: Principal = Predict) -> Any:
    if isinstance(body.prompt, list):
        if len(body.prompt) != 1:
            raise InvalidInput("send one prompt per request (use n for several completions)", param="prompt")
        prompt = body.prompt[0]
    else:
        prompt = body.prompt
    stream, answered = await services.inference.generate(principal, body.model, _generation(body, prompt=prompt))
    return await _respond(body, stream, answered, chat=False, echo=prompt if body.echo else "")


async def _respond(body: ChatCompletionRequest | CompletionRequest, stream: AsyncIterator[GenerationChunk],
                   answered: Answered, *, chat: bool, echo: str = "") -> Any:
    ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    headers = {"x-aimaas-model-version": answered.ref}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        # Wait for the first chunk before answering 200, so a request the model refuses (too many tokens, ...)
        # gets a proper error status instead of a broken stream.
        try:
            first: GenerationChunk | None = await anext(stream)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await stream.aclose()  # type: ignore[attr-defined]
            raise
        events = _sse(_prepend(first, stream), ident, created, body.model, body.n, chat=chat,
                      include_usage=include_usage)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"})
    texts, finish, prompt_tokens, completion_tokens = [""] * body.n, ["stop"] * body.n, 0, 0
    try:
        async for chunk in stream:
            texts[chunk.index] += chunk.text
            if chunk.finish_reason is not None:
                finish[chunk.index] = chunk.finish_reason
                prompt_tokens = chunk.prompt_tokens
                completion_tokens += chunk.completion_tokens
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    if chat:
        choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": finish[i],
                    "logprobs": None} for i, t in enumerate(texts)]
        return JSONResponse({"id": ident, "object": "chat.completion", "created": created, "model": body.model,
                             "choices": choices, "usage": usage}, headers=headers)
    choices = [{"index": i, "text": echo + t, "finish_reason": finish[i], "logprobs": None}
               for i, t in enumerate(texts)]
    return JSONResponse({"id": ident, "object": "text_completion", "created": created, "model": body.model,
                         "choices": choices, "usage": usage}, headers=headers)


async def _prepend(first: GenerationChunk | None,
                   rest: AsyncIterator[GenerationChunk]) -> AsyncIterator[GenerationChunk]:
    try:
        if first is not None:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


async def _sse(stream: AsyncIterator[GenerationChunk], ident: str, created: int, model: str, n: int, *, chat: bool,
               include_usage: bool) -> AsyncIterator[str]:
    kind = "chat.completion.chunk" if chat else "text_completion"
    prompt_tokens = completion_tokens = 0

    def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        data: dict[str, Any] = {"id": ident, "object": kind, "created": created, "model": model, "choices": choices}
        if include_usage:
            data["usage"] = usage
        return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"

    try:
        if chat:
            yield event([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
                          "logprobs": None} for i in range(n)])
        async for chunk in stream:
            if chunk.text or chunk.finish_reason is None:
                part = {"content": chunk.text} if chat else None
                choice = {"index": chunk.index, "finish_reason": None, "logprobs": None,
                          **({"delta": part} if chat else {"text": chunk.text})}
                yield event([choice])
            if chunk.finish_reason is not None:
                prompt_tokens = chunk.prompt_tokens
                completion_tokens += chunk.completion_tokens
                yield event([{"index": chunk.index, "finish_reason": chunk.finish_reason, "logprobs": None,
                              **({"delta": {}} if chat else {"text": ""})}])
        if include_usage:
            yield event([], {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                             "total_tokens": prompt_tokens + completion_tokens})
        yield "data: [DONE]\n\n"
    except AimaasError as error:  # after the 200 went out: report it in the stream, as OpenAI does
        yield f"data: {json.dumps(error.to_body(), separators=(',', ':'))}\n\n"
    finally:
        await stream.aclose()  # type: ignore[attr-defined]

