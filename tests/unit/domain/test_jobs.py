"""Job states, transitions, specs, events and the scheduling decision, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aimaas.domain.jobs import (
    TERMINAL_STATES,
    TRANSITIONS,
    JobEvent,
    JobSpec,
    JobState,
    QueuedJob,
    check_transition,
    is_terminal,
    pick_next,
    validate_job_id,
)
from aimaas.errors import Conflict, InvalidInput

Q, R, S, F, C = JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED
ALLOWED = {(Q, R), (Q, C), (Q, F), (R, S), (R, F), (R, C)}


@pytest.mark.parametrize("old", list(JobState))
@pytest.mark.parametrize("new", list(JobState))
def test_transition_table(old: JobState, new: JobState) -> None:
    if (old, new) in ALLOWED:
        assert check_transition(old, new) is new
        assert check_transition(old.value, new.value) is new
    else:
        with pytest.raises(Conflict) as info:
            check_transition(old, new)
        assert info.value.code == "invalid_job_transition"
        assert str(old) in info.value.message and str(new) in info.value.message


def test_transition_messages_say_what_is_possible() -> None:
    with pytest.raises(Conflict, match="already succeeded and can no longer change"):
        check_transition("succeeded", "running")
    with pytest.raises(Conflict, match="a running job cannot become queued; it can only become cancelled or failed or"):
        check_transition("running", "queued")
    with pytest.raises(InvalidInput) as info:
        check_transition("paused", "running")
    assert info.value.param == "old"


def test_terminal_states() -> None:
    assert {S, F, C} == TERMINAL_STATES
    assert [is_terminal(s) for s in JobState] == [False, False, True, True, True]
    assert all(not TRANSITIONS[s] for s in TERMINAL_STATES)
    assert is_terminal("cancelled")


def spec(**fields: Any) -> JobSpec:
    values: dict[str, Any] = {
        "kind": "train",
        "entrypoint": "aimaas.training.runner:run",
        "params": {"a": [1]},
        "tenant_id": "ten_1",
    }
    return JobSpec(**(values | fields))


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"kind": ""}, "kind"),
        ({"entrypoint": "aimaas.training.runner"}, "entrypoint"),
        ({"entrypoint": "os:system; rm"}, "entrypoint"),
        ({"entrypoint": "a..b:run"}, "entrypoint"),
        ({"entrypoint": "mod:obj.attr"}, "entrypoint"),
        ({"params": {"x": object()}}, "params"),
        ({"params": {"x": float("nan")}}, "params"),
        ({"params": [1]}, "params"),
        ({"tenant_id": ""}, "tenant_id"),
        ({"priority": "high"}, "priority"),
        ({"priority": True}, "priority"),
        ({"resume_from": "../other"}, "resume_from"),
    ],
)
def test_job_spec_refuses_bad_fields(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as info:
        spec(**fields)
    assert info.value.param == param


def test_job_spec_round_trips() -> None:
    s = spec(priority=5, resume_from="job_01")
    assert JobSpec.from_dict(s.to_dict()) == s
    assert s.module == "aimaas.training.runner"


@pytest.mark.parametrize("good", ["job_0190abc", "a", "A-1.b_2", "x" * 128])
def test_job_ids_that_are_safe_path_segments(good: str) -> None:
    assert validate_job_id(good) == good


@pytest.mark.parametrize("bad", ["", ".", "..", "../a", "a/b", "a\\b", "-a", "x" * 129, "é", "a b", None])
def test_job_ids_that_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        validate_job_id(bad)


def test_job_event_knows_terminal_states() -> None:
    now = datetime.now(UTC)
    assert JobEvent("j", 1, now, "state", {"state": "running"}).terminal_state is None
    assert JobEvent("j", 2, now, "state", {"state": "failed"}).terminal_state is F
    assert JobEvent("j", 3, now, "log", {"message": "failed"}).terminal_state is None
    with pytest.raises(InvalidInput):
        JobEvent("j", 4, now, "heartbeat", {})  # type: ignore[arg-type]


T0 = datetime(2025, 1, 1, tzinfo=UTC)


def q(job_id: str, tenant: str, priority: int = 0, minute: int = 0) -> QueuedJob:
    return QueuedJob(job_id, tenant, priority, T0 + timedelta(minutes=minute))


QUEUE = [
    q("a1", "A", 0, 0),
    q("a2", "A", 0, 1),
    q("b1", "B", 0, 2),
    q("c1", "C", 5, 3),
    q("a3", "A", 9, 4),
    q("b2", "B", 5, 5),
]


@pytest.mark.parametrize(
    ("running", "limit", "free", "expected"),
    [
        ({}, None, 10, ["a3", "c1", "b2", "a1", "a2", "b1"]),  # priority, then age
        ({}, None, 2, ["a3", "c1"]),  # no more than the free slots
        ({}, 1, 10, ["a3", "c1", "b2"]),  # one per tenant
        ({}, 2, 10, ["a3", "c1", "b2", "a1", "b1"]),  # A's third waits; B is not blocked by it
        ({"A": 2}, 2, 10, ["c1", "b2", "b1"]),  # A is full already
        ({"A": 5, "B": 1, "C": 0}, 1, 10, ["c1"]),
        ({}, None, 0, []),
        ({}, None, -1, []),
    ],
)
def test_pick_next(running: dict[str, int], limit: int | None, free: int, expected: list[str]) -> None:
    assert pick_next(QUEUE, running, limit, free) == expected


def test_pick_next_breaks_ties_by_id_and_ignores_repeats() -> None:
    same = [q("j2", "A"), q("j1", "A"), q("j1", "A")]
    assert pick_next(same, {}, None, 5) == ["j1", "j2"]
    assert pick_next([], {}, 3, 5) == []


def test_pick_next_does_not_change_its_inputs() -> None:
    running = {"A": 1}
    queue = list(QUEUE)
    pick_next(queue, running, 3, 10)
    assert running == {"A": 1} and queue == QUEUE


def test_pick_next_refuses_a_limit_below_one() -> None:
    with pytest.raises(InvalidInput):
        pick_next(QUEUE, {}, 0, 3)
