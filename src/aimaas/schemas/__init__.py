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
from aimaas.schemas.endpoints import (
    CanarySpec,
    EndpointCreate,
    EndpointPublic,
    EndpointStatus,
    EndpointUpdate,
    PredictRequest,
    PredictResponse,
    ReplicaStatus,
)
from aimaas.schemas.jobs import JobCreate, JobEventList, JobEventPublic, JobPublic
from aimaas.schemas.registry import (
    AliasSet,
    ModelComparison,
    ModelDetail,
    ModelPublic,
    ModelVersionPublic,
    VersionStatusSet,
)
from aimaas.schemas.tenants import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    TenantCreate,
    TenantPublic,
    WhoAmI,
)
from aimaas.schemas.training import TASK_CHOICES, TrainCreate

__all__ = [
    "TASK_CHOICES",
    "CanarySpec",
    "EndpointCreate",
    "EndpointPublic",
    "EndpointStatus",
    "EndpointUpdate",
    "PredictRequest",
    "PredictResponse",
    "ReplicaStatus",
    "AliasSet",
    "ModelComparison",
    "ModelDetail",
    "ModelPublic",
    "ModelVersionPublic",
    "TrainCreate",
    "VersionStatusSet",
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
