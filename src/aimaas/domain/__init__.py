"""Frozen domain objects and pure rules; no framework imports."""

from aimaas.domain.ids import new_id
from aimaas.domain.models import (
    ApiKey,
    Dataset,
    DatasetReference,
    DatasetSplit,
    DatasetVersion,
    Principal,
    Scope,
    Tenant,
    utcnow,
)
from aimaas.domain.registry import (
    MODEL_FORMATS,
    MODEL_VERSION_STATUSES,
    ModelAlias,
    ModelRef,
    ModelReference,
    ModelVersion,
    RegisteredModel,
    check_alias_name,
    check_model_format,
    check_model_name,
    check_model_status,
    parse_model_ref,
)

__all__ = [
    "MODEL_FORMATS",
    "MODEL_VERSION_STATUSES",
    "ApiKey",
    "Dataset",
    "DatasetReference",
    "DatasetSplit",
    "DatasetVersion",
    "ModelAlias",
    "ModelRef",
    "ModelReference",
    "ModelVersion",
    "Principal",
    "RegisteredModel",
    "Scope",
    "Tenant",
    "check_alias_name",
    "check_model_format",
    "check_model_name",
    "check_model_status",
    "new_id",
    "parse_model_ref",
    "utcnow",
]
