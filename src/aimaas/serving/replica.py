"""Replica: one loaded copy of a model version, serving batches in its own thread.

A replica owns a :class:`~aimaas.serving.runtime.ModelRuntime`, a dedicated worker thread for it (runtimes are
called from one thread at a time), and one :class:`~aimaas.serving.batching.BatchQueue` per batched call
(``predict`` rows, ``embed`` texts). Text generation streams: each request runs in its own thread (at most
``max_concurrent_generations`` at once) and hands chunks back to the event loop through an asyncio queue.

Replicas run in the API process: the runtimes release the GIL in their native code (ONNX Runtime, torch),
and in-process calls avoid a serialisation hop that would cost more than the tabular models themselves.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aimaas.errors import ServiceUnavailable
from aimaas.serving.batching import BatchQueue
from aimaas.serving.runtime import Generation, GenerationChunk, ModelRuntime, Prediction

__all__ = ["Replica"]

_ids = itertools.count(1)
_DONE = object()


class Replica:
    """A model version loaded once. ``state``: loading → ready → draining (or failed with ``reason``)."""

    def __init__(self, runtime: ModelRuntime, *, version: int, max_batch_size: int, max_wait_ms: float,
                 max_concurrent_generations: int = 4) -> None:
        self.id = f"r{next(_ids)}"
        self.runtime = runtime
        self.version = version
        self.state = "loading"
        self.reason: str | None = None
        self.ongoing = 0
        self.served = 0
        self.last_used = time.monotonic()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"aimaas-replica-{self.id}")
        self._generations = asyncio.Semaphore(max_concurrent_generations)
        self.predict_queue: BatchQueue[dict[str, Any], Prediction] = BatchQueue(
            self._predict_batch, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, name=f"{self.id}-predict")
        self.embed_queue: BatchQueue[str, tuple[list[float], int]] = BatchQueue(
            self._embed_batch, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, name=f"{self.id}-embed")

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    async def load(self) -> None:
        """Load the runtime in the replica's thread; ``failed`` with the reason if that raises."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self.runtime.load)
        except Exception as exc:  # any load failure is reported on the endpoint, never raised into the loop
            self.state, self.reason = "failed", f"{type(exc).__name__}: {exc}"[:500]
            return
        self.state = "ready"

    # -- calls ---------------------------------------------------------------------------------
    async def predict(self, rows: Sequence[dict[str, Any]]) -> list[Prediction]:
        with self._track():
            return await self.predict_queue.submit_many(list(rows))

    async def embed(self, texts: Sequence[str]) -> list[tuple[list[float], int]]:
        with self._track():
            return await self.embed_queue.submit_many(list(texts))

    async def generate(self, request: Generation) -> AsyncIterator[GenerationChunk]:
        """Stream chunks; when the consumer stops iterating (client gone), generation stops within a token."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def work() -> None:
            try:
                for chunk in self.runtime.generate(request, cancel):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
                    if cancel.is_set():
                        break
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)
            except BaseException as exc:  # handed to the consumer, which raises it
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        with self._track():
            async with self._generations:
                thread = threading.Thread(target=work, name=f"aimaas-generate-{self.id}", daemon=True)
                thread.start()
                try:
                    while True:
                        item = await queue.get()
                        if item is _DONE:
                            return
                        if isinstance(item, BaseException):
                            raise item
                        yield item
                finally:
                    cancel.set()

    # -- life cycle ----------------------------------------------------------------------------
    async def drain(self, timeout_s: float = 30.0) -> None:
        """Stop taking requests, let ongoing ones finish (up to ``timeout_s``), then release the model."""
        self.state = "draining"
        deadline = time.monotonic() + timeout_s
        while self.ongoing and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self.close()

    async def close(self) -> None:
        if self.state != "failed":
            self.state = "draining"
        await self.predict_queue.close()
        await self.embed_queue.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self.runtime.close)
        self._thread.shutdown(wait=False)

    # -- internals -----------------------------------------------------------------------------
    def _track(self) -> _Tracking:
        if self.state != "ready":
            raise ServiceUnavailable(f"replica {self.id} is {self.state}")
        return _Tracking(self)

    async def _predict_batch(self, rows: list[dict[str, Any]]) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self.runtime.predict, rows)

    async def _embed_batch(self, texts: list[str]) -> list[tuple[list[float], int]]:
        loop = asyncio.get_running_loop()
        vectors, tokens = await loop.run_in_executor(self._thread, self.runtime.embed, texts)
        return list(zip(vectors, tokens, strict=True))


class _Tracking:
    """Counts a request as ongoing on its replica for as long as it runs."""

    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    def __enter__(self) -> None:
        self._replica.ongoing += 1
        self._replica.last_used = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self._replica.ongoing -= 1
        self._replica.served += 1
        self._replica.last_used = time.monotonic()
