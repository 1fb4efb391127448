"""Endpoints: a tenant's named, deployed model (or two, for a canary), and the rules their settings follow.

An endpoint names the model by a *selector* that is resolved continually: ``latest``, an alias (``production``)
or a version number (``"3"``). When an alias moves, the serving controller deploys the new version and drains
the old one. A canary sends ``canary_weight`` (0–1) of the requests to a second selector of the same model.

The endpoint row is the *desired* state; what is running (replicas, status) is the controller's business
and lives in memory (:mod:`aimaas.serving.controller`).

Pure Python: shared by the stores, the services and the serving layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from aimaas.domain.models import utcnow
from aimaas.errors import InvalidInput

__all__ = [
    "ENDPOINT_SETTINGS",
    "Endpoint",
    "check_endpoint_name",
    "check_endpoint_settings",
    "check_selector",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
# A version number (no leading zero, as model refs write it), or an alias (which is never all digits), or latest.
_SELECTOR = re.compile(r"^(latest|[1-9][0-9]{0,17}|(?![0-9]+$)[a-z0-9][a-z0-9_-]{0,63})$")

#: Settings an update may change, with their bounds (inclusive).
ENDPOINT_SETTINGS: dict[str, tuple[float, float]] = {
    "min_replicas": (0, 64),
    "max_replicas": (1, 64),
    "max_batch_size": (1, 4096),
    "max_wait_ms": (0, 1000),
    "idle_timeout_s": (1, 7 * 24 * 3600),
    "target_ongoing_requests": (1, 10_000),
    "canary_weight": (0, 1),
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A deployed model of one tenant (desired state).

    * ``model_name`` + ``selector``: which version serves (``latest``, an alias or a number as text).
    * ``canary_selector`` / ``canary_weight``: a second version of the same model and the share of
      requests it gets (None / 0: no canary).
    * Scaling: ``min_replicas`` (0 allows scale to zero after ``idle_timeout_s`` without requests),
      ``max_replicas``, ``target_ongoing_requests`` per replica (the autoscaler's set point).
    * Batching: ``max_batch_size`` requests served together, waiting at most ``max_wait_ms`` for more.
    """

    id: str
    tenant_id: str
    name: str
    model_name: str
    selector: str = "latest"
    canary_selector: str | None = None
    canary_weight: float = 0.0
    min_replicas: int = 1
    max_replicas: int = 4
    max_batch_size: int = 64
    max_wait_ms: float = 5.0
    idle_timeout_s: float = 300.0
    target_ongoing_requests: int = 8
    description: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def ref(self) -> str:
        """The model ref the main selector names (``name@alias``, ``name/3`` or ``name``)."""
        return selector_ref(self.model_name, self.selector)

    @property
    def canary_ref(self) -> str | None:
        return None if self.canary_selector is None else selector_ref(self.model_name, self.canary_selector)

    def settings(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ENDPOINT_SETTINGS}

    def with_changes(self, **changes: Any) -> Endpoint:
        """A copy with ``changes`` applied and checked (InvalidInput naming the field)."""
        updated = replace(self, **changes, updated_at=utcnow())
        check_endpoint_settings(updated)
        return updated


def selector_ref(model_name: str, selector: str) -> str:
    if selector == "latest":
        return model_name
    return f"{model_name}/{selector}" if selector.isdigit() else f"{model_name}@{selector}"


def check_endpoint_name(name: str, *, param: str = "name") -> str:
    """1-63 lower-case letters, digits, ``. _ -``, starting with a letter or digit (it appears in URLs and
    as the ``model`` of OpenAI requests)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"invalid endpoint name {str(name)[:80]!r}: use 1-63 lower-case letters, digits, '.', "
                           "'_' or '-', starting with a letter or digit", param=param)
    return name


def check_selector(selector: str, *, param: str = "selector") -> str:
    if not isinstance(selector, str) or not _SELECTOR.match(selector):
        raise InvalidInput(f"invalid version selector {str(selector)[:80]!r}: use 'latest', a version number or an "
                           "alias", param=param)
    return selector


def check_endpoint_settings(endpoint: Endpoint) -> Endpoint:
    """Check every setting's bounds and their relations; return the endpoint or raise InvalidInput."""
    check_endpoint_name(endpoint.name)
    check_selector(endpoint.selector)
    if endpoint.canary_selector is not None:
        check_selector(endpoint.canary_selector, param="canary_selector")
    for key, (low, high) in ENDPOINT_SETTINGS.items():
        value = getattr(endpoint, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise InvalidInput(f"{key} must be a number from {low:g} to {high:g}; got {value!r}", param=key)
    for key in ("min_replicas", "max_replicas", "max_batch_size", "target_ongoing_requests"):
        if not isinstance(getattr(endpoint, key), int):
            raise InvalidInput(f"{key} must be a whole number", param=key)
    if endpoint.min_replicas > endpoint.max_replicas:
        raise InvalidInput("min_replicas cannot exceed max_replicas", param="min_replicas")
    if endpoint.canary_weight > 0 and endpoint.canary_selector is None:
        raise InvalidInput("canary_weight needs canary_selector (the version that gets that share)",
                           param="canary_weight")
    return endpoint
