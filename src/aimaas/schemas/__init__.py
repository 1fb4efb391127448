"""Pydantic wire models shared by the API and the SDK."""

from aimaas.schemas.common import ErrorBody, ErrorDetail, Page
from aimaas.schemas.datasets import (
    ColumnSchema,
    DatasetDetail,
    DatasetPublic,
    DatasetStats,
    DatasetVersionPublic,
    PreviewPage,
    SplitCreate,
    SplitPublic,
)
from aimaas.schemas.jobs import JobCreate, JobEventList, JobEventPublic, JobPublic
from aimaas.schemas.tenants import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    TenantCreate,
    TenantPublic,
    WhoAmI,
)

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "ColumnSchema",
    "DatasetDetail",
    "DatasetPublic",
    "DatasetStats",
    "DatasetVersionPublic",
    "ErrorBody",
    "ErrorDetail",
    "JobCreate",
    "JobEventList",
    "JobEventPublic",
    "JobPublic",
    "Page",
    "PreviewPage",
    "SplitCreate",
    "SplitPublic",
    "TenantCreate",
    "TenantPublic",
    "WhoAmI",
]
