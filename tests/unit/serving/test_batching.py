"""BatchQueue with real asyncio: immediate dispatch when idle, batching under load, the wait bound, errors,
cancellation, multi-row requests, priorities and close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from aimaas.errors import InvalidInput, ServiceUnavailable
from aimaas.serving.batching import BatchQueue, BatchResultMismatch


class Recorder:
    """A batch handler that records every batch; items named in ``hold`` block their batch until released.
    A batch with ``"boom"`` raises; one with ``"short"`` returns one result too few."""

    def __init__(self, hold: Iterable[str] = ()) -> None:
        self.batches: list[list[str]] = []
        self.gates = {item: asyncio.Event() for item in hold}
        self.running = 0
        self.max_running = 0

    async def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            for item in items:
                if item in self.gates:
                    await self.gates[item].wait()
            await asyncio.sleep(0)
            if "boom" in items:
                raise ValueError("boom")
            results = [f"<{item}>" for item in items]
            return results[:-1] if "short" in items else results
        finally:
            self.running -= 1

    def release(self, item: str) -> None:
        self.gates[item].set()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the loop run until ``condition`` holds (fails the test after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.001)


def spawn(queue: BatchQueue[str, str], *items: str, priority: int = 0) -> list[asyncio.Task[str]]:
    return [asyncio.create_task(queue.submit(item, priority=priority)) for item in items]


async def test_an_idle_queue_dispatches_at_once_without_waiting_for_max_wait() -> None:
    recorder = Recorder()
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=8, max_wait_ms=1000, max_concurrent_batches=2)
    for item in ("a", "b", "c"):
        started = time.monotonic()
        assert await queue.submit(item) == f"<{item}>"
        assert time.monotonic() - started < 0.5  # far below the 1 s max_wait
    assert recorder.batches == [["a"], ["b"], ["c"]]
    # Items submitted in the same loop turn still leave together.
    assert await asyncio.gather(*spawn(queue, "x", "y", "z")) == ["<x>", "<y>", "<z>"]
    assert recorder.batches[-1] == ["x", "y", "z"]
    await queue.close()


async def test_under_load_items_batch_up_to_max_size_one_batch_at_a_time() -> None:
    recorder = Recorder(hold=["a"])
    sizes: list[tuple[int, float]] = []
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=4, max_wait_ms=0,
                                             on_batch=lambda size, seconds: sizes.append((size, seconds)))
    first = spawn(queue, "a")
    await until(lambda: len(recorder.batches) == 1)
    rest = spawn(queue, *(f"i{n}" for n in range(10)))
    await until(lambda: queue.queued == 10)
    assert (queue.in_flight, queue.in_flight_batches, queue.ongoing) == (1, 1, 11)
    recorder.release("a")
    results = await asyncio.gather(*first, *rest)
    assert results == ["<a>"] + [f"<i{n}>" for n in range(10)]
    assert recorder.batches == [["a"], ["i0", "i1", "i2", "i3"], ["i4", "i5", "i6", "i7"], ["i8", "i9"]]
    assert recorder.max_running == 1
    assert (queue.batches, queue.items, queue.queued, queue.in_flight) == (4, 11, 0, 0)
    assert queue.batch_size_counts == {1: 1, 4: 2, 2: 1}
    assert [size for size, _ in sizes] == [1, 4, 4, 2]
    assert sizes[0][1] > 0 and all(seconds >= 0 for _, seconds in sizes)
    await queue.close()


async def test_max_wait_bounds_the_wait_for_companions_when_a_slot_is_free() -> None:
    recorder = Recorder(hold=["slow"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=3, max_wait_ms=100, max_concurrent_batches=2)
    slow = spawn(queue, "slow")
    await until(lambda: len(recorder.batches) == 1)
    started = time.monotonic()
    assert await queue.submit("x") == "<x>"  # served beside the slow batch, after waiting max_wait for company
    assert 0.09 <= time.monotonic() - started < 2.0
    assert not slow[0].done()
    recorder.release("slow")
    await asyncio.gather(*slow)
    assert recorder.batches == [["slow"], ["x"]]
    await queue.close()


async def test_a_full_batch_leaves_without_waiting_for_max_wait() -> None:
    recorder = Recorder(hold=["slow"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=3, max_wait_ms=60_000, max_concurrent_batches=2)
    slow = spawn(queue, "slow")
    await until(lambda: len(recorder.batches) == 1)
    started = time.monotonic()
    assert await asyncio.gather(*spawn(queue, "p", "q", "r")) == ["<p>", "<q>", "<r>"]
    assert time.monotonic() - started < 5.0  # not the minute max_wait allows
    recorder.release("slow")
    await asyncio.gather(*slow)
    assert recorder.batches == [["slow"], ["p", "q", "r"]]
    await queue.close()


async def test_a_finished_batch_sends_the_waiting_items_without_waiting_for_max_wait() -> None:
    recorder = Recorder(hold=["a", "b"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=2, max_wait_ms=60_000, max_concurrent_batches=3)
    tasks = spawn(queue, "a")
    await until(lambda: len(recorder.batches) == 1)
    tasks += spawn(queue, "b", "c")  # a full batch: leaves beside "a"
    await until(lambda: len(recorder.batches) == 2)
    tasks += spawn(queue, "d")  # a slot is free, but it would wait a minute for company
    await asyncio.sleep(0.05)
    assert queue.queued == 1
    recorder.release("a")
    await asyncio.wait_for(tasks[-1], 5)  # "a" finishing sends "d" at once, "b" still in flight
    assert recorder.batches == [["a"], ["b", "c"], ["d"]]
    recorder.release("b")
    assert await asyncio.gather(*tasks) == ["<a>", "<b>", "<c>", "<d>"]
    await queue.close()


async def test_a_handler_error_fails_every_waiter_of_its_batch_and_the_queue_goes_on() -> None:
    recorder = Recorder(hold=["a"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=4, max_wait_ms=0)
    first = spawn(queue, "a")
    await until(lambda: len(recorder.batches) == 1)
    doomed = spawn(queue, "b", "boom", "c")
    await until(lambda: queue.queued == 3)
    recorder.release("a")
    outcomes = await asyncio.gather(*first, *doomed, return_exceptions=True)
    assert outcomes[0] == "<a>"
    assert all(isinstance(error, ValueError) and str(error) == "boom" for error in outcomes[1:])
    assert await queue.submit("d") == "<d>"
    assert (queue.batches, queue.failed_batches, queue.ongoing) == (3, 1, 0)
    await queue.close()


async def test_a_wrong_number_of_results_fails_every_waiter_of_the_batch() -> None:
    recorder = Recorder(hold=["a"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=4, max_wait_ms=0, name="m-predict")
    first = spawn(queue, "a")
    await until(lambda: len(recorder.batches) == 1)
    doomed = spawn(queue, "b", "short")
    await until(lambda: queue.queued == 2)
    recorder.release("a")
    outcomes = await asyncio.gather(*first, *doomed, return_exceptions=True)
    assert outcomes[0] == "<a>"
    for error in outcomes[1:]:
        assert isinstance(error, BatchResultMismatch)
        assert "returned 1 results for 2 items" in str(error) and "m-predict" in str(error)
    assert await queue.submit("c") == "<c>"
    await queue.close()


async def test_a_waiter_cancelled_before_dispatch_is_not_served() -> None:
    recorder = Recorder(hold=["a"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=4, max_wait_ms=0)
    first = spawn(queue, "a")
    await until(lambda: len(recorder.batches) == 1)
    gone = spawn(queue, "b")[0]
    many_gone = asyncio.create_task(queue.submit_many(["m1", "m2"]))
    kept = spawn(queue, "c")
    await until(lambda: queue.queued == 4)
    gone.cancel()
    many_gone.cancel()
    await until(lambda: queue.queued == 1)
    recorder.release("a")
    assert await asyncio.gather(*first, *kept) == ["<a>", "<c>"]
    assert gone.cancelled() and many_gone.cancelled()
    assert recorder.batches == [["a"], ["c"]]
    await queue.close()


async def test_a_waiter_cancelled_in_flight_leaves_the_others_their_results() -> None:
    recorder = Recorder(hold=["a"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=4, max_wait_ms=0)
    gone = asyncio.create_task(queue.submit_many(["a", "b"]))
    await until(lambda: len(recorder.batches) == 1)
    gone.cancel()
    await asyncio.sleep(0.01)
    recorder.release("a")
    assert await queue.submit("c") == "<c>"
    assert gone.cancelled() and queue.ongoing == 0 and queue.items == 3
    await queue.close()


async def test_submit_many_keeps_a_request_in_one_batch() -> None:
    recorder = Recorder(hold=["a"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=4, max_wait_ms=0)
    first = spawn(queue, "a")
    await until(lambda: len(recorder.batches) == 1)
    singles = spawn(queue, "s1", "s2")
    rows = asyncio.create_task(queue.submit_many(["m1", "m2", "m3"]))
    tail = spawn(queue, "s3")
    await until(lambda: queue.queued == 6)
    recorder.release("a")
    assert await rows == ["<m1>", "<m2>", "<m3>"]
    assert await asyncio.gather(*first, *singles, *tail) == ["<a>", "<s1>", "<s2>", "<s3>"]
    # The three rows do not fit beside s1 and s2, and later items do not jump ahead of them.
    assert recorder.batches == [["a"], ["s1", "s2"], ["m1", "m2", "m3", "s3"]]
    assert await queue.submit_many([]) == []
    await queue.close()


async def test_submit_many_splits_an_oversize_request_into_consecutive_batches() -> None:
    recorder = Recorder(hold=["a"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=4, max_wait_ms=0)
    first = spawn(queue, "a")
    await until(lambda: len(recorder.batches) == 1)
    rows = [f"r{n}" for n in range(10)]
    big = asyncio.create_task(queue.submit_many(rows))
    later = spawn(queue, "z")
    await until(lambda: queue.queued == 11)
    recorder.release("a")
    assert await big == [f"<{row}>" for row in rows]
    assert await asyncio.gather(*first, *later) == ["<a>", "<z>"]
    assert recorder.batches == [["a"], rows[0:4], rows[4:8], rows[8:10] + ["z"]]
    await queue.close()


async def test_a_failed_chunk_fails_the_whole_request_and_drops_its_other_chunks() -> None:
    recorder = Recorder()
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=2, max_wait_ms=0)
    with pytest.raises(ValueError, match="boom"):
        await queue.submit_many(["r0", "r1", "boom", "r3", "r4", "r5"])
    assert recorder.batches == [["r0", "r1"], ["boom", "r3"]]
    assert queue.queued == 0
    assert await queue.submit_many(["x", "y", "z"]) == ["<x>", "<y>", "<z>"]
    await queue.close()


async def test_higher_priority_items_are_taken_first() -> None:
    recorder = Recorder(hold=["a"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=2, max_wait_ms=0)
    tasks = spawn(queue, "a")
    await until(lambda: len(recorder.batches) == 1)
    tasks += spawn(queue, "low1", "low2", "low3")
    tasks += spawn(queue, "high1", "high2", priority=5)
    tasks += spawn(queue, "mid", priority=1)
    await until(lambda: queue.queued == 6)
    recorder.release("a")
    await asyncio.gather(*tasks)
    assert recorder.batches == [["a"], ["high1", "high2"], ["mid", "low1"], ["low2", "low3"]]
    with pytest.raises(InvalidInput) as error:
        await queue.submit("x", priority="high")  # type: ignore[arg-type]
    assert error.value.param == "priority"
    await queue.close()


async def test_close_fails_queued_waiters_and_waits_for_the_batch_in_flight() -> None:
    recorder = Recorder(hold=["a"])
    queue: BatchQueue[str, str] = BatchQueue(recorder, max_batch_size=4, max_wait_ms=0, name="ep-1")
    first = spawn(queue, "a")
    await until(lambda: len(recorder.batches) == 1)
    queued = spawn(queue, "b", "c")
    await until(lambda: queue.queued == 2)
    closing = asyncio.create_task(queue.close())
    outcomes = await asyncio.gather(*queued, return_exceptions=True)
    for error in outcomes:
        assert isinstance(error, ServiceUnavailable)
        assert "closed" in error.message and "ep-1" in error.message and error.http_status == 503
    await asyncio.sleep(0.01)
    assert not closing.done()  # still waiting for "a"
    recorder.release("a")
    await asyncio.wait_for(closing, 5)
    assert first[0].result() == "<a>"
    assert queue.closed and queue.ongoing == 0 and recorder.batches == [["a"]]
    with pytest.raises(ServiceUnavailable):
        await queue.submit("d")
    await queue.close()  # a second close is harmless


async def test_a_failing_on_batch_hook_does_not_break_serving() -> None:
    def hook(size: int, seconds: float) -> None:
        raise RuntimeError("metrics down")

    queue: BatchQueue[str, str] = BatchQueue(Recorder(), max_batch_size=2, max_wait_ms=0, on_batch=hook)
    assert await queue.submit("a") == "<a>"
    assert await queue.submit("b") == "<b>"
    await queue.close()


@pytest.mark.parametrize(("knobs", "param"), [
    ({"max_batch_size": 0, "max_wait_ms": 0}, "max_batch_size"),
    ({"max_batch_size": 2.5, "max_wait_ms": 0}, "max_batch_size"),
    ({"max_batch_size": 4, "max_wait_ms": -1}, "max_wait_ms"),
    ({"max_batch_size": 4, "max_wait_ms": float("nan")}, "max_wait_ms"),
    ({"max_batch_size": 4, "max_wait_ms": 0, "max_concurrent_batches": 0}, "max_concurrent_batches"),
])
def test_bad_knobs_are_refused_naming_the_knob(knobs: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as error:
        BatchQueue(Recorder(), **knobs)
    assert error.value.param == param
