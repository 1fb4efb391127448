"""The model registry's nouns: registered models, their numbered versions, aliases, references and refs.

A *registered model* is a tenant-scoped name; each training run that publishes to it adds an immutable
*model version* (1, 2, 3, ...) holding the artifact's key, digest and metadata. An *alias* (``prod``,
``staging``) is a movable pointer to one version. A *model ref* is how users name a version in one string:

* ``name``          the latest version
* ``name/3``        version 3
* ``name@prod``     the version the alias ``prod`` points at (``name@latest`` is the latest version)

Pure Python: the rules here are shared by every store backend and by the services.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aimaas.domain.models import utcnow
from aimaas.errors import InvalidInput

__all__ = [
    "LATEST",
    "MODEL_FORMATS",
    "MODEL_VERSION_STATUSES",
    "ModelAlias",
    "ModelRef",
    "ModelReference",
    "ModelVersion",
    "RegisteredModel",
    "check_alias_name",
    "check_model_format",
    "check_model_name",
    "check_model_status",
    "parse_model_ref",
]

#: Statuses a model version can have; either may follow the other (archive, then restore).
MODEL_VERSION_STATUSES = frozenset({"ready", "archived"})
#: Artifact formats the registry records (see SECURITY.md "Model artifacts").
MODEL_FORMATS = frozenset({"onnx", "safetensors", "gguf"})
#: The reserved alias meaning "the highest version number"; no stored alias may take this name.
LATEST = "latest"

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ALIAS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^[1-9][0-9]{0,17}$")


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model of one tenant; ``latest_version`` is the highest version number (0 before any)."""

    id: str
    tenant_id: str
    name: str
    description: str | None
    created_at: datetime
    latest_version: int = 0


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable published model: the artifact (key, sha256, size) and what is known about it.

    * ``signature``: ``{"inputs": [...], "outputs": [...]}`` as the runtime needs them.
    * ``metrics`` / ``params``: evaluation results and the hyperparameters in effect.
    * ``lineage``: where it came from: ``dataset_id``, ``dataset_version_id``, ``split_id``, ``job_id``,
      ``trainer``, library versions, code version. A ``dataset_id`` here makes the dataset undeletable
      while the version exists (the store records a dataset reference).
    * ``card_markdown``: the human-readable model card.

    ``model_id``, ``tenant_id`` and ``version`` are assigned by the store when the version is added.
    """

    id: str
    model_id: str
    tenant_id: str
    version: int
    status: str  # ready | archived
    task: str
    format: str  # onnx | safetensors | gguf
    artifact_key: str
    sha256: str
    size_bytes: int
    signature: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    card_markdown: str = ""
    created_at: datetime = field(default_factory=utcnow)

    @property
    def dataset_id(self) -> str | None:
        """The dataset this version was trained on, if its lineage names one."""
        value = self.lineage.get("dataset_id")
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ModelAlias:
    """A movable name for one version of a model (``prod`` → 3)."""

    model_id: str
    tenant_id: str
    alias: str
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ModelReference:
    """Something (an endpoint, ...) that uses a model; while one exists the model can't be deleted."""

    model_id: str
    tenant_id: str
    holder_kind: str
    holder_id: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model reference: at most one of ``version`` and ``alias`` is set; neither means latest."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


def check_model_name(name: str, *, param: str = "name") -> str:
    """``name`` if it is 1-128 letters, digits, ``.``, ``_`` or ``-`` starting with a letter or digit."""
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise InvalidInput(
            f"invalid model name {str(name)[:80]!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            param=param,
        )
    return name


def check_alias_name(alias: str, *, param: str = "alias") -> str:
    """``alias`` if it is 1-64 lower-case letters, digits, ``-`` or ``_``, not a number and not ``latest``."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidInput(
            f"invalid alias {str(alias)[:80]!r}: use 1-64 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit",
            param=param,
        )
    if alias.isdigit():
        raise InvalidInput(
            f"invalid alias {alias!r}: an alias cannot be a number (write NAME/{alias} for a version)", param=param
        )
    if alias == LATEST:
        raise InvalidInput(f"invalid alias {alias!r}: 'latest' is reserved for the newest version", param=param)
    return alias


def check_model_status(status: str, *, param: str = "status") -> str:
    if status not in MODEL_VERSION_STATUSES:
        raise InvalidInput(
            f"invalid model version status {str(status)[:40]!r}: use one of {sorted(MODEL_VERSION_STATUSES)}",
            param=param,
        )
    return status


def check_model_format(fmt: str, *, param: str = "format") -> str:
    if fmt not in MODEL_FORMATS:
        raise InvalidInput(f"invalid model format {str(fmt)[:40]!r}: use one of {sorted(MODEL_FORMATS)}", param=param)
    return fmt


def parse_model_ref(ref: str, *, param: str = "model") -> ModelRef:
    """Parse ``name``, ``name/<version>`` or ``name@<alias>`` (``name@latest`` = ``name``).

    Raises InvalidInput (``param`` names the field) for an empty or malformed ref, a version that is not
    a positive integer, or an alias that breaks :func:`check_alias_name`.
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidInput("a model reference is required: NAME, NAME/VERSION or NAME@ALIAS", param=param)
    if "@" in ref and "/" in ref:
        raise InvalidInput(
            f"invalid model reference {ref[:80]!r}: give a version (NAME/3) or an alias (NAME@prod), not both",
            param=param,
        )
    if "@" in ref:
        name, _, alias = ref.partition("@")
        check_model_name(name, param=param)
        if alias == LATEST:
            return ModelRef(name)
        return ModelRef(name, alias=check_alias_name(alias, param=param))
    if "/" in ref:
        name, _, number = ref.partition("/")
        check_model_name(name, param=param)
        if not _VERSION.match(number):
            raise InvalidInput(
                f"invalid model reference {ref[:80]!r}: the version after '/' must be a positive integer",
                param=param,
            )
        return ModelRef(name, version=int(number))
    return ModelRef(check_model_name(ref, param=param))
