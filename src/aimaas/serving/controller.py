"""ServingController: makes the running replicas match the endpoints in the store, and routes requests to them.

A reconcile pass (every ``reconcile_interval_s``, and at once after a change) reads every endpoint, resolves
its selectors to model versions, asks :func:`~aimaas.serving.autoscaling.decide` how many replicas it needs,
and applies that: it starts replicas (loading in the background), drains surplus ones, and when a selector
resolves to a new version (an alias moved) it loads the new version beside the old one and switches only once
a new replica is ready, so no request fails during a rollout. Endpoints whose models exceed the memory budget
are unloaded least-recently-used first and reload on their next request.

Requests never touch the database: ``acquire`` finds the endpoint in memory, picks the canary or the main
version by weight and the least-loaded ready replica, and waits (bounded) while an endpoint scales from zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aimaas.domain import Endpoint, ModelVersion, parse_model_ref
from aimaas.errors import AimaasError, NotFound, ServiceUnavailable
from aimaas.serving.autoscaling import AutoscalingConfig, ScalingState, decide
from aimaas.serving.materialize import Materializer
from aimaas.serving.replica import Replica
from aimaas.serving.router import pick_replica, pick_version
from aimaas.serving.runtime import runtime_for
from aimaas.storage.base import MetadataStore

__all__ = ["EndpointState", "ServingController", "VersionGroup"]

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (tenant_id, endpoint name)
LOAD_RETRY_S = 30.0  # after a replica fails to load, wait this long before trying that version again


@dataclass
class VersionGroup:
    """The replicas of one model version of an endpoint."""

    version: ModelVersion
    replicas: list[Replica] = field(default_factory=list)
    failed_at: float | None = None  # when a replica of this version last failed to load (retry backoff)
    failure: str | None = None

    def ready(self) -> list[Replica]:
        return [r for r in self.replicas if r.ready]

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.state in ("loading", "ready")]


@dataclass
class EndpointState:
    """What runs for one endpoint. ``main``/``canary`` serve; ``next_main`` loads a new version (rollout)."""

    endpoint: Endpoint
    main: VersionGroup | None = None
    canary: VersionGroup | None = None
    next_main: VersionGroup | None = None
    state: str = "loading"
    reason: str | None = None
    last_request_at: float | None = None
    waiting: int = 0
    above_since: float | None = None
    below_since: float | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def groups(self) -> list[VersionGroup]:
        return [g for g in (self.main, self.canary, self.next_main) if g is not None]

    def ongoing(self) -> int:
        return sum(r.ongoing for g in self.groups() for r in g.replicas)

    def memory(self) -> int:
        return sum(r.runtime.memory_bytes for g in self.groups() for r in g.replicas if r.ready)


class ServingController:
    """See the module docstring. Create it in the event loop that serves requests; ``start``/``stop`` it there."""

    def __init__(self, store: MetadataStore, materializer: Materializer, *, reconcile_interval_s: float = 0.5,
                 cold_start_timeout_s: float = 60.0, memory_budget_bytes: int | None = None,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._materializer = materializer
        self.reconcile_interval_s = reconcile_interval_s
        self.cold_start_timeout_s = cold_start_timeout_s
        self.memory_budget_bytes = memory_budget_bytes
        self._rng = rng or random.Random()
        self._clock = clock
        self._states: dict[Key, EndpointState] = {}
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._loop_ref: asyncio.AbstractEventLoop | None = None

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._wake, self._lock = asyncio.Event(), asyncio.Lock()
        self._loop_ref = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._loop(), name="aimaas-serving-controller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for state in list(self._states.values()):
            await self._retire(state)
        self._states.clear()

    def notify(self) -> None:
        """Reconcile as soon as possible (after an endpoint or alias changed). Safe from any thread."""
        loop, wake = self._loop_ref, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            try:
                await self.reconcile()
            except Exception:  # the loop must survive a bad pass (a database hiccup); the next pass retries
                log.exception("serving reconcile failed")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that arrives as the
            # wait ends, and stop() would then wait for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.reconcile_interval_s):
                    await self._wake.wait()
            self._wake.clear()

    # -- reconcile -----------------------------------------------------------------------------
    async def reconcile(self) -> None:
        """One pass: see the module docstring."""
        assert self._lock is not None
        async with self._lock:
            endpoints = await asyncio.to_thread(self._store.list_all_endpoints)
            seen: set[Key] = set()
            for endpoint in endpoints:
                key = (endpoint.tenant_id, endpoint.name)
                seen.add(key)
                state = self._states.get(key)
                if state is None or state.endpoint.id != endpoint.id:
                    if state is not None:
                        await self._retire(state)
                    state = self._states[key] = EndpointState(endpoint)
                state.endpoint = endpoint
                await self._reconcile_one(state)
            for key in [k for k in self._states if k not in seen]:
                await self._retire(self._states.pop(key))
            await self._enforce_budget()

    async def _resolve(self, endpoint: Endpoint, ref: str) -> ModelVersion:
        return await asyncio.to_thread(self._store.resolve_model_ref, endpoint.tenant_id, parse_model_ref(ref))

    async def _reconcile_one(self, state: EndpointState) -> None:
        endpoint = state.endpoint
        try:
            main = await self._resolve(endpoint, endpoint.ref)
            canary = None
            if endpoint.canary_ref is not None and endpoint.canary_weight > 0:
                canary = await self._resolve(endpoint, endpoint.canary_ref)
        except AimaasError as error:
            state.state, state.reason = "failed", error.message
            state.changed.set()
            return
        now = self._clock()
        config = AutoscalingConfig.from_endpoint(endpoint)
        current = len(state.main.live()) if state.main is not None else 0
        queued = state.waiting  # requests in a replica's queue already count in its ``ongoing``
        decision = decide(config, ScalingState(current_replicas=current, ongoing_requests=state.ongoing(),
                                               queued=queued, last_request_at=state.last_request_at, now=now,
                                               above_since=state.above_since, below_since=state.below_since))
        state.above_since, state.below_since = decision.above_since, decision.below_since
        # Replicas run in this process: past one per CPU they only add model copies and contention.
        desired = min(decision.replicas, max(1, os.cpu_count() or 1)) if decision.replicas else 0
        await self._place_main(state, main, desired)
        canary_count = 0 if canary is None or desired == 0 else max(1, round(desired * endpoint.canary_weight))
        state.canary = await self._scale_group(state, state.canary, canary, canary_count)
        self._update_status(state, desired)

    async def _place_main(self, state: EndpointState, version: ModelVersion, desired: int) -> None:
        if state.main is not None and state.main.version.id == version.id:
            if state.next_main is not None:  # a rollout was abandoned (the alias moved back)
                await self._drain_group(state.next_main)
                state.next_main = None
            state.main = await self._scale_group(state, state.main, version, desired)
            return
        if state.main is None or not state.main.ready():  # nothing serving yet: replace at once
            if state.main is not None:
                await self._drain_group(state.main)
            state.main = await self._scale_group(state, None, version, desired)
            return
        # a rollout: load the new version beside the old one and switch once it is ready
        pending = state.next_main
        if pending is None or pending.version.id != version.id:
            if pending is not None:
                await self._drain_group(pending)
            pending = state.next_main = await self._scale_group(state, None, version, max(1, desired))
        assert pending is not None
        if pending.ready():
            old, state.main, state.next_main = state.main, pending, None
            self._spawn(self._drain_group(old))
            state.changed.set()
        elif pending.failure is not None:
            state.reason = f"version {version.version} failed to load: {pending.failure}"

    async def _scale_group(self, state: EndpointState, group: VersionGroup | None, version: ModelVersion | None,
                           count: int) -> VersionGroup | None:
        if version is None or count == 0:
            if group is not None:
                self._spawn(self._drain_group(group))
            return None
        if group is None or group.version.id != version.id:
            if group is not None:
                self._spawn(self._drain_group(group))
            group = VersionGroup(version)
        group.replicas = [r for r in group.replicas if r.state in ("loading", "ready")]
        live = group.live()
        backing_off = group.failed_at is not None and self._clock() - group.failed_at < LOAD_RETRY_S
        for _ in range(0 if backing_off else count - len(live)):
            replica = await self._new_replica(state.endpoint, version)
            group.replicas.append(replica)
            self._spawn(self._load(state, group, replica))
        surplus = sorted(live, key=lambda r: (r.ready, -r.ongoing))[: max(0, len(live) - count)]
        for replica in surplus:
            group.replicas.remove(replica)
            self._spawn(replica.drain())
        return group

    async def _new_replica(self, endpoint: Endpoint, version: ModelVersion) -> Replica:
        source = await asyncio.to_thread(self._materializer.source, version, endpoint.model_name)
        runtime = await asyncio.to_thread(runtime_for, source)  # imports the backend: never in the event loop
        return Replica(runtime, version=version.version, max_batch_size=endpoint.max_batch_size,
                       max_wait_ms=endpoint.max_wait_ms)

    async def _load(self, state: EndpointState, group: VersionGroup, replica: Replica) -> None:
        """Load a replica; a failure is kept on the group (the endpoint shows it) and retried after a pause."""
        await replica.load()
        if replica.state == "failed":
            log.warning("replica failed to load: %s", replica.reason)
            group.failed_at, group.failure = self._clock(), replica.reason
        else:
            group.failed_at = group.failure = None
            gc.freeze()  # keep the model's long-lived objects out of the cyclic collector's scans (latency)
        state.changed.set()
        self.notify()

    def _update_status(self, state: EndpointState, desired: int) -> None:
        main = state.main
        if main is not None and main.ready():
            live = len(main.live())
            state.state, state.reason = ("scaling" if live != desired or state.next_main else "ready"), None
        elif main is not None and main.failure is not None and not main.live():
            state.state, state.reason = "failed", f"version {main.version.version} failed to load: {main.failure}"
        elif main is None and desired == 0:
            state.state, state.reason = "idle", None
        else:
            state.state = "loading"
        state.changed.set()

    async def _drain_group(self, group: VersionGroup) -> None:
        await asyncio.gather(*(r.drain() for r in group.replicas), return_exceptions=True)
        group.replicas.clear()

    async def _retire(self, state: EndpointState) -> None:
        for group in state.groups():
            await self._drain_group(group)
        state.main = state.canary = state.next_main = None
        state.state = "idle"
        state.changed.set()

    async def _enforce_budget(self) -> None:
        """While the loaded models exceed the memory budget, unload the least recently used endpoints that may
        scale to zero (``min_replicas`` 0) and have no request in flight; they reload on their next request.
        Endpoints that asked for replicas always keep them (the budget is then exceeded, and logged)."""
        if self.memory_budget_bytes is None:
            return
        loaded = [s for s in self._states.values() if s.memory() > 0]
        total = sum(s.memory() for s in loaded)
        for state in sorted(loaded, key=lambda s: s.last_request_at or 0.0):
            if total <= self.memory_budget_bytes:
                return
            if state.endpoint.min_replicas > 0 or state.ongoing() or state.waiting:
                continue
            total -= state.memory()
            log.info("unloading endpoint %s to stay within the memory budget", state.endpoint.name)
            await self._retire(state)
            state.last_request_at = None  # idle: the autoscaler keeps it at zero until a request comes
        if total > self.memory_budget_bytes:
            log.warning("loaded models take %d bytes, over the %d-byte budget, and none can be unloaded now",
                        total, self.memory_budget_bytes)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- requests ------------------------------------------------------------------------------
    def state_of(self, tenant_id: str, name: str) -> EndpointState | None:
        return self._states.get((tenant_id, name))

    async def acquire(self, tenant_id: str, name: str) -> Replica:
        """A ready replica of the endpoint (canary by weight), waiting up to ``cold_start_timeout_s`` while it
        starts. NotFound for an unknown endpoint; ServiceUnavailable (with ``Retry-After``) when none is ready."""
        state = self._states.get((tenant_id, name))
        if state is None:
            await asyncio.to_thread(self._store.get_endpoint, tenant_id, name)  # NotFound for a wrong name
            await self.reconcile()
            state = self._states.get((tenant_id, name))
            if state is None:
                raise NotFound(f"endpoint {name!r} not found", param="model")
        state.last_request_at = self._clock()
        replica = self._pick(state)
        if replica is not None:
            return replica
        deadline = self._clock() + self.cold_start_timeout_s
        state.waiting += 1
        try:
            self.notify()
            while True:
                state.changed.clear()
                replica = self._pick(state)
                if replica is not None:
                    return replica
                if state.state == "failed":
                    raise ServiceUnavailable(f"endpoint {name!r} cannot serve: {state.reason}",
                                             headers={"Retry-After": "30"})
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise ServiceUnavailable(f"endpoint {name!r} has no ready replica yet ({state.state}); retry "
                                             "shortly", headers={"Retry-After": "5"})
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, 1.0)):
                        await state.changed.wait()
        finally:
            state.waiting -= 1

    def _pick(self, state: EndpointState) -> Replica | None:
        main = state.main.ready() if state.main is not None else []
        canary = state.canary.ready() if state.canary is not None else []
        if not main and not canary:
            return None
        weight = state.endpoint.canary_weight if canary else 0.0
        if not main:
            weight = 1.0
        main_version = state.main.version.version if state.main is not None else -1
        canary_version = state.canary.version.version if state.canary is not None else -1
        chosen = pick_version(main_version, canary_version, weight, self._rng.random())
        pool = canary if canary and chosen == canary_version and chosen != main_version or not main else main
        return pick_replica(pool)
