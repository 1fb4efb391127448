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
    "Page",
    "PreviewPage",
    "SplitCreate",
    "SplitPublic",
    "TenantCreate",
    "TenantPublic",
    "WhoAmI",
]
