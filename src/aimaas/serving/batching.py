"""Dynamic batching: many callers' requests served together by one batch handler, in pure asyncio.

A replica runs its model on *batches* (one call for many rows is far cheaper than many calls of one row).
:class:`BatchQueue` collects what concurrent callers submit and hands it to an async ``handler`` in batches,
with the adaptive policy of BentoML's dispatcher and Triton's dynamic batcher:

* **Idle: no added latency.** When no batch is in flight, whatever is queued is dispatched at once (items
  submitted in the same event-loop turn go together).
* **Busy: batch up.** While a batch is served, new items wait. The next batch leaves as soon as a batch
  slot is free *and* one of these holds: no batch is in flight any more, a batch just finished,
  ``max_batch_size`` items wait, or the oldest waiting item has waited ``max_wait_ms``. With one slot
  (the default: a replica's runtime serves one call at a time) that means "as soon as the previous batch
  finishes"; ``max_wait_ms`` matters when ``max_concurrent_batches`` > 1.
* **Requests of several rows** (:meth:`BatchQueue.submit_many`) stay in one batch; one larger than
  ``max_batch_size`` is cut into chunks served in consecutive batches and reassembled in order.
* **Priorities**: a higher ``priority`` is taken first; equal priorities are served first come, first served.
  A batch is filled in that order and stops at the first request that does not fit (so a large request is
  never overtaken for ever by small ones).
* **Errors**: the handler must return one result per item, in order. An exception in the handler, or a
  result list of the wrong length (:class:`BatchResultMismatch`), fails every waiter of that batch and the
  queue goes on serving. A caller cancelled before its batch leaves is removed from the queue; one
  cancelled later has its result dropped.
* :meth:`BatchQueue.close` fails every queued waiter with :class:`~aimaas.errors.ServiceUnavailable`, waits
  for the batches in flight, and refuses later submissions.

No framework, no threads: the handler decides where the work runs (e.g. ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aimaas.errors import AimaasError, InvalidInput, ServiceUnavailable

__all__ = ["BatchQueue", "BatchResultMismatch"]

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger(__name__)


class BatchResultMismatch(AimaasError):
    """The batch handler returned a different number of results than it was given items.

    That is a bug in the handler; every waiter of the batch gets this error rather than, possibly,
    another caller's answer.
    """

    default_code = "batch_result_mismatch"


@dataclass(eq=False, slots=True)
class _Request:
    """One submit: a future for the whole result list, filled chunk by chunk."""

    future: asyncio.Future[list[Any]]
    results: list[Any]
    parts: list[_Part] = field(default_factory=list)
    parts_left: int = 0


@dataclass(eq=False, slots=True)
class _Part:
    """A chunk of a request's items (at most ``max_batch_size``) that must travel in one batch."""

    request: _Request
    items: list[Any]
    offset: int
    enqueued_at: float
    queued: bool = True  # False once taken into a batch or dropped (the heap and deque skip it lazily)


