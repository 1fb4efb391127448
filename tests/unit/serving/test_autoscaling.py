"""The autoscaling decision as a table, a simulated control loop applying it, and the config checks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from aimaas.domain.endpoints import Endpoint
from aimaas.errors import InvalidInput
from aimaas.serving.autoscaling import AutoscalingConfig, Decision, ScalingState, decide

BASE = AutoscalingConfig(min_replicas=1, max_replicas=4, target_ongoing_requests=8, idle_timeout_s=300,
                         upscale_delay_s=0, downscale_delay_s=10)
NOW = 1000.0


def state(current: int, ongoing: float = 0, queued: int = 0, *, last: float | None = NOW - 1,
          above: float | None = None, below: float | None = None) -> ScalingState:
    return ScalingState(current_replicas=current, ongoing_requests=ongoing, queued=queued, last_request_at=last,
                        now=NOW, above_since=above, below_since=below)


# (case, config changes, state, replicas, above_since, below_since, words in the reason)
CASES: list[tuple[str, dict[str, Any], ScalingState, int, float | None, float | None, str]] = [
    ("steady under the target", {}, state(1, 5), 1, None, None, "steady"),
    ("exactly at the target", {}, state(2, 16), 2, None, None, "steady"),
    ("scale up at once", {}, state(1, 20), 3, None, None, "scale up from 1"),
    ("queued requests count as demand", {}, state(1, 8, queued=9), 3, None, None, "17 ongoing+queued"),
    ("never above max_replicas", {}, state(1, 100), 4, None, None, "scale up"),
    ("up delay starts its timer", {"upscale_delay_s": 5}, state(1, 20), 1, NOW, None, "waiting 5s before scaling up"),
    ("up delay still running", {"upscale_delay_s": 5}, state(1, 20, above=NOW - 3), 1, NOW - 3, None, "waiting"),
    ("up delay elapsed", {"upscale_delay_s": 5}, state(1, 20, above=NOW - 5), 3, None, None, "scale up"),
    ("down delay starts its timer", {}, state(3, 4), 3, None, NOW, "waiting 10s before scaling down"),
    ("down delay still running", {}, state(3, 4, below=NOW - 9), 3, None, NOW - 9, "waiting"),
    ("down delay elapsed", {}, state(3, 4, below=NOW - 10), 1, None, None, "scale down from 3"),
    ("down goes straight to the need", {}, state(4, 12, below=NOW - 60), 2, None, None, "need 2"),
    ("demand back up resets the down timer", {}, state(3, 24, below=NOW - 9), 3, None, None, "steady"),
    ("demand back down resets the up timer", {"upscale_delay_s": 5}, state(2, 10, above=NOW - 4), 2, None, None,
     "steady"),
    ("min_replicas is a floor", {"min_replicas": 2}, state(2, 0, last=None, below=NOW - 600), 2, None, None, "steady"),
    ("below min_replicas: up at once", {"min_replicas": 2, "upscale_delay_s": 60}, state(1, 0), 2, None, None,
     "below min_replicas=2"),
    ("above max_replicas: down at once", {}, state(6, 100), 4, None, None, "above max_replicas=4"),
    ("cold start ignores the up delay", {"min_replicas": 0, "upscale_delay_s": 60}, state(0, 0, queued=1), 1, None,
     None, "cold start"),
    ("cold start sized to the queue", {"min_replicas": 0}, state(0, 0, queued=20), 3, None, None, "cold start"),
    ("at zero with no demand stays at zero", {"min_replicas": 0}, state(0, 0, last=None), 0, None, None, "steady"),
    ("a recent request does not wake a zero endpoint", {"min_replicas": 0}, state(0, 0, last=NOW - 10), 0, None, None,
     "steady"),
    ("no scale to zero before idle_timeout", {"min_replicas": 0}, state(1, 0, last=NOW - 299), 1, None, None,
     "steady"),
    ("scale to zero after idle_timeout", {"min_replicas": 0}, state(1, 0, last=NOW - 300), 0, None, None,
     "scale to zero: no request for 300s"),
    ("scale to zero with no request ever", {"min_replicas": 0}, state(2, 0, last=None), 0, None, None,
     "scale to zero"),
    ("not to zero while a request runs", {"min_replicas": 0}, state(1, 1, last=NOW - 900), 1, None, None, "steady"),
    ("min 1 never reaches zero", {}, state(1, 0, last=None), 1, None, None, "steady"),
    ("min 0, recent request: only down to 1, after the delay", {"min_replicas": 0}, state(3, 0, last=NOW - 20), 3, None,
     NOW, "waiting"),
]


@pytest.mark.parametrize(("changes", "current", "replicas", "above", "below", "words"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_decision_table(changes: dict[str, Any], current: ScalingState, replicas: int, above: float | None,
                        below: float | None, words: str) -> None:
    config = replace(BASE, **changes)
    decision = decide(config, current)
    assert (decision.replicas, decision.above_since, decision.below_since) == (replicas, above, below)
    assert words in decision.reason
    assert decide(config, current) == decision  # pure: same inputs, same answer


def test_a_control_loop_applying_decisions_follows_the_load() -> None:
    """Simulate the controller: one decision per second over a load profile, timers fed back."""
    config = AutoscalingConfig(min_replicas=0, max_replicas=5, target_ongoing_requests=4, idle_timeout_s=60,
                               upscale_delay_s=2, downscale_delay_s=10)
    load = [0] * 5 + [3] * 5 + [18] * 10 + [5] * 30 + [0] * 100  # requests in flight, second by second
    replicas, above, below, last = 0, None, None, None
    history: list[int] = []
    for second, ongoing in enumerate(load):
        now = float(second)
        if ongoing:
            last = now
        # At zero replicas the requests wait in the queue; otherwise they run on the replicas.
        queued, running = (ongoing, 0) if replicas == 0 else (0, ongoing)
        decision: Decision = decide(config, ScalingState(replicas, running, queued, last, now, above, below))
        replicas, above, below = decision.replicas, decision.above_since, decision.below_since
        history.append(replicas)
    assert history[:5] == [0] * 5  # nothing asked, nothing runs
    assert history[5] == 1  # cold start at the first request
    assert history[10:12] == [1, 1] and history[12] == 5  # 18 requests need 5: after the 2 s up delay
    assert history[20:30] == [5] * 10 and history[30] == 2  # 5 requests need 2: after the 10 s down delay
    assert history[50:60] == [2] * 10 and history[60] == 1  # no demand: down to 1 (still warm)...
    assert history[60:109] == [1] * 49 and history[109] == 0  # ...and to zero 60 s after the last request
    assert history[-1] == 0


@pytest.mark.parametrize(("changes", "param"), [
    ({"min_replicas": 5}, "min_replicas"),
    ({"min_replicas": -1}, "min_replicas"),
    ({"max_replicas": 0, "min_replicas": 0}, "max_replicas"),
    ({"max_replicas": 2.5}, "max_replicas"),
    ({"min_replicas": True}, "min_replicas"),
    ({"target_ongoing_requests": 0}, "target_ongoing_requests"),
    ({"idle_timeout_s": -1}, "idle_timeout_s"),
    ({"upscale_delay_s": float("nan")}, "upscale_delay_s"),
    ({"downscale_delay_s": float("inf")}, "downscale_delay_s"),
])
def test_bad_configs_are_refused_naming_the_setting(changes: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as error:
        replace(BASE, **changes)
    assert error.value.param == param


def test_config_from_an_endpoint() -> None:
    endpoint = Endpoint(id="e1", tenant_id="t1", name="ep", model_name="m", min_replicas=0, max_replicas=3,
                        idle_timeout_s=120, target_ongoing_requests=16)
    config = AutoscalingConfig.from_endpoint(endpoint, downscale_delay_s=30)
    assert config == AutoscalingConfig(min_replicas=0, max_replicas=3, target_ongoing_requests=16, idle_timeout_s=120,
                                       upscale_delay_s=0, downscale_delay_s=30)
