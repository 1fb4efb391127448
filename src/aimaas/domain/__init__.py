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

__all__ = [
    "ApiKey",
    "Dataset",
    "DatasetReference",
    "DatasetSplit",
    "DatasetVersion",
    "Principal",
    "Scope",
    "Tenant",
    "new_id",
    "utcnow",
]