class BatchQueue(Generic[T, R]):
    """Serve items submitted by concurrent callers in batches through ``handler`` (see the module doc).

    ``handler(items) -> results`` gets a list of at most ``max_batch_size`` items and must return one result
    per item, in order. ``max_wait_ms`` bounds how long an item waits for companions while a batch slot is free
    but another batch is in flight; ``max_concurrent_batches`` batches are served at once (default 1).
    ``on_batch(size, seconds)`` is called after every batch (served or failed) with its size and the handler's
    duration, e.g. to feed a histogram. The queue belongs to the event loop of its first ``submit``.
    """

    def __init__(
        self,
        handler: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_batch_size: int,
        max_wait_ms: float,
        name: str = "",
        max_concurrent_batches: int = 1,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise InvalidInput(f"max_batch_size must be a whole number of at least 1; got {max_batch_size!r}",
                               param="max_batch_size")
        if isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, int | float) or not max_wait_ms >= 0:
            raise InvalidInput(f"max_wait_ms must be a number of milliseconds >= 0; got {max_wait_ms!r}",
                               param="max_wait_ms")
        if (isinstance(max_concurrent_batches, bool) or not isinstance(max_concurrent_batches, int)
                or max_concurrent_batches < 1):
            raise InvalidInput("max_concurrent_batches must be a whole number of at least 1; got "
                               f"{max_concurrent_batches!r}", param="max_concurrent_batches")
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_concurrent_batches = max_concurrent_batches
        self._handler = handler
        self._on_batch = on_batch
        self._heap: list[tuple[int, int, _Part]] = []  # (-priority, arrival number, part)
        self._arrivals: deque[_Part] = deque()  # arrival order, to find the oldest waiting part
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._serving: set[asyncio.Task[None]] = set()  # for close() to await
        self._batches_in_flight = 0  # counted in _serve itself: a task leaves _serving only a loop turn later
        self._freed = False  # a batch finished while items waited: dispatch them without waiting
        self._closed = False
        self._queued = 0
        self._in_flight = 0
        self._batches = 0
        self._items = 0
        self._failed_batches = 0
        self._sizes: Counter[int] = Counter()

    # -- counters -------------------------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        """Items waiting for a batch."""
        return self._queued

    @property
    def in_flight(self) -> int:
        """Items in batches being served now."""
        return self._in_flight

    @property
    def in_flight_batches(self) -> int:
        return self._batches_in_flight

    @property
    def ongoing(self) -> int:
        """Items accepted and not yet answered (queued + in flight): the load the router balances on."""
        return self._queued + self._in_flight

    @property
    def batches(self) -> int:
        """Batches served so far, failed ones included."""
        return self._batches

    @property
    def items(self) -> int:
        """Items served so far (in batches that finished, failed ones included)."""
        return self._items

    @property
    def failed_batches(self) -> int:
        return self._failed_batches

    @property
    def batch_size_counts(self) -> dict[int, int]:
        """How many batches of each size were served (a ready-made histogram; at most max_batch_size keys)."""
        return dict(self._sizes)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- submitting -----------------------------------------------------------------------------------------
    async def submit(self, item: T, *, priority: int = 0) -> R:
        """Queue one item and return its result (or raise the handler's error for its batch)."""
        request = self._enqueue([item], priority)
        results = await self._wait(request)
        return results[0]  # type: ignore[no-any-return]

    async def submit_many(self, items: Sequence[T], *, priority: int = 0) -> list[R]:
        """Queue a request of several rows; they are served in one batch (or in consecutive chunks of
        ``max_batch_size`` when there are more) and their results come back in order."""
        rows = list(items)
        if not rows:
            return []
        return await self._wait(self._enqueue(rows, priority))

    def _enqueue(self, items: list[Any], priority: int) -> _Request:
        if self._closed:
            raise ServiceUnavailable(f"{self._label} is closed (the replica is shutting down); retry the request",
                                     headers={"Retry-After": "1"})
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidInput(f"priority must be a whole number; got {priority!r}", param="priority")
        loop = asyncio.get_running_loop()
        if self._dispatcher is None:
            self._dispatcher = loop.create_task(self._dispatch_loop(), name=f"batch-dispatch:{self.name}")
        request = _Request(future=loop.create_future(), results=[None] * len(items))
        now = loop.time()
        for offset in range(0, len(items), self.max_batch_size):
            part = _Part(request, items[offset:offset + self.max_batch_size], offset, now)
            request.parts.append(part)
            heapq.heappush(self._heap, (-priority, next(self._seq), part))
            self._arrivals.append(part)
        request.parts_left = len(request.parts)
        self._queued += len(items)
        self._wake.set()
        return request

    async def _wait(self, request: _Request) -> list[Any]:
        try:
            return await request.future
        except asyncio.CancelledError:
            # The caller is gone: its rows must not take room in a batch (nor be counted as load).
            self._drop(request)
            raise

    def _drop(self, request: _Request) -> None:
        for part in request.parts:
            if part.queued:
                part.queued = False
                self._queued -= len(part.items)

    # -- dispatching ----------------------------------------------------------------------------------------
    @property
    def _label(self) -> str:
        return f"batch queue {self.name!r}" if self.name else "batch queue"

    async def _dispatch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()  # cleared before looking, so a wake-up from now on is never missed
            if self._closed and not self._queued:
                return
            delay: float | None = None
            if self._queued and self._batches_in_flight < self.max_concurrent_batches:
                delay = self._dispatch_delay(loop.time())
                if delay <= 0:
                    self._start_batch(loop)
                    continue
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _dispatch_delay(self, now: float) -> float:
        """Seconds until the waiting items should leave (<= 0: now), given a free batch slot."""
        if not self._batches_in_flight or self._freed or self._queued >= self.max_batch_size:
            return 0.0
        while self._arrivals and not self._arrivals[0].queued:
            self._arrivals.popleft()
        if not self._arrivals:
            return 0.0
        return self._arrivals[0].enqueued_at + self.max_wait_s - now

    def _start_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        parts: list[_Part] = []
        size = 0
        while self._heap:
            part = self._heap[0][2]
            if not part.queued:
                heapq.heappop(self._heap)
                continue
            if size + len(part.items) > self.max_batch_size:
                break
            heapq.heappop(self._heap)
            part.queued = False
            parts.append(part)
            size += len(part.items)
        self._freed = False
        if not parts:
            return
        self._queued -= size
        self._in_flight += size
        self._batches_in_flight += 1
        task = loop.create_task(self._serve(parts, size), name=f"batch:{self.name}")
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, parts: list[_Part], size: int) -> None:
        loop = asyncio.get_running_loop()
        items = [item for part in parts for item in part.items]
        started = loop.time()
        failed = True
        try:
            results = list(await self._handler(items))
            if len(results) != len(items):
                raise BatchResultMismatch(f"the batch handler of {self._label} returned {len(results)} results for "
                                          f"{len(items)} items; it must return one result per item, in order")
            failed = False
        except asyncio.CancelledError:
            # Our task was cancelled (loop shutdown), not the callers': they get an error, never a hang.
            for part in parts:
                self._fail(part.request, ServiceUnavailable(f"{self._label} stopped while serving this request; "
                                                            "retry the request", headers={"Retry-After": "1"}))
            raise
        except Exception as exc:
            for part in parts:
                self._fail(part.request, exc)
        else:
            position = 0
            for part in parts:
                self._deliver(part, results[position:position + len(part.items)])
                position += len(part.items)
        finally:
            seconds = loop.time() - started
            self._in_flight -= size
            self._batches_in_flight -= 1
            self._batches += 1
            self._items += size
            self._failed_batches += failed
            self._sizes[size] += 1
            self._freed = self._queued > 0
            self._wake.set()
            if self._on_batch is not None:
                try:
                    self._on_batch(size, seconds)
                except Exception:  # a metrics hook must never break serving
                    _log.exception("on_batch callback of %s failed", self._label)

    def _deliver(self, part: _Part, results: list[Any]) -> None:
        request = part.request
        if request.future.done():  # the caller left, or another chunk of its request failed
            return
        request.results[part.offset:part.offset + len(part.items)] = results
        request.parts_left -= 1
        if request.parts_left == 0:
            request.future.set_result(request.results)

    def _fail(self, request: _Request, exc: BaseException) -> None:
        if not request.future.done():
            request.future.set_exception(exc)
        self._drop(request)  # the other chunks of a split request have no one left to answer

    # -- closing --------------------------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop accepting items, fail the queued ones with ServiceUnavailable and wait for the batches in
        flight (their callers get their results). Safe to call more than once."""
        if not self._closed:
            self._closed = True
            for _, _, part in self._heap:
                if part.queued:
                    self._fail(part.request, ServiceUnavailable(
                        f"{self._label} was closed before this request was served (the replica is shutting "
                        "down); retry the request", headers={"Retry-After": "1"}))
            self._heap.clear()
            self._arrivals.clear()
            self._wake.set()
        if self._serving:
            await asyncio.gather(*list(self._serving), return_exceptions=True)
        if self._dispatcher is not None and not self._dispatcher.done():
            await self._dispatcher
