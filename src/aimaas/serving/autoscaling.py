"""The autoscaling decision: a pure function from an endpoint's settings and its load to a replica count.

The controller samples the load, calls :func:`decide` and applies the answer; it keeps the returned
``above_since`` / ``below_since`` and passes them back in the next :class:`ScalingState`, so the function
itself holds no state and the same inputs always give the same decision (Ray Serve's policy shape).

The rule:

* ``desired = ceil((ongoing + queued) / target_ongoing_requests)``, clamped to ``[floor, max_replicas]`` where
  ``floor`` is ``min_replicas``, or 1 while there is demand, or while replicas run and a request came within
  ``idle_timeout_s``.
* **Cold start**: requests waiting on an endpoint with no replica get one (or more) at once, whatever the delays.
* **Bounds**: a count outside ``[min_replicas, max_replicas]`` (the settings changed) is corrected at once.
* **Up**: once the demand has needed more replicas for ``upscale_delay_s`` (0: at once).
* **Down**: once the demand has needed fewer replicas for ``downscale_delay_s``, so a short lull does not
  tear down replicas that a second later have to load again.
* **To zero**: only with ``min_replicas == 0``, no demand, and no request for ``idle_timeout_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aimaas.domain.endpoints import Endpoint
from aimaas.errors import InvalidInput

__all__ = ["AutoscalingConfig", "Decision", "ScalingState", "decide"]


@dataclass(frozen=True, slots=True)
class AutoscalingConfig:
    """An endpoint's scaling settings (checked on creation; InvalidInput names the bad one)."""

    min_replicas: int
    max_replicas: int
    target_ongoing_requests: float
    idle_timeout_s: float
    upscale_delay_s: float = 0.0
    downscale_delay_s: float = 10.0

    def __post_init__(self) -> None:
        for key in ("min_replicas", "max_replicas"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"{key} must be a whole number >= 0; got {value!r}", param=key)
        if self.max_replicas < 1:
            raise InvalidInput("max_replicas must be at least 1", param="max_replicas")
        if self.min_replicas > self.max_replicas:
            raise InvalidInput("min_replicas cannot exceed max_replicas", param="min_replicas")
        for key in ("target_ongoing_requests", "idle_timeout_s", "upscale_delay_s", "downscale_delay_s"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 or math.isinf(value):
                raise InvalidInput(f"{key} must be a finite number >= 0; got {value!r}", param=key)
        if self.target_ongoing_requests <= 0:
            raise InvalidInput("target_ongoing_requests must be above 0", param="target_ongoing_requests")

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint, *, upscale_delay_s: float = 0.0,
                      downscale_delay_s: float = 10.0) -> AutoscalingConfig:
        """The config an endpoint's settings describe (the delays are server-wide, not per endpoint)."""
        return cls(min_replicas=endpoint.min_replicas, max_replicas=endpoint.max_replicas,
                   target_ongoing_requests=endpoint.target_ongoing_requests,
                   idle_timeout_s=endpoint.idle_timeout_s, upscale_delay_s=upscale_delay_s,
                   downscale_delay_s=downscale_delay_s)


@dataclass(frozen=True, slots=True)
class ScalingState:
    """What the controller sees now. Times are monotonic seconds.

    * ``ongoing_requests``: requests being served, summed over the replicas; ``queued``: requests waiting
      for a replica (e.g. on an endpoint scaled to zero).
    * ``last_request_at``: when the last request arrived, or None if none arrived since the controller
      started counting (it then counts as idle: pass the deployment time to keep a new endpoint up for
      ``idle_timeout_s``).
    * ``above_since`` / ``below_since``: the previous :class:`Decision`'s values (None the first time).
    """

    current_replicas: int
    ongoing_requests: float
    queued: int
    last_request_at: float | None
    now: float
    above_since: float | None = None
    below_since: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """How many replicas to run, why (for the event log), and the timers to pass back next time:
    ``above_since`` / ``below_since`` are when the demand started needing more / fewer replicas than run
    (None when it does not)."""

    replicas: int
    reason: str
    above_since: float | None = None
    below_since: float | None = None


def desired_replicas(config: AutoscalingConfig, state: ScalingState) -> int:
    """The replica count the current demand calls for, within the bounds (no delays applied)."""
    demand = max(0.0, state.ongoing_requests) + max(0, state.queued)
    wanted = math.ceil(demand / config.target_ongoing_requests)
    floor = config.min_replicas
    # A running endpoint stays warm until idle; one already at zero is only woken by demand.
    if demand > 0 or (state.current_replicas > 0 and not _idle(config, state)):
        floor = max(floor, 1)
    return min(max(wanted, floor), config.max_replicas)


def _idle(config: AutoscalingConfig, state: ScalingState) -> bool:
    return state.last_request_at is None or state.now - state.last_request_at >= config.idle_timeout_s


def decide(config: AutoscalingConfig, state: ScalingState) -> Decision:
    """The replica count to run now (see the module doc for the rule). Pure and deterministic."""
    current = max(0, state.current_replicas)
    demand = max(0.0, state.ongoing_requests) + max(0, state.queued)
    desired = desired_replicas(config, state)
    need = f"{demand:g} ongoing+queued requests at {config.target_ongoing_requests:g} per replica need {desired}"

    if current == 0 and demand > 0:
        return Decision(desired, f"cold start: {need}")
    if current < config.min_replicas:
        return Decision(desired, f"below min_replicas={config.min_replicas}: {need}")
    if current > config.max_replicas:
        return Decision(config.max_replicas, f"above max_replicas={config.max_replicas}")

    if desired > current:
        above_since = state.now if state.above_since is None else state.above_since
        if state.now - above_since >= config.upscale_delay_s:
            return Decision(desired, f"scale up from {current}: {need}")
        return Decision(current, f"waiting {config.upscale_delay_s:g}s before scaling up: {need}",
                        above_since=above_since)

    if desired < current:
        if desired == 0:
            return Decision(0, f"scale to zero: no request for {config.idle_timeout_s:g}s")
        below_since = state.now if state.below_since is None else state.below_since
        if state.now - below_since >= config.downscale_delay_s:
            return Decision(desired, f"scale down from {current}: {need}")
        return Decision(current, f"waiting {config.downscale_delay_s:g}s before scaling down: {need}",
                        below_since=below_since)

    return Decision(current, f"steady: {need}")
