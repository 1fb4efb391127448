"""Training: one call queues a job that searches, trains, tests, exports and registers a model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool

from aimaas.api.deps import ServicesDep, Write
from aimaas.api.routes.jobs import job_public
from aimaas.domain import Principal
from aimaas.schemas import JobPublic, TrainCreate

router = APIRouter(prefix="/api/v1", tags=["training"])


@router.post(
    "/train",
    status_code=201,
    response_model=JobPublic,
    summary="Train a model on a dataset; follow the job at /api/v1/jobs/{id}/stream",
)
async def train(
    body: TrainCreate,
    response: Response,
    services: ServicesDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    principal: Principal = Write,
) -> JobPublic:
    job, created = await run_in_threadpool(
        services.training.submit, principal, body.model_dump(), idempotency_key or None
    )
    if not created:
        response.status_code = 200
    return job_public(job)
