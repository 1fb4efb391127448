"""Probes (no key needed) and Prometheus metrics (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aimaas.api.deps import Admin, ServicesDep
from aimaas.errors import AimaasError, ServiceUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers")
async def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    if getattr(request.app.state, "draining", False):
        err = ServiceUnavailable("server is shutting down", headers={"Retry-After": "5"})
        return JSONResponse(err.to_body(), status_code=503, headers=err.headers)
    try:
        await run_in_threadpool(services.ping)
    except AimaasError as exc:
        body = ServiceUnavailable(f"database not reachable: {exc.message}").to_body()
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", dependencies=[Admin])
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
