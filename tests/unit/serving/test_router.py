"""Routing: the canary share of a weighted split, and the least-loaded ready replica with round-robin ties."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from aimaas.errors import InvalidInput, ServiceUnavailable
from aimaas.serving.router import pick_replica, pick_version


@pytest.mark.parametrize("weight", [0.01, 0.1, 0.25, 0.5, 0.9])
def test_the_canary_gets_its_weight_of_the_traffic(weight: float) -> None:
    rng = random.Random(1234)
    draws = 100_000
    counts = Counter(pick_version(3, 4, weight, rng.random()) for _ in range(draws))
    assert set(counts) == {3, 4}
    assert abs(counts[4] / draws - weight) < 0.02


def test_edge_weights_and_no_canary_are_deterministic() -> None:
    for rnd in (0.0, 0.3, 0.999999):
        assert pick_version(3, 4, 0.0, rnd) == 3
        assert pick_version(3, 4, 1.0, rnd) == 4
        assert pick_version(3, None, 0.7, rnd) == 3
    assert pick_version(3, 4, 0.5, 0.49) == 4
    assert pick_version(3, 4, 0.5, 0.5) == 3  # the canary takes [0, weight)


def test_bad_draws_and_weights_are_refused() -> None:
    for rnd in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            pick_version(3, 4, 0.5, rnd)
    for weight in (-0.1, 1.5, float("nan")):
        with pytest.raises(InvalidInput) as error:
            pick_version(3, 4, weight, 0.5)
        assert error.value.param == "canary_weight"


@dataclass
class Handle:
    name: str
    ongoing: int = 0
    ready: bool = True


def test_the_least_loaded_ready_replica_is_picked() -> None:
    replicas = [Handle("a", 5), Handle("b", 2), Handle("c", 0, ready=False), Handle("d", 3)]
    assert pick_replica(replicas).name == "b"
    replicas[1].ongoing = 7
    assert pick_replica(replicas).name == "d"
    assert pick_replica(iter(replicas)).name == "d"  # any iterable will do


def test_ties_go_round_robin() -> None:
    replicas = [Handle("a", 1), Handle("b", 1), Handle("c", 1), Handle("busy", 4)]
    assert [pick_replica(replicas, turn=turn).name for turn in range(6)] == ["a", "b", "c", "a", "b", "c"]
    # Without an explicit turn, successive calls spread evenly over the tied replicas.
    counts = Counter(pick_replica(replicas).name for _ in range(300))
    assert counts == {"a": 100, "b": 100, "c": 100}


def test_least_loaded_routing_balances_requests_that_stay_open() -> None:
    replicas = [Handle(name) for name in "abcd"]
    for _ in range(40):
        pick_replica(replicas).ongoing += 1  # each request stays in flight
    assert [replica.ongoing for replica in replicas] == [10, 10, 10, 10]


def test_no_ready_replica_is_a_503_with_retry_after() -> None:
    for replicas in ([], [Handle("a", ready=False)]):
        with pytest.raises(ServiceUnavailable) as error:
            pick_replica(replicas)
        assert error.value.http_status == 503 and error.value.headers == {"Retry-After": "1"}
        assert "no replica" in error.value.message and "retry" in error.value.message
