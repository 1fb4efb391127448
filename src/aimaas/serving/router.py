"""Routing decisions: which version serves a request (canary split) and which replica of it (least loaded).

Both are pure functions of their inputs (the random draw and the round-robin turn are passed in or drawn
from one module-level counter), so they are tested without a server and the inference service stays thin.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Protocol, TypeVar

from aimaas.errors import InvalidInput, ServiceUnavailable

__all__ = ["ReplicaLike", "pick_replica", "pick_version"]


class ReplicaLike(Protocol):
    """Anything with a current load (``ongoing`` requests) and a ``ready`` flag: a replica handle."""

    @property
    def ongoing(self) -> int | float: ...

    @property
    def ready(self) -> bool: ...


ReplicaT = TypeVar("ReplicaT", bound=ReplicaLike)

# Turns for breaking ties between equally loaded replicas; next() on itertools.count is atomic under the GIL.
_turns = itertools.count()


def pick_version(main_version: int, canary_version: int | None, canary_weight: float, rnd: float) -> int:
    """The version that serves a request: ``canary_version`` when ``rnd < canary_weight``, else ``main_version``.

    ``rnd`` is a uniform draw in [0, 1) (``random.random()``), so the canary gets ``canary_weight`` of the
    traffic. No canary (None) or a weight of 0 always gives the main version; a weight of 1 always the canary.
    """
    if not 0.0 <= rnd < 1.0:
        raise ValueError(f"rnd must be a uniform draw in [0, 1); got {rnd!r}")
    if isinstance(canary_weight, bool) or not isinstance(canary_weight, int | float) or not 0 <= canary_weight <= 1:
        raise InvalidInput(f"canary_weight must be a number from 0 to 1; got {canary_weight!r}",
                           param="canary_weight")
    if canary_version is None or canary_weight <= 0:
        return main_version
    return canary_version if rnd < canary_weight else main_version


def pick_replica(replicas: Iterable[ReplicaT], *, turn: int | None = None) -> ReplicaT:
    """The ready replica with the fewest ongoing requests; ties go round-robin.

    ``turn`` picks among the equally loaded ones (``turn % count``, in the given order); by default a
    process-wide counter advances on every call, so idle replicas take turns. Raises ServiceUnavailable
    (503, ``Retry-After``) when no replica is ready: the endpoint is scaling up or loading.
    """
    ready = [replica for replica in replicas if replica.ready]
    if not ready:
        raise ServiceUnavailable("no replica of this endpoint is ready yet (it is starting or loading its model); "
                                 "retry in a moment", headers={"Retry-After": "1"})
    least = min(replica.ongoing for replica in ready)
    tied = [replica for replica in ready if replica.ongoing == least]
    if len(tied) == 1:
        return tied[0]
    index = next(_turns) if turn is None else turn
    return tied[index % len(tied)]
