"""Endpoint rules: names, selectors, setting bounds and relations, refs, and checked copies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from aimaas.domain import ENDPOINT_SETTINGS, Endpoint, check_endpoint_name, check_endpoint_settings, check_selector
from aimaas.errors import InvalidInput


def _endpoint(**fields: Any) -> Endpoint:
    return Endpoint(**({"id": "ep_1", "tenant_id": "ten_1", "name": "iris", "model_name": "iris-clf"} | fields))


@pytest.mark.parametrize("name", ["a", "iris", "iris-prod", "iris_v2.1", "0day", "x" * 63])
def test_good_endpoint_names(name: str) -> None:
    assert check_endpoint_name(name) == name


@pytest.mark.parametrize("name", ["", "Iris", "-iris", ".iris", "_iris", "ir is", "iris/2", "iris@prod", "x" * 64])
def test_bad_endpoint_names(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_endpoint_name(name, param="endpoint")
    assert info.value.param == "endpoint" and "lower-case" in info.value.message


def test_endpoint_name_must_be_text() -> None:
    with pytest.raises(InvalidInput) as info:
        check_endpoint_name(3)  # type: ignore[arg-type]
    assert info.value.param == "name"


@pytest.mark.parametrize("selector", ["latest", "1", "42", "9" * 18, "prod", "canary-2_b", "a"])
def test_good_selectors(selector: str) -> None:
    assert check_selector(selector) == selector


@pytest.mark.parametrize("selector", ["", "-1", "1.0", "Prod", "a b", "a@b", "a/b", "-x", "_x", "x" * 65, None, 3])
def test_bad_selectors(selector: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        check_selector(selector, param="canary_selector")
    assert info.value.param == "canary_selector" and "latest" in info.value.message


@pytest.mark.parametrize("selector", ["0", "03", "9" * 19])
def test_numbers_that_name_no_version_are_refused(selector: str) -> None:
    with pytest.raises(InvalidInput):
        check_selector(selector)


def test_defaults_are_valid() -> None:
    endpoint = _endpoint()
    assert check_endpoint_settings(endpoint) is endpoint
    assert endpoint.settings() == {
        "min_replicas": 1,
        "max_replicas": 4,
        "max_batch_size": 64,
        "max_wait_ms": 5.0,
        "idle_timeout_s": 300.0,
        "target_ongoing_requests": 8,
        "canary_weight": 0.0,
    }
    assert set(endpoint.settings()) == set(ENDPOINT_SETTINGS)


@pytest.mark.parametrize("key", sorted(ENDPOINT_SETTINGS))
def test_every_bound_is_inclusive_and_enforced(key: str) -> None:
    low, high = ENDPOINT_SETTINGS[key]
    base: dict[str, Any] = {"canary_selector": "2"} if key == "canary_weight" else {}
    if key == "min_replicas":
        base["max_replicas"] = 64
    whole = key in ("min_replicas", "max_replicas", "max_batch_size", "target_ongoing_requests")
    for value in (low, high):
        fields = base | {key: int(value) if whole else value}
        if key == "max_replicas":
            fields["min_replicas"] = 0
        check_endpoint_settings(_endpoint(**fields))
    bad: tuple[object, ...] = (low - 1, high + 1, "3", None, True)
    for wrong in bad:
        with pytest.raises(InvalidInput) as info:
            check_endpoint_settings(_endpoint(**(base | {key: wrong})))
        assert info.value.param == key, wrong


@pytest.mark.parametrize("key", ["min_replicas", "max_replicas", "max_batch_size", "target_ongoing_requests"])
def test_counts_must_be_whole_numbers(key: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_endpoint_settings(_endpoint(**{"max_replicas": 8, key: 2.5}))
    assert info.value.param == key and "whole number" in info.value.message


def test_fractional_times_are_allowed() -> None:
    check_endpoint_settings(_endpoint(max_wait_ms=0.25, idle_timeout_s=1.5, canary_selector="2", canary_weight=0.05))


def test_min_replicas_cannot_exceed_max() -> None:
    check_endpoint_settings(_endpoint(min_replicas=4, max_replicas=4))
    check_endpoint_settings(_endpoint(min_replicas=0, max_replicas=1))
    with pytest.raises(InvalidInput) as info:
        check_endpoint_settings(_endpoint(min_replicas=5, max_replicas=4))
    assert info.value.param == "min_replicas" and "max_replicas" in info.value.message


def test_canary_weight_needs_a_canary_selector() -> None:
    check_endpoint_settings(_endpoint(canary_selector="staging"))  # a selector with weight 0 is a parked canary
    check_endpoint_settings(_endpoint(canary_selector="staging", canary_weight=1))
    with pytest.raises(InvalidInput) as info:
        check_endpoint_settings(_endpoint(canary_weight=0.1))
    assert info.value.param == "canary_weight" and "canary_selector" in info.value.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"name": "Bad"}, "name"), ({"selector": "v1.0"}, "selector"), ({"canary_selector": "a b"}, "canary_selector")],
)
def test_settings_check_names_and_selectors(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_endpoint_settings(_endpoint(**fields))
    assert info.value.param == param


@pytest.mark.parametrize(("selector", "ref"), [("latest", "iris-clf"), ("3", "iris-clf/3"), ("prod", "iris-clf@prod")])
def test_refs(selector: str, ref: str) -> None:
    endpoint = _endpoint(selector=selector, canary_selector=selector)
    assert endpoint.ref == endpoint.canary_ref == ref
    assert _endpoint(selector=selector).canary_ref is None


def test_with_changes_checks_and_stamps() -> None:
    old = datetime(2024, 1, 1, tzinfo=UTC)
    endpoint = _endpoint(created_at=old, updated_at=old)
    changed = endpoint.with_changes(max_replicas=8, canary_selector="prod", canary_weight=0.2)
    assert changed == replace(
        endpoint, max_replicas=8, canary_selector="prod", canary_weight=0.2, updated_at=changed.updated_at
    )
    assert changed.updated_at > old and changed.created_at == old and changed.canary_ref == "iris-clf@prod"
    assert endpoint.max_replicas == 4  # frozen: the original is untouched
    with pytest.raises(InvalidInput) as info:
        endpoint.with_changes(min_replicas=9)
    assert info.value.param == "min_replicas"
